"""The packaged NACHOS objective."""

from optuna_nachos.objective._objective import NachosObjective

__all__ = ["NachosObjective"]
