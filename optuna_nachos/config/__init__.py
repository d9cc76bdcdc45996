"""Plain configuration objects: one early-exit network, and training settings."""

from optuna_nachos.config._eenn import (
    EXIT_STAGES,
    MAX_DEPTH,
    NUM_STAGES,
    ConfigError,
    EENNConfig,
)
from optuna_nachos.config._exits import ExitsConfig

__all__ = [
    "EXIT_STAGES",
    "MAX_DEPTH",
    "NUM_STAGES",
    "ConfigError",
    "EENNConfig",
    "ExitsConfig",
]
