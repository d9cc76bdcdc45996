"""Where samples leave: exit ratios of the admissible trials, accuracy and cost per exit."""

from __future__ import annotations

import optuna
import plotly.graph_objects as go
from optuna.trial import FrozenTrial
from plotly.subplots import make_subplots

from optuna_nachos.config import NUM_STAGES
from optuna_nachos.record import (
    COST_INDEX,
    reported_values,
)
from optuna_nachos.results import admissible_trials
from optuna_nachos.visualization._common import (
    COLORS,
    EXIT_COLORS,
    base_layout,
    check_study,
    empty_figure,
    exit_names,
    format_macs,
    millions,
    require_record,
    require_values,
    trial_config,
)

RATIOS_TITLE = "Exit ratios of the admissible trials"


def _exit_label(stage: int) -> str:
    return "final exit" if stage == NUM_STAGES else f"exit after stage {stage}"


def plot_exit_ratios(study: optuna.Study) -> go.Figure:
    """Stacked bars of the fraction of test samples leaving at each exit, per admissible trial.

    One bar per admissible trial (cheapest first, labelled with its trial number and average
    MACs), one trace per exit position: after stage 1, 2, 3 or 4, or the final exit (after
    stage 5). A trial without an exit at a position has no segment there (``None``), so each
    bar sums to 1. The ``customdata`` of every segment is the trial number.

    Args:
        study: A study of :class:`~optuna_nachos.NachosObjective` trials.

    Returns:
        The figure; when no trial is admissible, a figure that says so.

    Raises:
        ValueError: If an admissible trial lacks the user attributes ``exit_ratios`` or
            ``config``.
    """
    check_study(study, figure="plot_exit_ratios")
    front = admissible_trials(study)
    if not front:
        return empty_figure(
            RATIOS_TITLE,
            "No admissible trial yet: no trained trial satisfies every constraint.",
        )
    rows = []
    for trial in front:
        record = require_record(trial, ["exit_ratios", "config"], figure="plot_exit_ratios")
        config = trial_config(record)
        ratios = list(record.exit_ratios)
        if config is None or len(ratios) != config.num_exits:
            raise ValueError(
                f"trial {trial.number}: its exit_ratios {ratios} do not match its recorded "
                "configuration (one ratio per early exit, then the final exit)."
            )
        stages = [*config.exit_stages, NUM_STAGES]
        rows.append((trial, dict(zip(stages, ratios)), dict(zip(stages, record.exit_macs or ()))))
    labels = [f"trial {t.number}<br>{format_macs(t.values[COST_INDEX])}" for t, _, _ in rows]
    positions = sorted({stage for _, ratios, _ in rows for stage in ratios})
    fig = go.Figure()
    for index, stage in enumerate(positions):
        hover = []
        for trial, ratios, costs in rows:
            cost = f"<br>cost {format_macs(costs[stage])} MACs" if stage in costs else ""
            hover.append(
                f"<b>trial {trial.number}</b><br>{_exit_label(stage)}"
                f"<br>{ratios.get(stage, 0.0):.1%} of the samples leave here{cost}"
            )
        fig.add_trace(
            go.Bar(
                x=labels,
                y=[ratios.get(stage) for _, ratios, _ in rows],
                name=_exit_label(stage),
                customdata=[t.number for t, _, _ in rows],
                text=hover,
                hovertemplate="%{text}<extra></extra>",
                textposition="none",
                marker_color=EXIT_COLORS[index % len(EXIT_COLORS)],
            )
        )
    base_layout(
        fig,
        title=RATIOS_TITLE,
        barmode="stack",
        xaxis_title="admissible trial (average MACs on the validation split, cheapest first)",
        yaxis_title="fraction of test samples leaving at the exit",
        yaxis_tickformat=".0%",
        yaxis_range=[0, 1],
    )
    return fig


