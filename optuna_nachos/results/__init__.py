"""Results of an EENN search: the admissible front, trade-offs, and trained networks."""

from optuna_nachos.results._export import (
    BUNDLE_FILE,
    DeployedEENN,
    export_eenn,
    load_eenn,
    save_eenn,
)
from optuna_nachos.results._front import (
    admissible_trials,
    high_tradeoff_trials,
    hypervolume,
    hypervolume_reference,
)
from optuna_nachos.results._preprocess import RESIZE_MODES, Preprocessing
from optuna_nachos.results._programs import ExportedPiece
from optuna_nachos.results._rows import front_rows

__all__ = [
    "BUNDLE_FILE",
    "hypervolume_reference",
    "RESIZE_MODES",
    "DeployedEENN",
    "ExportedPiece",
    "Preprocessing",
    "admissible_trials",
    "export_eenn",
    "front_rows",
    "high_tradeoff_trials",
    "hypervolume",
    "load_eenn",
    "save_eenn",
]
