"""The package's loggers, children of Optuna's library logger.

Every module logs through ``get_logger(__name__)``: the logger ``optuna.optuna_nachos.<module>``
sits under Optuna's ``optuna`` logger, so Optuna's handler and format print the package's
messages and :func:`optuna.logging.set_verbosity` (or ``disable_default_handler``,
``enable_propagation``) governs them as it governs Optuna's own. Layers without Optuna (data,
training, supernet) log through it too: this module does not import Optuna, and their
messages appear as soon as Optuna configures its logger (on import).
"""

from __future__ import annotations

import logging

OPTUNA_LOGGER = "optuna"
"""The name of Optuna's library logger."""

LOGGER_NAME = f"{OPTUNA_LOGGER}.optuna_nachos"
"""The logger of the whole package; set its level to tune the package apart from Optuna."""

logging.getLogger(LOGGER_NAME)  # created now, so that every module's logger sits under it


def get_logger(name: str) -> logging.Logger:
    """The logger of a module of the package (pass ``__name__``), under Optuna's logger."""
    if name.startswith(f"{OPTUNA_LOGGER}."):
        return logging.getLogger(name)
    return logging.getLogger(f"{OPTUNA_LOGGER}.{name}")
