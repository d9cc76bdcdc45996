"""Results of an EENN search: the admissible front, its hypervolume and trade-off picks.

The trained networks themselves (saving, exporting, loading and running them) live in
:mod:`optuna_nachos.deploy`.
"""

from optuna_nachos.results._front import (
    admissible_trials,
    high_tradeoff_trials,
    hypervolume,
    hypervolume_reference,
)
from optuna_nachos.results._rows import front_rows

__all__ = [
    "admissible_trials",
    "front_rows",
    "high_tradeoff_trials",
    "hypervolume",
    "hypervolume_reference",
]
