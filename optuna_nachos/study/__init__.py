"""Study helpers: creating studies and samplers, constraint names, the packaged search."""

from optuna_nachos.study._constraints import (
    CONSTRAINT_NAMES,
    constraint_values,
    constraints_from_user_attrs,
    is_feasible,
)
from optuna_nachos.study._create import (
    DEFAULT_STORAGE,
    DIRECTIONS,
    LATENCY_METRIC_NAMES,
    METRIC_NAMES,
    create_study,
    study_settings,
)
from optuna_nachos.study._samplers import SAMPLER_NAMES, create_sampler
from optuna_nachos.study._search import run_search
from optuna_nachos.study._storage import open_storage, storage_lock_path

__all__ = [
    "CONSTRAINT_NAMES",
    "DEFAULT_STORAGE",
    "DIRECTIONS",
    "LATENCY_METRIC_NAMES",
    "METRIC_NAMES",
    "SAMPLER_NAMES",
    "constraint_values",
    "constraints_from_user_attrs",
    "create_sampler",
    "create_study",
    "is_feasible",
    "open_storage",
    "run_search",
    "storage_lock_path",
    "study_settings",
]
