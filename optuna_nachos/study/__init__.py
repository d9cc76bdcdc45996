"""Study helpers: creating studies and samplers, constraint names, the selection protocol
(choose on validation, report on test), the packaged search."""

from optuna_nachos.record import (
    CONSTRAINT_NAMES,
    DIRECTIONS,
    LATENCY_METRIC_NAMES,
    METRIC_NAMES,
    SELECTION_SPLIT,
    is_legacy,
    record_evaluation,
    reported_values,
    selection_constraints,
    selection_feasible,
    selection_values,
    study_settings,
)
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
)
from optuna_nachos.study._workers import (
    RetryStaleTrial,
    derive_seed,
    fail_stale_trials,
    register_worker,
)

__all__ = [
    "CONSTRAINT_NAMES",
    "DEFAULT_STORAGE",
    "DIRECTIONS",
    "JOURNAL_PREFIX",
    "LATENCY_METRIC_NAMES",
    "METRIC_NAMES",
    "SAMPLER_NAMES",
    "RetryStaleTrial",
    "StudyLock",
    "SELECTION_SPLIT",
    "StudyProtocol",
    "constraint_values",
    "constraints_from_user_attrs",
    "create_sampler",
    "create_study",
    "derive_seed",
    "fail_stale_trials",
    "finished_trials",
    "is_feasible",
    "is_legacy",
    "open_storage",
    "register_worker",
    "run_search",
    "settings_differences",
    "record_evaluation",
    "run_search",
    "selection_constraints",
    "selection_feasible",
    "selection_values",
    "storage_file",
    "storage_lock_path",
    "study_protocol",
    "study_settings",
    "reported_values",
]
