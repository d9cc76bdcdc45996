"""Plain rows describing trials of the admissible front, for tables and JSON."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from optuna.trial import FrozenTrial


def front_rows(trials: Sequence[FrozenTrial]) -> list[dict[str, Any]]:
    """Plain JSON rows describing trials of an EENN study (usually :func:`admissible_trials`).

    Each row holds ``trial`` (the number), ``accuracy``, ``avg_macs``, ``peak_macs``,
    ``exit_stages`` (stages followed by an early exit), ``thresholds``, ``exit_ratios`` and
    ``params``; values the trial did not record are ``None``. Trials of a study that uses a
    latency table also carry ``avg_latency_ms`` and ``peak_latency_ms``; when latency is the
    second objective, ``avg_macs`` comes from the ``avg_macs`` user attribute.

    Args:
        trials: Completed trials with their two objective values.
    """
    rows = []
    for trial in trials:
        attrs = trial.user_attrs
        config = attrs.get("config", {})
        latency = "avg_latency_ms" in attrs or "exit_latency_ms" in attrs
        by_latency = attrs.get("operating_curve_cost") == "latency_ms"
        row = {
            "trial": trial.number,
            "accuracy": trial.values[0],
            "avg_macs": attrs.get("avg_macs") if by_latency else trial.values[1],
            "peak_macs": attrs.get("peak_macs"),
            "exit_stages": config.get("exit_stages"),
            "thresholds": attrs.get("thresholds"),
            "exit_ratios": attrs.get("exit_ratios"),
            "params": attrs.get("params"),
        }
        if latency:
            row["avg_latency_ms"] = attrs.get("avg_latency_ms")
            row["peak_latency_ms"] = attrs.get("peak_latency_ms")
        rows.append(row)
    return rows
