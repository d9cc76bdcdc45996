"""Parsing and printing helpers shared by the commands."""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence

from optuna.trial import FrozenTrial

from optuna_nachos.results import front_rows

_SUFFIXES = {"": 1, "K": 1e3, "M": 1e6, "G": 1e9}


class CommandError(Exception):
    """A user error: printed as one line, exit status 2."""


def parse_macs(text: str) -> float:
    """Parse a MAC amount such as ``2700000``, ``2.7M``, ``950K`` or ``1.2G``."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMgG]?)\s*", text)
    if match is None:
        raise argparse.ArgumentTypeError(
            f"invalid MAC amount {text!r}: use a number with an optional K, M or G suffix, "
            "e.g. 2.7M"
        )
    value = float(match.group(1)) * _SUFFIXES[match.group(2).upper()]
    if value <= 0:
        raise argparse.ArgumentTypeError(f"a MAC amount must be positive, got {text!r}")
    return value


def parse_fraction(text: str) -> float:
    """Parse an accuracy in ``[0, 1)``."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid accuracy {text!r}: use e.g. 0.65") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(
            f"accuracy must be a fraction in [0, 1), got {text!r} (write 65 % as 0.65)"
        )
    return value


def _int_at_least(minimum: int, what: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    parse.__name__ = what.replace(" ", "_")
    return parse


positive_int = _int_at_least(1, "a positive integer")
"""Parse a positive integer."""

non_negative_int = _int_at_least(0, "an integer >= 0")
"""Parse an integer >= 0."""


def _numbers(values: Sequence[float] | None, fmt: str) -> str:
    return "-" if values is None else " ".join(format(v, fmt) for v in values)


def format_front(trials: Sequence[FrozenTrial], *, as_json: bool = False) -> str:
    """The admissible front as a text table, or JSON.

    The trials are chosen on the validation split; the table shows those figures
    (``val acc``, ``val MACs``) and, beside them, the test figures to report (``test acc``,
    ``test MACs``) with the test exit ratios.
    """
    rows = front_rows(trials)
    if as_json:
        return json.dumps(rows, indent=2)
    if not rows:
        return "No admissible trial yet (none is feasible)."
    header = (
        f"{'trial':>5}  {'val acc':>8}  {'val MACs':>9}  {'test acc':>8}  {'test MACs':>9}  "
        f"{'peak MACs':>9}  exits  {'thresholds':<22}  test exit ratios"
    )
    lines = [
        "Chosen on the validation split (val); test figures reported for the chosen trials.",
        header,
        "-" * len(header),
    ]
    for row in rows:
        peak = "-" if row["peak_macs"] is None else f"{row['peak_macs'] / 1e6:8.3f}M"
        test_acc = "-" if row["test_accuracy"] is None else f"{row['test_accuracy']:.4f}"
        test_macs = "-" if row["test_avg_macs"] is None else f"{row['test_avg_macs'] / 1e6:.3f}M"
        lines.append(
            f"{row['trial']:>5}  {row['accuracy']:>8.4f}  {row['avg_macs'] / 1e6:>8.3f}M  "
            f"{test_acc:>8}  {test_macs:>9}  "
            f"{peak:>9}  {''.join(map(str, row['exit_stages'] or [])) or '-':<5}  "
            f"{_numbers(row['thresholds'], '.2f'):<22}  {_numbers(row['exit_ratios'], '.2f')}"
        )
    return "\n".join(lines)
