"""A read-through storage view that shows optuna-dashboard the named constraints.

optuna-dashboard 0.21 takes a trial's constraints from the legacy trial system attribute
``constraints`` (a list, written by the deprecated ``constraints_func``), while Optuna 5's
``trial.set_constraint(name, value)`` stores one system attribute ``constraints:<name>`` per
constraint. Its own Pareto front, history and timeline plots therefore show every trial of an
EENN study as feasible.

Writing the legacy list into the storage is not an option:

* Optuna 5 merges both formats into :attr:`optuna.trial.FrozenTrial.constraints` (the list
  under the keys ``"0"``, ``"1"``, ...), and every sampler reads that dict, so every violation
  would count twice: TPE ranks infeasible trials by their summed violation, NSGA-II and NSGA-III
  compare summed violations under constrained domination, the GP sampler fits one model per
  constraint and requires the same number of constraints on every trial, and
  :class:`~optuna_nachos.NachosSampler` fits one surrogate per constraint name;
* a finished trial cannot be updated anyway (the storage raises
  :class:`~optuna.exceptions.UpdateFinishedTrialError`).

So nothing is written: the dashboard is given this view of the storage, which adds the legacy
list to the trials it *returns* (in the fixed order of
:func:`~optuna_nachos.study.constraint_values`) and passes every write through unchanged.
"""

from __future__ import annotations

import copy
from collections.abc import Container, Sequence
from typing import Any

from optuna.distributions import BaseDistribution
from optuna.storages import BaseStorage
from optuna.study import StudyDirection
from optuna.study._frozen import FrozenStudy
from optuna.trial import FrozenTrial, TrialState

from optuna_nachos.study import constraint_values

LEGACY_CONSTRAINTS_KEY = "constraints"
"""The trial system attribute of the legacy constraint list (``optuna.samplers._base``)."""

_NAMED_PREFIX = LEGACY_CONSTRAINTS_KEY + ":"


def with_legacy_constraints(trial: FrozenTrial) -> FrozenTrial:
    """A copy of ``trial`` whose system attributes also hold the legacy constraint list.

    Trials without named constraints, or that already carry a legacy list, are returned as
    they are. The copy is for display only: given to a sampler, it would count each
    violation twice.
    """
    attrs = trial.system_attrs
    if LEGACY_CONSTRAINTS_KEY in attrs or not any(k.startswith(_NAMED_PREFIX) for k in attrs):
        return trial
    shown = copy.copy(trial)
    shown._system_attrs = {**attrs, LEGACY_CONSTRAINTS_KEY: constraint_values(trial)}
    return shown


class ConstraintView(BaseStorage):
    """A storage that shows optuna-dashboard the constraints set with ``set_constraint``.

    Reads go to the wrapped storage, and the trials returned carry, in addition, the legacy
    constraint list that optuna-dashboard reads (:func:`with_legacy_constraints`). Writes (the
    dashboard's notes, user attributes, ``tell``) go to the wrapped storage unchanged. Nothing
    is ever written to the constraints, so the samplers of the search see exactly what they
    saw before.

    Serve the dashboard on it, never optimize through it: a sampler reading trials from the
    view would count every violation twice.

    Args:
        storage: The storage of the EENN studies.
    """

    def __init__(self, storage: BaseStorage) -> None:
        self._storage = storage

    @property
    def wrapped(self) -> BaseStorage:
        """The storage behind the view."""
        return self._storage

    def __getattr__(self, name: str) -> Any:
        # Backend-specific methods (heartbeat, sessions, ...) of the wrapped storage.
        if name == "_storage":  # not set yet (copy, unpickling)
            raise AttributeError(name)
        return getattr(self._storage, name)

    # --- trials: the only reads that change ---

    def get_trial(self, trial_id: int) -> FrozenTrial:
        return with_legacy_constraints(self._storage.get_trial(trial_id))

    def get_all_trials(
        self,
        study_id: int,
        deepcopy: bool = True,
        states: Container[TrialState] | None = None,
    ) -> list[FrozenTrial]:
        trials = self._storage.get_all_trials(study_id, deepcopy=deepcopy, states=states)
        return [with_legacy_constraints(t) for t in trials]

    # --- everything else is delegated ---

    def create_new_study(
        self, directions: Sequence[StudyDirection], study_name: str | None = None
    ) -> int:
        return self._storage.create_new_study(directions, study_name)

    def delete_study(self, study_id: int) -> None:
        self._storage.delete_study(study_id)

    def set_study_user_attr(self, study_id: int, key: str, value: Any) -> None:
        self._storage.set_study_user_attr(study_id, key, value)

    def set_study_system_attr(self, study_id: int, key: str, value: Any) -> None:
        self._storage.set_study_system_attr(study_id, key, value)

    def get_study_id_from_name(self, study_name: str) -> int:
        return self._storage.get_study_id_from_name(study_name)

    def get_study_name_from_id(self, study_id: int) -> str:
        return self._storage.get_study_name_from_id(study_id)

    def get_study_directions(self, study_id: int) -> list[StudyDirection]:
        return self._storage.get_study_directions(study_id)

    def get_study_user_attrs(self, study_id: int) -> dict[str, Any]:
        return self._storage.get_study_user_attrs(study_id)

    def get_study_system_attrs(self, study_id: int) -> dict[str, Any]:
        return self._storage.get_study_system_attrs(study_id)

    def get_all_studies(self) -> list[FrozenStudy]:
        return sorted(self._storage.get_all_studies(), key=lambda s: s._study_id)

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        return self._storage.create_new_trial(study_id, template_trial)

    def set_trial_param(
        self,
        trial_id: int,
        param_name: str,
        param_value_internal: float,
        distribution: BaseDistribution,
    ) -> None:
        self._storage.set_trial_param(trial_id, param_name, param_value_internal, distribution)

    def get_trial_id_from_study_id_trial_number(self, study_id: int, trial_number: int) -> int:
        return self._storage.get_trial_id_from_study_id_trial_number(study_id, trial_number)

    def get_trial_number_from_id(self, trial_id: int) -> int:
        return self._storage.get_trial_number_from_id(trial_id)

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Sequence[float] | None = None
    ) -> bool:
        return self._storage.set_trial_state_values(trial_id, state, values)

    def set_trial_intermediate_value(
        self, trial_id: int, step: int, intermediate_value: float
    ) -> None:
        self._storage.set_trial_intermediate_value(trial_id, step, intermediate_value)

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        self._storage.set_trial_user_attr(trial_id, key, value)

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        self._storage.set_trial_system_attr(trial_id, key, value)

    def remove_session(self) -> None:
        self._storage.remove_session()
