"""The base of the package's errors that mean wrong input rather than a bug."""

from __future__ import annotations


class UserError(Exception):
    """An error in what the user gave: a setting, a name, a file or a folder.

    The message says what was wrong and how to fix it, so the ``optuna-nachos`` command prints
    it as one line (exit status 2) instead of a traceback. The package's typed errors derive
    from it beside the built-in class they have always been (``ConfigError`` is a
    ``ValueError``, ``UnknownDatasetError`` a ``KeyError``, ...), so ``except ValueError``
    keeps working.
    """
