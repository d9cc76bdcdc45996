"""The package logger."""

from __future__ import annotations

import logging

import optuna


def get_logger() -> logging.Logger:
    """The ``optuna_nachos`` logger, a child of Optuna's logging set-up."""
    return optuna.logging.get_logger("optuna_nachos")