def plot_exit_metrics(trial: FrozenTrial) -> go.Figure:
    """Accuracy and cost of every exit of one trained trial.

    Top: the test accuracy of each exit's classifier on all test samples (user attribute
    ``accuracy_per_exit``), with the network's test accuracy under early exiting as a dashed
    line. Bottom: the MACs a sample pays when it leaves at that exit (``exit_macs``), with the
    test average MACs as a dashed line; the bars are labelled with the fraction of samples
    that leave there (``exit_ratios``), also in the hover. Every number drawn is from the test
    split (the lines: ``test_accuracy`` and ``test_avg_macs``; the objective values for a
    trial that lacks them).

    Args:
        trial: A trial trained by :class:`~optuna_nachos.NachosObjective`.

    Returns:
        The figure (two rows sharing the exit axis).

    Raises:
        ValueError: If the trial lacks ``accuracy_per_exit``, ``exit_macs`` or ``exit_ratios``
            (written by ``NachosObjective`` on trained trials), or their lengths differ.
    """
    record = require_record(
        trial, ["accuracy_per_exit", "exit_macs", "exit_ratios"], figure="plot_exit_metrics"
    )
    # The bars are test figures: so are the lines (the objective values are validation ones).
    accuracy, avg_macs = reported_values(trial) or require_values(trial, figure="plot_exit_metrics")
    accuracies = list(record.accuracy_per_exit)
    costs = list(record.exit_macs)
    ratios = list(record.exit_ratios)
    if not len(accuracies) == len(costs) == len(ratios):
        raise ValueError(
            f"trial {trial.number}: accuracy_per_exit, exit_macs and exit_ratios must have one "
            f"entry per exit, got {len(accuracies)}, {len(costs)} and {len(ratios)}."
        )
    names = exit_names(trial_config(record), len(costs))
    hover = [
        f"<b>{name}</b><br>accuracy {acc:.2%}<br>cost {cost:,.0f} MACs"
        f"<br>{ratio:.1%} of the samples leave here"
        for name, acc, cost, ratio in zip(names, accuracies, costs, ratios)
    ]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    fig.add_trace(
        go.Bar(
            x=names,
            y=accuracies,
            name="accuracy of the exit",
            customdata=ratios,
            text=[f"{a:.1%}" for a in accuracies],
            textposition="inside",
            insidetextanchor="middle",
            hovertext=hover,
            hovertemplate="%{hovertext}<extra></extra>",
            marker_color=COLORS["feasible"],
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Bar(
            x=names,
            y=[millions(c) for c in costs],
            name="MACs when leaving at the exit",
            customdata=ratios,
            text=[f"{r:.0%} leave" for r in ratios],
            textposition="auto",
            insidetextanchor="start",
            hovertext=hover,
            hovertemplate="%{hovertext}<extra></extra>",
            marker_color=COLORS["chosen"],
        ),
        row=2,
        col=1,
    )
    fig.add_hline(
        y=accuracy,
        line={"dash": "dash", "color": COLORS["admissible"]},
        annotation_text=f"with early exiting {accuracy:.1%} (test)",
        annotation_position="top left",
        row=1,
        col=1,
    )
    fig.add_hline(
        y=millions(avg_macs),
        line={"dash": "dash", "color": COLORS["admissible"]},
        annotation_text=f"average {format_macs(avg_macs)} (test)",
        annotation_position="top left",
        row=2,
        col=1,
    )
    base_layout(fig, title=f"Accuracy and cost per exit of trial {trial.number}")
    fig.update_yaxes(title_text="accuracy (test split)", tickformat=".0%", row=1, col=1)
    fig.update_yaxes(range=[0, min(1.15, max(*accuracies, accuracy) * 1.2 + 0.02)], row=1, col=1)
    fig.update_yaxes(title_text="MACs per sample (millions, test split)", row=2, col=1)
    fig.update_xaxes(title_text="exit (position in the backbone)", row=2, col=1)
    return fig
