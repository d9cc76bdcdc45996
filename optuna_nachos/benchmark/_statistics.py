"""Statistics for comparing experiments across seeds: t confidence intervals, paired tests,
and the hypervolume after a given number of trials."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import optuna
from optuna.trial import FrozenTrial, TrialState
from scipy import stats

from optuna_nachos.benchmark._runner import admissible_within
from optuna_nachos.results import hypervolume


@dataclass(frozen=True)
class MeanInterval:
    """The mean of a sample and its Student t confidence interval.

    Attributes:
        n: Sample size.
        mean: Sample mean.
        low: Lower end of the confidence interval.
        high: Upper end of the confidence interval.
        sd: Sample standard deviation (``n - 1`` in the denominator); ``0.0`` for one value.
    """

    n: int
    mean: float
    low: float
    high: float
    sd: float


@dataclass(frozen=True)
class PairedComparison:
    """Paired samples ``a`` and ``b`` compared through their differences ``a - b``.

    Attributes:
        n: Number of pairs.
        mean_difference: Mean of ``a - b``.
        low: Lower end of the t confidence interval of the mean difference.
        high: Upper end of the t confidence interval of the mean difference.
        t_test_p: Two-sided p-value of the paired t-test; ``None`` when it is undefined (fewer
            than two pairs, or differences that do not vary).
        wilcoxon_p: Two-sided p-value of the Wilcoxon signed-rank test; ``None`` when it is
            undefined (fewer than two pairs, or every difference zero).
    """

    n: int
    mean_difference: float
    low: float
    high: float
    t_test_p: float | None
    wilcoxon_p: float | None


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence!r}.")


def _finite(values: Iterable[float], what: str) -> list[float]:
    out = [float(v) for v in values]
    if not all(math.isfinite(v) for v in out):
        raise ValueError(f"{what} must be finite numbers, got {out}.")
    return out


def mean_confidence_interval(values: Sequence[float], *, confidence: float = 0.95) -> MeanInterval:
    """The mean of ``values`` and its Student t confidence interval.

    The interval is ``mean ± t(1 - (1 - confidence) / 2, n - 1) * sd / sqrt(n)``: it assumes
    independent values (one per seed, for example) from a roughly normal distribution. With
    a handful of seeds it is wide, as it should be.

    A single value gives ``low == high == mean`` and ``sd == 0.0``: the spread cannot be
    estimated from one value, so the interval is degenerate and is not a confidence
    statement; report such a result as one run, not as a precise one.

    Args:
        values: The sample (finite numbers).
        confidence: Confidence level of the interval, strictly between 0 and 1.

    Returns:
        The sample size, mean, interval ends and standard deviation.

    Raises:
        ValueError: If ``values`` is empty or holds a non-finite number, or if
            ``confidence`` is not strictly between 0 and 1.
    """
    _check_confidence(confidence)
    sample = _finite(values, "values")
    n = len(sample)
    if n == 0:
        raise ValueError("mean_confidence_interval needs at least one value, got none.")
    mean = math.fsum(sample) / n
    if n == 1:
        return MeanInterval(n=1, mean=mean, low=mean, high=mean, sd=0.0)
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in sample) / (n - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return MeanInterval(n=n, mean=mean, low=mean - half, high=mean + half, sd=sd)


def _p_value(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def paired_comparison(
    a: Sequence[float], b: Sequence[float], *, confidence: float = 0.95
) -> PairedComparison:
    """Compare paired samples (``a[i]`` and ``b[i]`` measured under the same seed).

    The mean difference ``a - b`` comes with its t confidence interval (as
    :func:`mean_confidence_interval` of the differences), the paired t-test p-value
    (``scipy.stats.ttest_rel``) and the Wilcoxon signed-rank p-value
    (``scipy.stats.wilcoxon``, zero differences dropped), both two-sided.

    The p-values are ``None`` rather than an error when a test is undefined: the t-test with
    fewer than two pairs or with differences that are all equal (no spread to scale by); the
    Wilcoxon test with fewer than two pairs or with every difference zero. Note that with
    ``m`` non-zero differences the Wilcoxon p-value cannot fall below ``2 / 2**m``, so
    fewer than six seeds can never reach 0.05.

    Args:
        a: First sample, e.g. a baseline's hypervolume per seed.
        b: Second sample, in the same seed order.
        confidence: Confidence level of the interval, strictly between 0 and 1.

    Returns:
        The number of pairs, the mean difference, its interval and the two p-values.

    Raises:
        ValueError: If the samples are empty, differ in length or hold a non-finite number.
    """
    first, second = _finite(a, "a"), _finite(b, "b")
    if len(first) != len(second):
        raise ValueError(
            f"paired samples must have the same length (one value per seed each), got "
            f"{len(first)} and {len(second)}."
        )
    if not first:
        raise ValueError("paired_comparison needs at least one pair, got none.")
    differences = [x - y for x, y in zip(first, second, strict=True)]
    interval = mean_confidence_interval(differences, confidence=confidence)
    t_test_p = wilcoxon_p = None
    if interval.n >= 2 and max(differences) != min(differences):
        t_test_p = _p_value(stats.ttest_rel(first, second).pvalue)
    if interval.n >= 2 and any(d != 0.0 for d in differences):
        wilcoxon_p = _p_value(stats.wilcoxon(differences).pvalue)
    return PairedComparison(
        n=interval.n,
        mean_difference=interval.mean,
        low=interval.low,
        high=interval.high,
        t_test_p=t_test_p,
        wilcoxon_p=wilcoxon_p,
    )


def hypervolume_at(
    trials: optuna.Study | Sequence[FrozenTrial],
    checkpoints: Iterable[int],
    *,
    min_accuracy: float,
    max_avg_macs: float,
) -> dict[int, float | None]:
    """The normalized admissible hypervolume after the first ``k`` trials, for each ``k``.

    Trials are counted as the benchmark summary counts a run's ``trials``: completed trials
    only (failed, pruned, running and waiting ones are not counted), in trial-number order.
    Of the first ``k`` of them, those trained and admissible under ``min_accuracy`` and
    ``max_avg_macs`` (judged on their selection figures, as the summary judges) make the
    front whose :func:`~optuna_nachos.results.hypervolume` is reported, so the last
    checkpoint equal to the number of completed trials gives the run's ``hypervolume``.

    Args:
        trials: A study or its trials.
        checkpoints: Numbers of completed trials, each at least 1.
        min_accuracy: Accuracy floor (the reference point's accuracy).
        max_avg_macs: Average-MAC budget (the reference point's cost).

    Returns:
        ``{k: hypervolume}`` in the order given; ``None`` for a ``k`` beyond the number of
        completed trials (the run did not get that far).

    Raises:
        ValueError: If a checkpoint is below 1.
    """
    wanted = [int(k) for k in checkpoints]
    if any(k < 1 for k in wanted):
        raise ValueError(f"checkpoints must be at least 1 completed trial, got {wanted}.")
    if isinstance(trials, optuna.Study):
        trials = trials.get_trials(deepcopy=False)
    complete = sorted((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.number)
    out: dict[int, float | None] = {}
    for k in wanted:
        if k > len(complete):
            out[k] = None
            continue
        # Admissible implies trained (exit ratios recorded), as the summary's filter.
        admissible = [
            t
            for t in complete[:k]
            if admissible_within(t, min_accuracy=min_accuracy, max_avg_macs=max_avg_macs)
        ]
        out[k] = hypervolume(admissible, min_accuracy=min_accuracy, max_avg_macs=max_avg_macs)
    return out
