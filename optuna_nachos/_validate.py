"""Checks of numeric settings shared by the configuration dataclasses (no Optuna import)."""

from __future__ import annotations

import math
from typing import Any


def check_integers(obj: Any, names: tuple[str, ...], *, minimum: int) -> None:
    """Raise ``ValueError`` unless each attribute ``names`` of ``obj`` is an int >= ``minimum``.

    Booleans are refused although Python counts them as integers.
    """
    for name in names:
        value = getattr(obj, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")


def coerce_non_negative_floats(obj: Any, names: tuple[str, ...]) -> None:
    """Check that each attribute ``names`` of frozen ``obj`` is a finite number >= 0.

    Each is stored back as a ``float`` (through ``object.__setattr__``, so frozen
    dataclasses can call this from ``__post_init__``).
    """
    for name in names:
        value = getattr(obj, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{name} must be a number, got {value!r}.")
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be finite and >= 0, got {value!r}.")
        object.__setattr__(obj, name, float(value))
