"""Amounts shown as a user writes them: ``2.7M`` rather than ``2700000.0`` or ``3e+06``."""

from __future__ import annotations

import math

_SCALES = (("G", 1e9), ("M", 1e6), ("K", 1e3))


def format_amount(value: float) -> str:
    """An amount with the largest ``K``/``M``/``G`` suffix it reaches, unrounded.

    ``2.7e6`` gives ``2.7M``, ``3e6`` gives ``3M``, ``950_000`` gives ``950K``, ``2.7`` gives
    ``2.7``: the text the command line parses back to the same amount (up to 12 significant
    digits), so settings and errors show a budget as it was given.
    """
    value = float(value)
    if not math.isfinite(value):
        return str(value)
    for suffix, scale in _SCALES:
        if abs(value) >= scale:
            return f"{value / scale:.12g}{suffix}"
    return f"{value:.12g}"
