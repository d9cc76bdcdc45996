"""Study helpers: creating studies and samplers, constraint names, the selection protocol
(choose on validation, report on test), the packaged search."""

from optuna_nachos.study._constraints import (
    CONSTRAINT_NAMES,
    constraint_values,
    is_feasible,
)
from optuna_nachos.study._create import (
    DEFAULT_STORAGE,
    DIRECTIONS,
    METRIC_NAMES,
    create_study,
    study_settings,
)
from optuna_nachos.study._protocol import (
    SELECTION_SPLIT,
    StudyProtocol,
    record_evaluation,
    reported_values,
    selection_feasible,
    selection_values,
    study_protocol,
)
from optuna_nachos.study._samplers import SAMPLER_NAMES, create_sampler
from optuna_nachos.study._search import run_search
from optuna_nachos.study._storage import open_storage, storage_lock_path

__all__ = [
    "CONSTRAINT_NAMES",
    "DEFAULT_STORAGE",
    "DIRECTIONS",
    "METRIC_NAMES",
    "SAMPLER_NAMES",
    "SELECTION_SPLIT",
    "StudyProtocol",
    "constraint_values",
    "create_sampler",
    "create_study",
    "is_feasible",
    "open_storage",
    "record_evaluation",
    "run_search",
    "selection_feasible",
    "selection_values",
    "storage_lock_path",
    "study_protocol",
    "study_settings",
    "reported_values",
]
