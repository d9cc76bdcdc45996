"""Choose on validation, report on test: the one place that knows which split is which.

The packaged objective returns the figures of the split that chose the exit thresholds (the
validation split) as the trial's objective values and sets the constraints from them; the test
figures of the same network at the same thresholds are stored beside them as user attributes,
for reporting only. Every helper that picks trials (the admissible front, its knees, its
hypervolume) reads :func:`selection_values` and :func:`selection_feasible`; every table that
reports a chosen trial shows :func:`reported_values` beside them, labelled.

Studies written by earlier versions returned the *test* figures as objective values and set
the constraints from them; their trials carry ``val_accuracy`` and ``val_avg_macs``. They still
open: their trials are chosen on those validation attributes (the two constraints re-derived
from them) and reported on their objective values, and :func:`study_protocol` says what they
lack.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from optuna_nachos.study._constraints import MAX_AVG_MACS, MIN_ACCURACY

SELECTION_SPLIT = "validation"
"""The split whose figures are a trial's objective values and constraints."""

OBJECTIVE_SPLIT_ATTR = "objective_split"
"""Trial user attribute naming the split of the objective values (``"validation"``)."""

TEST_ACCURACY_ATTR = "test_accuracy"
"""Trial user attribute: accuracy on the test split at the chosen thresholds."""

TEST_AVG_MACS_ATTR = "test_avg_macs"
"""Trial user attribute: average MACs on the test split at the chosen thresholds."""

VAL_ACCURACY_ATTR = "val_accuracy"
VAL_AVG_MACS_ATTR = "val_avg_macs"

LEGACY = "legacy"
"""Protocol name of trials whose objective values are test figures (earlier versions)."""


def record_evaluation(
    trial: optuna.Trial,
    *,
    val_accuracy: float,
    val_avg_macs: float,
    test_accuracy: float,
    test_avg_macs: float,
    max_avg_macs: float | None,
    min_accuracy: float,
    static: Mapping[str, float] | None = None,
) -> tuple[float, float]:
    """Set a trained trial's constraints and attributes; return its objective values.

    The objective values and the constraints ``max_avg_macs`` and ``min_accuracy`` come from
    the validation split; the test figures are stored as the user attributes
    ``test_accuracy`` and ``test_avg_macs``. Static constraints (exits, peak MACs, parameters)
    are set as given, except ``max_avg_macs``, which the measured average replaces.

    Args:
        trial: The live trial.
        val_accuracy: Accuracy on the validation split at the chosen thresholds.
        val_avg_macs: Average MACs on the validation split.
        test_accuracy: Accuracy on the test split at the same thresholds.
        test_avg_macs: Average MACs on the test split.
        max_avg_macs: The average-MAC budget; ``None`` (a latency-budgeted study) sets no
            ``max_avg_macs`` constraint.
        min_accuracy: The accuracy floor.
        static: Constraints known before training, by name.

    Returns:
        ``(val_accuracy, val_avg_macs)``, the values the objective returns.
    """
    val_accuracy, val_avg_macs = float(val_accuracy), float(val_avg_macs)
    if max_avg_macs is not None:
        trial.set_constraint(MAX_AVG_MACS, val_avg_macs - float(max_avg_macs))
    trial.set_constraint(MIN_ACCURACY, float(min_accuracy) - val_accuracy)
    for name, value in (static or {}).items():
        if name not in (MAX_AVG_MACS, MIN_ACCURACY):
            trial.set_constraint(name, float(value))
    trial.set_user_attr(OBJECTIVE_SPLIT_ATTR, SELECTION_SPLIT)
    trial.set_user_attr(VAL_ACCURACY_ATTR, val_accuracy)
    trial.set_user_attr(VAL_AVG_MACS_ATTR, val_avg_macs)
    trial.set_user_attr(TEST_ACCURACY_ATTR, float(test_accuracy))
    trial.set_user_attr(TEST_AVG_MACS_ATTR, float(test_avg_macs))
    return val_accuracy, val_avg_macs


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
    accuracy, avg_macs = trial.values
    return float(accuracy), float(avg_macs)


def reported_values(trial: FrozenTrial) -> tuple[float, float] | None:
    """The (accuracy, average MACs) to report for a chosen trial: its test figures.

    ``None`` when the trial holds none (a user's own objective, a trial that was not trained).
    """
    attrs = trial.user_attrs
    if is_legacy(trial):
        accuracy, avg_macs = trial.values
        return float(accuracy), float(avg_macs)
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
    test_accuracy, test_avg_macs = trial.values
    val_accuracy, val_avg_macs = selection_values(trial)
    if MAX_AVG_MACS in stored:
        budget = float(test_avg_macs) - stored[MAX_AVG_MACS]
        stored[MAX_AVG_MACS] = val_avg_macs - budget
    if MIN_ACCURACY in stored:
        floor = stored[MIN_ACCURACY] + float(test_accuracy)
        stored[MIN_ACCURACY] = floor - val_accuracy
    return stored


def selection_feasible(trial: FrozenTrial) -> bool:
    """Whether the trial carries constraints and meets all of them on the selection split."""
    constraints = selection_constraints(trial)
    return bool(constraints) and all(value <= 0.0 for value in constraints.values())


@dataclass(frozen=True)
class StudyProtocol:
    """Which split a study's trials were chosen on, and what its older trials lack.

    Attributes:
        selection: ``"validation"`` (every evaluated trial returned validation figures),
            ``"legacy"`` (every evaluated trial returned test figures) or ``"mixed"``.
        n_evaluated: Trials that were trained and evaluated.
        n_legacy: Evaluated trials written by an earlier version.
        note: One line saying how the study is chosen and reported, and what it lacks.
    """

    selection: str
    n_evaluated: int
    n_legacy: int
    note: str

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {
            "selection": self.selection,
            "n_evaluated": self.n_evaluated,
            "n_legacy": self.n_legacy,
            "note": self.note,
        }


def study_protocol(study: optuna.Study | Iterable[FrozenTrial]) -> StudyProtocol:
    """Describe how a study's trials are chosen and reported, and what older trials lack."""
    trials = (
        study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if isinstance(study, optuna.Study)
        else [t for t in study if t.state == TrialState.COMPLETE]
    )
    evaluated = [
        t for t in trials if is_legacy(t) or t.user_attrs.get(OBJECTIVE_SPLIT_ATTR) is not None
    ]
    legacy = sum(is_legacy(t) for t in evaluated)
    if legacy == 0:
        selection = SELECTION_SPLIT
        note = (
            "Trials are chosen on the validation split (their objective values); test figures "
            "are reported for the chosen trials."
        )
    else:
        selection = LEGACY if legacy == len(evaluated) else "mixed"
        note = (
            f"{legacy} trial(s) were written by an earlier version whose objective values are "
            "test figures: they are chosen here on their stored validation attributes "
            "(val_accuracy, val_avg_macs, constraints re-derived from them) and reported on "
            "test. They lack the validation exit ratios and per-exit validation figures, and "
            "the samplers of that study were fitted on test scores."
        )
    return StudyProtocol(selection, len(evaluated), legacy, note)
