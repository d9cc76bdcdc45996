"""Results of an EENN search: the admissible front, trade-offs, and trained networks."""

from optuna_nachos.results._export import (
    DeployedEENN,
    export_eenn,
    load_eenn,
    save_eenn,
)
from optuna_nachos.results._front import admissible_trials, high_tradeoff_trials, hypervolume

__all__ = [
    "DeployedEENN",
    "admissible_trials",
    "export_eenn",
    "high_tradeoff_trials",
    "hypervolume",
    "load_eenn",
    "save_eenn",
]
