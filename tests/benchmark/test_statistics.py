"""Statistics across seeds: t intervals, paired tests and the hypervolume after k trials."""

from __future__ import annotations

import math

import optuna
import pytest
from optuna.trial import TrialState
from scipy import stats

from optuna_nachos.benchmark import (
    MeanInterval,
    hypervolume_at,
    mean_confidence_interval,
    paired_comparison,
)
from optuna_nachos.record import EXIT_RATIOS_ATTR
from optuna_nachos.results import hypervolume

FLOOR, BUDGET = 0.5, 100.0


def test_interval_matches_a_hand_computation() -> None:
    # mean 3, sd sqrt(2.5); t quantiles of 4 degrees of freedom from the tables.
    half_width = {0.95: 2.776445105, 0.90: 2.131846786}
    for confidence, t in half_width.items():
        interval = mean_confidence_interval([1.0, 2.0, 3.0, 4.0, 5.0], confidence=confidence)
        half = t * math.sqrt(2.5) / math.sqrt(5)
        assert interval.n == 5 and interval.mean == pytest.approx(3.0)
        assert interval.sd == pytest.approx(math.sqrt(2.5))
        assert interval.low == pytest.approx(3.0 - half, rel=1e-8)
        assert interval.high == pytest.approx(3.0 + half, rel=1e-8)


def test_interval_of_two_values_uses_the_wide_t_quantile() -> None:
    interval = mean_confidence_interval([0.40, 0.50])
    half = 12.70620474 * math.sqrt(0.005) / math.sqrt(2)  # t(0.975, 1)
    assert (interval.low, interval.high) == pytest.approx((0.45 - half, 0.45 + half))


def test_one_value_gives_a_degenerate_interval() -> None:
    assert mean_confidence_interval([0.3]) == MeanInterval(n=1, mean=0.3, low=0.3, high=0.3, sd=0.0)


@pytest.mark.parametrize(
    ("values", "confidence", "message"),
    [
        ([], 0.95, "at least one value"),
        ([1.0, float("nan")], 0.95, "finite"),
        ([1.0, 2.0], 1.0, "strictly between 0 and 1"),
        ([1.0, 2.0], 0.0, "strictly between 0 and 1"),
    ],
)
def test_interval_rejects_bad_input(values, confidence, message) -> None:
    with pytest.raises(ValueError, match=message):
        mean_confidence_interval(values, confidence=confidence)


def test_paired_comparison_agrees_with_scipy() -> None:
    a = [0.52, 0.61, 0.55, 0.70, 0.58, 0.49]
    b = [0.50, 0.57, 0.56, 0.62, 0.55, 0.47]
    differences = [x - y for x, y in zip(a, b, strict=True)]
    result = paired_comparison(a, b)
    assert result.n == 6
    assert result.mean_difference == pytest.approx(sum(differences) / 6)
    low, high = stats.t.interval(0.95, 5, loc=sum(differences) / 6, scale=stats.sem(differences))
    assert (result.low, result.high) == pytest.approx((low, high))
    assert result.t_test_p == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert result.wilcoxon_p == pytest.approx(stats.wilcoxon(differences).pvalue)


def test_wilcoxon_exact_p_of_all_positive_differences() -> None:
    # Five positive differences: the exact two-sided p-value is 2 / 2**5.
    result = paired_comparison([2.0, 3.0, 4.0, 5.0, 6.0], [1.0, 1.9, 3.1, 3.8, 5.0])
    assert result.wilcoxon_p == pytest.approx(2 / 2**5)
    assert result.t_test_p is not None and result.t_test_p < 0.001  # steady differences


def test_all_zero_differences_give_no_p_values() -> None:
    result = paired_comparison([0.3, 0.4, 0.5], [0.3, 0.4, 0.5])
    assert (result.mean_difference, result.low, result.high) == (0.0, 0.0, 0.0)
    assert result.t_test_p is None and result.wilcoxon_p is None


def test_equal_differences_leave_the_t_test_undefined() -> None:
    result = paired_comparison([1.0, 2.0, 3.0], [0.0, 1.0, 2.0])
    assert result.low == result.high == pytest.approx(1.0)
    assert result.t_test_p is None
    assert result.wilcoxon_p == pytest.approx(0.25)  # three positive differences, exact


def test_one_pair_gives_the_difference_and_no_tests() -> None:
    result = paired_comparison([0.6], [0.4])
    assert result.n == 1
    assert result.mean_difference == result.low == result.high == pytest.approx(0.2)
    assert result.t_test_p is None and result.wilcoxon_p is None


def test_paired_comparison_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="same length"):
        paired_comparison([0.1, 0.2], [0.1])
    with pytest.raises(ValueError, match="at least one pair"):
        paired_comparison([], [])


def _trial(accuracy: float, macs: float, *, trained: bool = True) -> optuna.trial.FrozenTrial:
    """A finished trial as the objective records it: validation figures as values, the
    budget and floor as constraints, exit ratios once trained."""
    return optuna.trial.create_trial(
        values=[accuracy, macs],
        user_attrs={EXIT_RATIOS_ATTR: [0.5, 0.5]} if trained else {},
        system_attrs={
            "constraints:max_avg_macs": macs - BUDGET,
            "constraints:min_accuracy": FLOOR - accuracy,
        },
    )


@pytest.fixture
def study() -> optuna.Study:
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.add_trial(_trial(0.7, 50.0))  # 0: hypervolume 0.2 * 50 / 50 = 0.2
    study.add_trial(optuna.trial.create_trial(state=TrialState.FAIL))  # 1: not counted
    study.add_trial(_trial(0.9, 80.0))  # 2: adds 0.2 * 20 -> 14 / 50
    study.add_trial(_trial(0.99, 10.0, trained=False))  # 3: counted, never admissible
    study.add_trial(_trial(0.8, 30.0))  # 4: (0.8, 30) and (0.9, 80): 23 / 50
    study.add_trial(_trial(0.95, 120.0))  # 5: counted, over the budget
    return study


def test_hypervolume_at_counts_completed_trials_in_order(study: optuna.Study) -> None:
    found = hypervolume_at(study, [1, 2, 3, 4, 5, 6], min_accuracy=FLOOR, max_avg_macs=BUDGET)
    assert list(found) == [1, 2, 3, 4, 5, 6]
    assert found[6] is None  # five completed trials only
    expected = {1: 0.2, 2: 0.28, 3: 0.28, 4: 0.46, 5: 0.46}
    assert {k: found[k] for k in expected} == pytest.approx(expected)


def test_hypervolume_at_the_end_is_the_runs_hypervolume(study: optuna.Study) -> None:
    trials = list(reversed(study.get_trials()))  # the order given does not matter
    at_end = hypervolume_at(trials, [5], min_accuracy=FLOOR, max_avg_macs=BUDGET)[5]
    admissible = [t for t in trials if t.values and t.values[1] <= BUDGET and t.user_attrs]
    assert at_end == pytest.approx(hypervolume(admissible, min_accuracy=FLOOR, max_avg_macs=BUDGET))


def test_hypervolume_at_needs_positive_checkpoints(study: optuna.Study) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        hypervolume_at(study, [0, 3], min_accuracy=FLOOR, max_avg_macs=BUDGET)
