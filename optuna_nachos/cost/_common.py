"""Validation and per-exit composition shared by the analytic and the fvcore counters."""

from __future__ import annotations

from collections.abc import Sequence

CONVENTIONS = ("nachos", "reference")
"""Ways to charge a sample for the exit heads it passed: ``"nachos"`` counts them,
``"reference"`` (the NACHOS reference repository) leaves them out."""

METHODS = ("analytic", "fvcore")
"""Ways to count: closed form without building modules, or fvcore on the built network."""


def check_convention(convention: str) -> None:
    if convention not in CONVENTIONS:
        raise ValueError(
            f"unknown cost convention {convention!r}; expected one of {CONVENTIONS} "
            "('nachos' charges the heads a sample passed, 'reference' does not)."
        )


def check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown counting method {method!r}; expected one of {METHODS}.")


def check_counts(num_classes: int, in_channels: int) -> None:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}.")
    if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
        raise ValueError(f"in_channels must be a positive integer, got {in_channels!r}.")


def compose_exits(
    cumulative: Sequence[int],
    exit_positions: Sequence[int],
    head_values: Sequence[int],
    final_value: int,
    *,
    passed_heads: bool,
) -> list[int]:
    """Per-exit totals from per-segment cumulative values and per-head values.

    Args:
        cumulative: ``cumulative[i]`` is the value of segments ``0..i``.
        exit_positions: Segment index read by each early exit, increasing.
        head_values: Value of each early-exit head, in the same order.
        final_value: Value of the final head.
        passed_heads: Whether an exit also carries the heads of the earlier exits.
    """
    out = []
    passed = 0
    for position, head in zip(exit_positions, head_values, strict=True):
        out.append(int(cumulative[position] + head + passed))
        if passed_heads:
            passed += head
    out.append(int(cumulative[-1] + final_value + passed))
    return out
