"""The ``optuna-nachos`` command line."""

from optuna_nachos.cli._main import build_parser, main

__all__ = ["build_parser", "main"]
