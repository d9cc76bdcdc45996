"""Plain rows describing trials of the admissible front, for tables and JSON."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from optuna.trial import FrozenTrial

from optuna_nachos.record import (
    AVG_LATENCY_ATTR,
    AVG_MACS_ATTR,
    CONFIG_ATTR,
    EXIT_LATENCY_ATTR,
    EXIT_RATIOS_ATTR,
    LATENCY_MS,
    OPERATING_CURVE_COST_ATTR,
    PARAMS_ATTR,
    PEAK_LATENCY_ATTR,
    PEAK_MACS_ATTR,
    SELECTION_SPLIT,
    THRESHOLDS_ATTR,
    VAL_AVG_LATENCY_ATTR,
    is_legacy,
    reported_values,
    selection_values,
)


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
        config = attrs.get(CONFIG_ATTR, {})
        accuracy, second = selection_values(trial)
        test = reported_values(trial)
        chosen_on = SELECTION_SPLIT if is_legacy(trial) or test is not None else "objective values"
        latency = AVG_LATENCY_ATTR in attrs or EXIT_LATENCY_ATTR in attrs
        by_latency = attrs.get(OPERATING_CURVE_COST_ATTR) == LATENCY_MS
        row = {
            "trial": trial.number,
            "accuracy": accuracy,
            "avg_macs": attrs.get(AVG_MACS_ATTR) if by_latency else second,
            "chosen_on": chosen_on,
            "test_accuracy": None if test is None else test[0],
            "test_avg_macs": None if test is None else test[1],
            "peak_macs": attrs.get(PEAK_MACS_ATTR),
            "exit_stages": config.get("exit_stages"),
            "thresholds": attrs.get(THRESHOLDS_ATTR),
            "exit_ratios": attrs.get(EXIT_RATIOS_ATTR),
            "params": attrs.get(PARAMS_ATTR),
        }
        if latency:
            row["avg_latency_ms"] = attrs.get(VAL_AVG_LATENCY_ATTR, attrs.get(AVG_LATENCY_ATTR))
            row["peak_latency_ms"] = attrs.get(PEAK_LATENCY_ATTR)
        rows.append(row)
    return rows
