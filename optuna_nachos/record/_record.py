"""Read and write an EENN trial: one typed record over Optuna's values, constraints and
attributes.

Choose on validation, report on test: the packaged objective returns the figures of the split
that chose the exit thresholds (validation) as the trial's objective values and sets the
constraints from them; the test figures at the same thresholds are stored beside them as user
attributes. Studies written by earlier versions returned the *test* figures as objective values;
their trials carry ``val_accuracy`` and ``val_avg_macs`` and are read as "legacy" trials: chosen
on those attributes (the two measured constraints re-derived from them) and reported on their
objective values. Attributes that older trials lack read as ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from optuna_nachos.record._names import (
    ACCURACY_INDEX,
    ACCURACY_PER_EXIT_ATTR,
    ARTIFACT_ATTR,
    CONFIG_ATTR,
    COST_INDEX,
    COST_SETTING,
    EXIT_MACS_ATTR,
    EXIT_RATIOS_ATTR,
    EXITS_CONFIG_ATTR,
    FAIL_REASON_ATTR,
    MAX_AVG_MACS,
    MIN_ACCURACY,
    OBJECTIVE_SPLIT_ATTR,
    OPERATING_CURVE_ATTR,
    OPERATING_CURVE_COST_ATTR,
    PARAMS_ATTR,
    PEAK_MACS_ATTR,
    SELECTION_SPLIT,
    SETTINGS_KEY,
    SKIP_REASON_ATTR,
    TEST_ACCURACY_ATTR,
    TEST_AVG_MACS_ATTR,
    TEST_SKIPPED_ATTR,
    THRESHOLDS_ATTR,
    TIMINGS_ATTR,
    TRAIN_SECONDS_ATTR,
    VAL_ACCURACY_ATTR,
    VAL_AVG_MACS_ATTR,
    VAL_EXIT_RATIOS_ATTR,
)


def objective_values(trial: FrozenTrial) -> tuple[float, float]:
    """A trial's (accuracy, cost) objective values, in the record's order."""
    values = trial.values
    return float(values[ACCURACY_INDEX]), float(values[COST_INDEX])


def is_legacy(trial: FrozenTrial) -> bool:
    """Whether the trial's objective values are test figures (written by an earlier version).

    Such a trial was evaluated and carries ``val_accuracy`` and ``val_avg_macs`` but not the
    ``objective_split`` attribute.
    """
    attrs = trial.user_attrs
    return (
        OBJECTIVE_SPLIT_ATTR not in attrs
        and VAL_ACCURACY_ATTR in attrs
        and VAL_AVG_MACS_ATTR in attrs
    )


def selection_values(trial: FrozenTrial) -> tuple[float, float]:
    """The (accuracy, average MACs) a trial is chosen on: its validation figures.

    Its objective values, except for a legacy trial, whose validation attributes are used.
    Trials that were never evaluated (skipped by the static guard) and trials of a user's
    own objective are chosen on their objective values.
    """
    if is_legacy(trial):
        attrs = trial.user_attrs
        return float(attrs[VAL_ACCURACY_ATTR]), float(attrs[VAL_AVG_MACS_ATTR])
    return objective_values(trial)


def reported_values(trial: FrozenTrial) -> tuple[float, float] | None:
    """The (accuracy, average MACs) to report for a chosen trial: its test figures.

    ``None`` when the trial holds none (a user's own objective, a trial that was not trained).
    """
    attrs = trial.user_attrs
    if is_legacy(trial):
        return objective_values(trial)
    if TEST_ACCURACY_ATTR in attrs and TEST_AVG_MACS_ATTR in attrs:
        return float(attrs[TEST_ACCURACY_ATTR]), float(attrs[TEST_AVG_MACS_ATTR])
    return None


def selection_constraints(trial: FrozenTrial) -> dict[str, float]:
    """The trial's constraints as judged on the selection split.

    The stored constraints, except for a legacy trial, whose ``max_avg_macs`` and
    ``min_accuracy`` were set from test figures: they are re-derived from its validation
    figures (the budget and floor are recovered from the stored values).
    """
    stored = dict(trial.constraints)
    if not is_legacy(trial):
        return stored
    test_accuracy, test_avg_macs = objective_values(trial)
    val_accuracy, val_avg_macs = selection_values(trial)
    if MAX_AVG_MACS in stored:
        budget = test_avg_macs - stored[MAX_AVG_MACS]
        stored[MAX_AVG_MACS] = val_avg_macs - budget
    if MIN_ACCURACY in stored:
        floor = stored[MIN_ACCURACY] + test_accuracy
        stored[MIN_ACCURACY] = floor - val_accuracy
    return stored


def selection_feasible(trial: FrozenTrial) -> bool:
    """Whether the trial carries constraints and meets all of them on the selection split."""
    constraints = selection_constraints(trial)
    return bool(constraints) and all(value <= 0.0 for value in constraints.values())


def study_settings(study: optuna.Study) -> dict[str, Any]:
    """The search settings recorded on a study (empty when none)."""
    return dict(study.user_attrs.get(SETTINGS_KEY, {}))


def is_latency_study(settings: Mapping[str, Any]) -> bool:
    """Whether a study's settings make its second objective average latency in ms (not MACs)."""
    return settings.get(COST_SETTING) == "latency"


def evaluation_constraints(
    *,
    val_accuracy: float,
    val_avg_macs: float,
    max_avg_macs: float | None,
    min_accuracy: float,
    static: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """The constraints of a trained trial, by name (a value above 0 is violated).

    ``max_avg_macs`` and ``min_accuracy`` come from the validation figures; the static
    constraints (exits, peak MACs, parameters) are taken as given, except ``max_avg_macs``,
    which the measured average replaces.

    Args:
        val_accuracy: Accuracy on the validation split at the chosen thresholds.
        val_avg_macs: Average MACs on the validation split.
        max_avg_macs: The average-MAC budget; ``None`` (a latency-budgeted study) sets no
            ``max_avg_macs`` constraint.
        min_accuracy: The accuracy floor.
        static: Constraints known before training, by name.

    Returns:
        The constraint values, by name.
    """
    constraints = {}
    if max_avg_macs is not None:
        constraints[MAX_AVG_MACS] = float(val_avg_macs) - float(max_avg_macs)
    constraints[MIN_ACCURACY] = float(min_accuracy) - float(val_accuracy)
    for name, value in (static or {}).items():
        if name not in (MAX_AVG_MACS, MIN_ACCURACY):
            constraints[name] = float(value)
    return constraints


def record_evaluation(
    trial: optuna.Trial,
    *,
    val_accuracy: float,
    val_avg_macs: float,
    test_accuracy: float | None,
    test_avg_macs: float | None,
    max_avg_macs: float | None,
    min_accuracy: float,
    static: Mapping[str, float] | None = None,
    test_skipped: str | None = None,
) -> tuple[float, float]:
    """Set a trained trial's constraints and attributes; return its objective values.

    The objective values and the constraints (:func:`evaluation_constraints`) come from the
    validation split; the test figures are stored as the user attributes ``test_accuracy``
    and ``test_avg_macs``.

    Args:
        trial: The live trial.
        val_accuracy: Accuracy on the validation split at the chosen thresholds.
        val_avg_macs: Average MACs on the validation split.
        test_accuracy: Accuracy on the test split at the same thresholds; ``None`` when the
            test split was not evaluated (then ``test_skipped`` says why).
        test_avg_macs: Average MACs on the test split (``None`` with ``test_accuracy``).
        max_avg_macs: The average-MAC budget; ``None`` (a latency-budgeted study) sets no
            ``max_avg_macs`` constraint.
        min_accuracy: The accuracy floor.
        static: Constraints known before training, by name.
        test_skipped: Why the test split was not evaluated (the ``test_skipped`` attribute).

    Returns:
        ``(val_accuracy, val_avg_macs)``, the values the objective returns.
    """
    if (test_accuracy is None) != (test_avg_macs is None) or (
        test_accuracy is None and not test_skipped
    ):
        raise ValueError(
            "pass test_accuracy and test_avg_macs together, or neither with the reason in "
            "test_skipped."
        )
    val_accuracy, val_avg_macs = float(val_accuracy), float(val_avg_macs)
    constraints = evaluation_constraints(
        val_accuracy=val_accuracy,
        val_avg_macs=val_avg_macs,
        max_avg_macs=max_avg_macs,
        min_accuracy=min_accuracy,
        static=static,
    )
    for name, value in constraints.items():
        trial.set_constraint(name, value)
    trial.set_user_attr(OBJECTIVE_SPLIT_ATTR, SELECTION_SPLIT)
    trial.set_user_attr(VAL_ACCURACY_ATTR, val_accuracy)
    trial.set_user_attr(VAL_AVG_MACS_ATTR, val_avg_macs)
    if test_accuracy is None or test_avg_macs is None:
        trial.set_user_attr(TEST_SKIPPED_ATTR, str(test_skipped))
    else:
        trial.set_user_attr(TEST_ACCURACY_ATTR, float(test_accuracy))
        trial.set_user_attr(TEST_AVG_MACS_ATTR, float(test_avg_macs))
    return val_accuracy, val_avg_macs


def _floats(value: Any) -> tuple[float, ...] | None:
    return None if value is None else tuple(float(v) for v in value)


@dataclass(frozen=True)
class EENNTrial:
    """What one EENN trial holds, read from a :class:`~optuna.trial.FrozenTrial`.

    Every field that a trial may lack (older studies, trials that were not trained, a user's
    own objective) is ``None``. Read it with :meth:`from_trial`.

    Attributes:
        number: The trial number.
        state: The trial state.
        accuracy: Accuracy the trial is chosen on (validation; see :func:`selection_values`).
        cost: Cost the trial is chosen on: average MACs, or average latency in ms when the
            study minimizes latency.
        feasible: Whether it carries constraints and meets them on the selection split.
        constraints: Its constraints on the selection split.
        test_accuracy: Accuracy on the test split, for reporting.
        test_avg_macs: Average MACs on the test split, for reporting.
        legacy: Whether an earlier version wrote it (objective values are test figures).
        config: The configuration as stored (``EENNConfig`` or ``ExitsConfig`` dictionary).
        exit_macs: MACs of a sample leaving at each exit.
        exit_ratios: Fraction of the (test) samples leaving at each exit.
        val_exit_ratios: The same on the validation split.
        thresholds: Exit thresholds.
        accuracy_per_exit: Test accuracy of each exit.
        peak_macs: MACs of the last exit.
        params: Parameters of the network.
        operating_curve: Operating points (dictionaries) of the trained network.
        operating_curve_cost: The unit of the curve's costs: ``"latency_ms"`` when they are
            latencies, ``None`` for MACs.
        train_seconds: Training time.
        timings: Seconds of the trial's phases.
        skip_reason: Why it was not trained (the static guard), ``None`` when it was.
        fail_reason: Why it failed, ``None`` when it did not.
        test_skipped: Why its test split was not evaluated (it cannot be on the admissible
            front), ``None`` when it was or the trial was not trained.
        artifact_id: The artifact of its trained network, when one was uploaded.
    """

    number: int
    state: TrialState
    accuracy: float | None
    cost: float | None
    feasible: bool
    constraints: dict[str, float]
    test_accuracy: float | None = None
    test_avg_macs: float | None = None
    legacy: bool = False
    config: dict[str, Any] | None = None
    exit_macs: tuple[float, ...] | None = None
    exit_ratios: tuple[float, ...] | None = None
    val_exit_ratios: tuple[float, ...] | None = None
    thresholds: tuple[float, ...] | None = None
    accuracy_per_exit: tuple[float, ...] | None = None
    peak_macs: float | None = None
    params: int | None = None
    operating_curve: tuple[dict[str, Any], ...] | None = None
    operating_curve_cost: str | None = None
    train_seconds: float | None = None
    timings: dict[str, float] | None = None
    skip_reason: str | None = None
    fail_reason: str | None = None
    test_skipped: str | None = None
    artifact_id: str | None = None

    @property
    def trained(self) -> bool:
        """Whether the trial completed after training (not skipped by the static guard)."""
        return self.state == TrialState.COMPLETE and self.skip_reason is None

    @classmethod
    def from_trial(cls, trial: FrozenTrial) -> EENNTrial:
        """Read a finished (or failed, running) trial; missing attributes read as ``None``."""
        attrs = trial.user_attrs
        accuracy = cost = None
        if trial.values is not None and len(trial.values) > COST_INDEX:
            accuracy, cost = selection_values(trial)
        reported = reported_values(trial) if trial.values is not None else None
        config = attrs.get(CONFIG_ATTR, attrs.get(EXITS_CONFIG_ATTR))
        curve = attrs.get(OPERATING_CURVE_ATTR)
        params = attrs.get(PARAMS_ATTR)
        peak = attrs.get(PEAK_MACS_ATTR)
        seconds = attrs.get(TRAIN_SECONDS_ATTR)
        timings = attrs.get(TIMINGS_ATTR)
        return cls(
            number=trial.number,
            state=trial.state,
            accuracy=accuracy,
            cost=cost,
            feasible=selection_feasible(trial),
            constraints=selection_constraints(trial),
            test_accuracy=None if reported is None else reported[0],
            test_avg_macs=None if reported is None else reported[1],
            legacy=is_legacy(trial),
            config=None if config is None else dict(config),
            exit_macs=_floats(attrs.get(EXIT_MACS_ATTR)),
            exit_ratios=_floats(attrs.get(EXIT_RATIOS_ATTR)),
            val_exit_ratios=_floats(attrs.get(VAL_EXIT_RATIOS_ATTR)),
            thresholds=_floats(attrs.get(THRESHOLDS_ATTR)),
            accuracy_per_exit=_floats(attrs.get(ACCURACY_PER_EXIT_ATTR)),
            peak_macs=None if peak is None else float(peak),
            params=None if params is None else int(params),
            operating_curve=None if curve is None else tuple(dict(p) for p in curve),
            operating_curve_cost=attrs.get(OPERATING_CURVE_COST_ATTR),
            train_seconds=None if seconds is None else float(seconds),
            timings=None if timings is None else {k: float(v) for k, v in timings.items()},
            skip_reason=attrs.get(SKIP_REASON_ATTR),
            fail_reason=attrs.get(FAIL_REASON_ATTR),
            test_skipped=attrs.get(TEST_SKIPPED_ATTR),
            artifact_id=attrs.get(ARTIFACT_ATTR),
        )
