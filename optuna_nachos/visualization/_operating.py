"""The accuracy / average-cost curve of threshold settings of one trained trial."""

from __future__ import annotations

from collections.abc import Sequence

import optuna
import plotly.graph_objects as go
from optuna.trial import FrozenTrial

from optuna_nachos.visualization._common import (
    COLORS,
    CostAxis,
    add_reference_lines,
    base_layout,
    cost_axis,
    exit_names,
    format_values,
    references,
    require_record,
    require_values,
    trial_config,
)


def _hover(
    title: str,
    thresholds: Sequence[float],
    accuracy: float,
    cost: float,
    ratios: Sequence[float] | None,
    names: Sequence[str],
    axis: CostAxis,
) -> str:
    lines = [f"<b>{title}</b>", f"thresholds {format_values(thresholds)}"]
    lines += [f"accuracy {accuracy:.2%}", axis.describe(cost)]
    if ratios:
        lines.append("leave at " + ", ".join(f"{n}: {r:.0%}" for n, r in zip(names, ratios)))
    return "<br>".join(lines)


def plot_operating_curve(
    trial: FrozenTrial,
    *,
    study: optuna.Study | None = None,
    max_avg_macs: float | None = None,
    min_accuracy: float | None = None,
) -> go.Figure:
    """Accuracy against average cost over the exit-threshold settings of one trained trial.

    The curve is the user attribute ``operating_curve`` that
    :class:`~optuna_nachos.NachosObjective` records on every trained trial: the non-dominated
    threshold settings on the test split, cheapest first. The thresholds the trial uses,
    chosen on the validation split within the constraints, are marked as their own trace at
    the trial's values (accuracy, average MACs); being chosen on another split, the point may
    lie slightly below the curve. The budget and accuracy floor are drawn when known. The cost
    is average MACs, or average latency in ms for a trial of a study searched with
    ``--objective latency`` (its curve is recorded in ms).

    Args:
        trial: A trial trained by ``NachosObjective``.
        study: The trial's study, to read the budget and floor from its settings.
        max_avg_macs: Budget to draw, in the curve's unit (overrides the study setting).
        min_accuracy: Accuracy floor to draw (overrides the study setting).

    Returns:
        The figure; the ``customdata`` of the chosen point is the trial number.

    Raises:
        ValueError: If the trial lacks the user attribute ``operating_curve`` (or
            ``thresholds``), written by ``NachosObjective`` on trained trials, or has no values.
    """
    record = require_record(trial, ["operating_curve", "thresholds"], figure="plot_operating_curve")
    accuracy, avg_cost = require_values(trial, figure="plot_operating_curve")
    axis = cost_axis(study, trial)
    budget, floor = references(study, max_avg_macs, min_accuracy, axis=axis)
    points = sorted(record.operating_curve, key=lambda p: p["avg_macs"])
    thresholds = list(record.thresholds)
    ratios = list(record.exit_ratios or ())
    names = exit_names(trial_config(record), len(thresholds) + 1)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[axis.plotted(p["avg_macs"]) for p in points],
            y=[float(p["accuracy"]) for p in points],
            customdata=list(range(len(points))),
            text=[
                _hover(
                    "operating point",
                    p["thresholds"],
                    p["accuracy"],
                    p["avg_macs"],
                    p.get("exit_ratios"),
                    names,
                    axis,
                )
                for p in points
            ],
            hovertemplate="%{text}<extra></extra>",
            mode="lines+markers",
            line={"shape": "hv", "color": COLORS["feasible"]},
            marker={"size": 5, "color": COLORS["feasible"]},
            name="threshold settings (test split)",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[axis.plotted(avg_cost)],
            y=[accuracy],
            customdata=[trial.number],
            text=[
                _hover(
                    f"trial {trial.number}: chosen thresholds",
                    thresholds,
                    accuracy,
                    avg_cost,
                    ratios,
                    names,
                    axis,
                )
            ],
            hovertemplate="%{text}<extra></extra>",
            mode="markers",
            marker={
                "size": 16,
                "symbol": "star",
                "color": COLORS["chosen"],
                "line": {"width": 1, "color": "black"},
            },
            name="chosen thresholds (validation split)",
        )
    )
    add_reference_lines(fig, budget, floor, axis=axis)
    base_layout(
        fig,
        title=f"Operating curve of trial {trial.number}: accuracy vs. cost over exit thresholds",
        xaxis_title=f"{axis.title}; curve: test split, star: validation split",
        yaxis_title="accuracy (curve: test split, star: validation split)",
        yaxis_tickformat=".0%",
    )
    return fig
