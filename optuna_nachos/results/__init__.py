"""Results of an EENN search: the admissible front, trade-offs, and trained networks."""

from optuna_nachos.results._export import (
    DeployedEENN,
    export_eenn,
    load_eenn,
    save_eenn,
)
from optuna_nachos.results._front import admissible_trials, high_tradeoff_trials, hypervolume
from optuna_nachos.results._rows import front_rows

__all__ = [
    "DeployedEENN",
    "admissible_trials",
    "export_eenn",
    "front_rows",
    "high_tradeoff_trials",
    "hypervolume",
    "load_eenn",
    "save_eenn",
]
