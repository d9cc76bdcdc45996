"""The packaged objectives: the NACHOS search, and exits on your own backbone."""

from optuna_nachos.objective._errors import BudgetBelowSpaceError
from optuna_nachos.objective._exits import ExitObjective
from optuna_nachos.objective._objective import TEST_EVALUATIONS, NachosObjective

__all__ = [
    "TEST_EVALUATIONS",
    "BudgetBelowSpaceError",
    "ExitObjective",
    "NachosObjective",
]
