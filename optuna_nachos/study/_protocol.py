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

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from optuna_nachos.record import LEGACY, OBJECTIVE_SPLIT_ATTR, SELECTION_SPLIT, is_legacy


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
