"""Study helpers: creating studies and samplers, storages and workers, the packaged search.

The names a trial's record is read by (constraint and metric names, the selection protocol:
choose on validation, report on test) live in :mod:`optuna_nachos.record`."""

from optuna_nachos.study._constraints import (
    constraint_values,
    constraints_from_user_attrs,
    is_feasible,
)
from optuna_nachos.study._create import (
    DEFAULT_STORAGE,
    create_study,
    settings_differences,
)
from optuna_nachos.study._protocol import StudyProtocol, study_protocol
from optuna_nachos.study._samplers import SAMPLER_NAMES, create_sampler
from optuna_nachos.study._search import finished_trials, run_search
from optuna_nachos.study._storage import (
    JOURNAL_PREFIX,
    StudyLock,
    open_storage,
    storage_file,
    storage_lock_path,
    storage_outage,
)
from optuna_nachos.study._workers import (
    RetryStaleTrial,
    derive_seed,
    fail_stale_trials,
    register_worker,
)

__all__ = [
    "DEFAULT_STORAGE",
    "JOURNAL_PREFIX",
    "SAMPLER_NAMES",
    "RetryStaleTrial",
    "StudyLock",
    "StudyProtocol",
    "constraint_values",
    "constraints_from_user_attrs",
    "create_sampler",
    "create_study",
    "derive_seed",
    "fail_stale_trials",
    "finished_trials",
    "is_feasible",
    "open_storage",
    "register_worker",
    "settings_differences",
    "run_search",
    "storage_file",
    "storage_lock_path",
    "storage_outage",
    "study_protocol",
]
