"""Accuracy against average cost (MACs or latency) of every finished trial, by admissibility."""

from __future__ import annotations

import optuna
import plotly.graph_objects as go
from optuna.trial import FrozenTrial, TrialState

from optuna_nachos.record import (
    ACCURACY_INDEX,
    COST_INDEX,
    SKIP_REASON_ATTR,
    EENNTrial,
    objective_values,
)
from optuna_nachos.results import admissible_trials
from optuna_nachos.study import is_feasible
from optuna_nachos.visualization._common import (
    ACCURACY_TITLE,
    COLORS,
    MACS_AXIS,
    CostAxis,
    add_reference_lines,
    base_layout,
    check_study,
    cost_axis,
    format_values,
    references,
    trial_config,
)

ADMISSIBLE = "admissible (Pareto-optimal)"
FEASIBLE = "feasible, dominated"
INFEASIBLE = "infeasible"
SKIPPED = "not trained (static guard)"


def trial_hover(trial: FrozenTrial, *, axis: CostAxis = MACS_AXIS) -> str:
    """Hover text of a trial: number, architecture, exits, thresholds, accuracy, cost."""
    accuracy, cost = objective_values(trial)
    lines = [f"<b>trial {trial.number}</b>"]
    record = EENNTrial.from_trial(trial)
    config = trial_config(record)
    if config is not None:
        exits = ", ".join(map(str, config.exit_stages)) or "none"
        lines += [config.short_name(), f"early exits after stages {exits}"]
    if record.skip_reason is not None:
        lines.append(f"not trained: {record.skip_reason}")
        lines.append(f"{axis.describe(cost)} at least (cost of the first exit)")
        return "<br>".join(lines)
    if record.thresholds is not None:
        lines.append(f"thresholds {format_values(record.thresholds)}")
    lines += [f"accuracy {accuracy:.2%}", axis.describe(cost)]
    violated = [name for name, value in trial.constraints.items() if value > 0]
    if violated:
        lines.append("violates " + ", ".join(violated))
    return "<br>".join(lines)


def _trace(
    trials: list[FrozenTrial], *, axis: CostAxis, name: str, marker: dict, **kwargs: object
) -> go.Scatter:
    return go.Scatter(
        x=[axis.plotted(t.values[COST_INDEX]) for t in trials],
        y=[float(t.values[ACCURACY_INDEX]) for t in trials],
        customdata=[t.number for t in trials],
        text=[trial_hover(t, axis=axis) for t in trials],
        hovertemplate="%{text}<extra></extra>",
        name=name,
        marker=marker,
        **kwargs,
    )


def plot_pareto_front(
    study: optuna.Study,
    *,
    max_avg_macs: float | None = None,
    min_accuracy: float | None = None,
    include_skipped: bool = True,
) -> go.Figure:
    """Accuracy against average cost of the finished trials of an EENN study.

    The completed trials fall into four traces (in this order): infeasible trials (a
    constraint above 0, or no constraint recorded), trials the static guard rejected without
    training (user attribute ``skipped_training``; plotted at accuracy 0 and the cost of their
    first exit), feasible trials dominated by another feasible trial, and the admissible front
    (:func:`~optuna_nachos.results.admissible_trials`) joined by a staircase. Every point's
    ``customdata`` is its trial number; the hover shows the architecture, exits, thresholds,
    accuracy and average cost. The budget is a vertical dashed line, the accuracy floor a
    horizontal dotted one, and the admissible region between them is shaded. The cost axis is
    the study's second objective: average MACs (in millions), or average latency in ms in a
    study searched with ``--objective latency``, whose budget is ``max_avg_latency_ms``.

    Args:
        study: A study with the objectives (accuracy, average MACs or latency).
        max_avg_macs: Budget to draw, in the cost axis's unit (MACs, or ms in a latency
            study); defaults to the study's setting.
        min_accuracy: Accuracy floor to draw; defaults to the study setting ``min_accuracy``.
        include_skipped: Plot the trials rejected by the static guard (their own trace).

    Returns:
        The figure; the x axis is in millions of MACs, or in ms.

    Raises:
        TypeError: If ``study`` is not a study.
        ValueError: If the study does not have two objectives.
    """
    check_study(study, figure="plot_pareto_front")
    axis = cost_axis(study)
    budget, floor = references(study, max_avg_macs, min_accuracy, axis=axis)
    completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    front = admissible_trials(study)
    on_front = {t.number for t in front}
    skipped = [t for t in completed if SKIP_REASON_ATTR in t.user_attrs]
    trained = [t for t in completed if SKIP_REASON_ATTR not in t.user_attrs]
    feasible = [t for t in trained if is_feasible(t) and t.number not in on_front]
    infeasible = [t for t in trained if not is_feasible(t)]
    if not include_skipped:
        skipped = []

    fig = go.Figure()
    fig.add_trace(
        _trace(
            infeasible,
            axis=axis,
            name=INFEASIBLE,
            mode="markers",
            marker={"color": COLORS["infeasible"], "symbol": "x", "size": 9},
        )
    )
    if include_skipped:
        fig.add_trace(
            _trace(
                skipped,
                axis=axis,
                name=SKIPPED,
                mode="markers",
                marker={"color": COLORS["skipped"], "symbol": "triangle-down-open", "size": 9},
            )
        )
    fig.add_trace(
        _trace(
            feasible,
            axis=axis,
            name=FEASIBLE,
            mode="markers",
            marker={"color": COLORS["feasible"], "size": 9},
        )
    )
    fig.add_trace(
        _trace(
            front,
            axis=axis,
            name=ADMISSIBLE,
            mode="lines+markers",
            line={"shape": "hv", "color": COLORS["admissible"], "width": 2},
            marker={"color": COLORS["admissible"], "size": 12, "symbol": "star"},
        )
    )
    if budget is not None and floor is not None:
        fig.add_shape(
            type="rect",
            x0=0,
            x1=axis.plotted(budget),
            y0=floor,
            y1=1,
            fillcolor=COLORS["admissible"],
            opacity=0.07,
            line_width=0,
            layer="below",
            name="admissible region",
        )
    add_reference_lines(fig, budget, floor, axis=axis)
    name = f" of study {study.study_name!r}" if study.study_name else ""
    base_layout(
        fig,
        title=f"Accuracy vs. {'average latency' if axis.latency else 'average MACs'}{name}: "
        f"{len(completed)} finished trials, "
        f"{len(front)} admissible",
        xaxis_title=f"{axis.title}, validation split",
        yaxis_title=ACCURACY_TITLE,
        yaxis_tickformat=".0%",
    )
    # The cost axis fits the points and the budget (not from 0, which would squeeze every
    # point against the budget line).
    costs = [axis.plotted(t.values[COST_INDEX]) for t in (*infeasible, *skipped, *feasible, *front)]
    if budget is not None:
        costs.append(axis.plotted(budget))
    if costs:
        low, high = min(costs), max(costs)
        pad = max(0.06 * (high - low), 0.02 * abs(high), 1e-9)
        fig.update_xaxes(range=[low - pad, high + pad])
    accuracies = [
        float(t.values[ACCURACY_INDEX]) for t in (*infeasible, *skipped, *feasible, *front)
    ]
    if floor is not None:
        accuracies.append(floor)
    if accuracies:
        low, high = min(accuracies), max(accuracies)
        pad = max(0.05 * (high - low), 0.02)
        fig.update_yaxes(range=[low - pad, min(high + pad, 1.0 + pad)])
    return fig
