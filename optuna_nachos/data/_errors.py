"""Typed errors of the data layer."""

from __future__ import annotations

from optuna_nachos._errors import UserError


class DatasetNotFoundError(UserError, FileNotFoundError):
    """Raised when the files of a dataset cannot be found.

    The message names the files expected, every place looked in, and how to get them.
    """


class DatasetCorruptError(UserError, ValueError):
    """Raised when the files of a dataset exist but cannot be read or are inconsistent."""


class UnknownDatasetError(UserError, KeyError):
    """Raised for a dataset name that is not registered; the message lists the known names."""

    def __str__(self) -> str:  # KeyError would show the message quoted, as a repr
        return str(self.args[0]) if self.args else ""
