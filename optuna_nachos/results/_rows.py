"""Plain rows describing trials of the admissible front, for tables and JSON."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from optuna.trial import FrozenTrial

from optuna_nachos.study._protocol import is_legacy, reported_values, selection_values


def front_rows(trials: Sequence[FrozenTrial]) -> list[dict[str, Any]]:
    """Plain JSON rows describing trials of an EENN study (usually :func:`admissible_trials`).

    Each row holds ``trial`` (the number), ``accuracy`` and ``avg_macs`` (the figures the
    trial was chosen on: the validation split, named by ``chosen_on``), ``test_accuracy`` and
    ``test_avg_macs`` (the figures to report, on the test split at the same thresholds),
    ``peak_macs``, ``exit_stages`` (stages followed by an early exit), ``thresholds``,
    ``exit_ratios`` (on test) and ``params``; values the trial did not record are ``None``.
    Trials of a study that uses a latency table also carry ``avg_latency_ms`` (validation)
    and ``peak_latency_ms``.

    Args:
        trials: Completed trials with their two objective values.
    """
    rows = []
    for trial in trials:
        attrs = trial.user_attrs
        config = attrs.get("config", {})
        accuracy, second = selection_values(trial)
        test = reported_values(trial)
        chosen_on = "validation" if is_legacy(trial) or test is not None else "objective values"
        latency = "avg_latency_ms" in attrs or "exit_latency_ms" in attrs
        by_latency = attrs.get("operating_curve_cost") == "latency_ms"
        row = {
            "trial": trial.number,
            "accuracy": accuracy,
            "avg_macs": attrs.get("avg_macs") if by_latency else second,
            "chosen_on": chosen_on,
            "test_accuracy": None if test is None else test[0],
            "test_avg_macs": None if test is None else test[1],
            "peak_macs": attrs.get("peak_macs"),
            "exit_stages": config.get("exit_stages"),
            "thresholds": attrs.get("thresholds"),
            "exit_ratios": attrs.get("exit_ratios"),
            "params": attrs.get("params"),
        }
        if latency:
            row["avg_latency_ms"] = attrs.get("val_avg_latency_ms", attrs.get("avg_latency_ms"))
            row["peak_latency_ms"] = attrs.get("peak_latency_ms")
        rows.append(row)
    return rows
