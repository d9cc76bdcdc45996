"""Hypervolume of the admissible front as the search goes on, for one study or several."""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence

import optuna
import plotly.graph_objects as go
from optuna.trial import FrozenTrial, TrialState

from optuna_nachos.results import hypervolume, hypervolume_reference
from optuna_nachos.study import is_feasible
from optuna_nachos.visualization._common import EXIT_COLORS, add_message, base_layout, check_study

_NEVER = datetime.datetime.max


def _completion_order(trial: FrozenTrial) -> tuple[datetime.datetime, int]:
    return (trial.datetime_complete or _NEVER, trial.number)


def hypervolume_history(
    study: optuna.Study,
    *,
    min_accuracy: float | None = None,
    max_avg_macs: float | None = None,
) -> tuple[list[FrozenTrial], list[float]]:
    """The completed trials in completion order and the hypervolume after each of them.

    The value after ``k`` trials is :func:`~optuna_nachos.results.hypervolume` of the first
    ``k`` trials with the study's reference point, so the last one equals
    ``hypervolume(study)``.

    Args:
        study: A study with the objectives (accuracy, average MACs).
        min_accuracy: Accuracy floor of the reference point; defaults to the study setting.
        max_avg_macs: MAC budget of the reference point; defaults to the study setting.

    Returns:
        The completed trials, and one hypervolume per trial.

    Raises:
        ValueError: If the study has no reference point and none is passed.
    """
    floor, budget = hypervolume_reference(study, min_accuracy, max_avg_macs)
    trials = sorted(
        study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), key=_completion_order
    )
    feasible: list[FrozenTrial] = []
    values: list[float] = []
    current = 0.0
    for trial in trials:
        if is_feasible(trial):
            feasible.append(trial)
            current = hypervolume(feasible, min_accuracy=floor, max_avg_macs=budget)
        values.append(current)
    return trials, values


def _labelled(
    studies: optuna.Study | Sequence[optuna.Study] | Mapping[str, optuna.Study],
    labels: Sequence[str] | None,
) -> list[tuple[str, optuna.Study]]:
    if isinstance(studies, optuna.Study):
        studies = [studies]
    if isinstance(studies, Mapping):
        if labels is not None:
            raise ValueError("pass labels or a mapping label -> study, not both.")
        pairs = [(str(label), study) for label, study in studies.items()]
    else:
        studies = list(studies)
        if labels is None:
            labels = [study.study_name or f"study {i + 1}" for i, study in enumerate(studies)]
            if len(set(labels)) < len(labels):
                labels = [f"{label} ({i + 1})" for i, label in enumerate(labels)]
        elif len(labels) != len(studies):
            raise ValueError(f"got {len(labels)} labels for {len(studies)} studies.")
        pairs = list(zip([str(label) for label in labels], studies))
    if not pairs:
        raise ValueError("plot_hypervolume_history needs at least one study.")
    for _, study in pairs:
        check_study(study, figure="plot_hypervolume_history")
    return pairs


def plot_hypervolume_history(
    studies: optuna.Study | Sequence[optuna.Study] | Mapping[str, optuna.Study],
    *,
    labels: Sequence[str] | None = None,
    min_accuracy: float | None = None,
    max_avg_macs: float | None = None,
) -> go.Figure:
    """Hypervolume of the admissible front after each finished trial, for one or more studies.

    The x axis counts the completed trials in the order they completed; the y value after
    ``k`` of them is the normalized hypervolume (:func:`~optuna_nachos.results.hypervolume`)
    of the admissible front of those ``k`` trials. It never decreases, and the last value
    equals ``hypervolume(study)``. Several studies (e.g. one per sampler) are overlaid, one
    trace each; compare them only under the same budget and floor. The ``customdata`` of each
    point is the number of the trial that completed there.

    Args:
        studies: A study, a sequence of studies, or a mapping label -> study.
        labels: Trace names for a sequence of studies; the study names by default.
        min_accuracy: Accuracy floor of the reference point, for every study (by default each
            study's own setting).
        max_avg_macs: MAC budget of the reference point, for every study (by default each
            study's own setting).

    Returns:
        The figure.

    Raises:
        ValueError: If no study is given, the labels do not match the studies, or a study has
            no reference point (no ``min_accuracy`` / ``max_avg_macs`` setting and none passed).
    """
    pairs = _labelled(studies, labels)
    fig = go.Figure()
    for index, (label, study) in enumerate(pairs):
        trials, values = hypervolume_history(
            study, min_accuracy=min_accuracy, max_avg_macs=max_avg_macs
        )
        fig.add_trace(
            go.Scatter(
                x=list(range(1, len(trials) + 1)),
                y=values,
                customdata=[t.number for t in trials],
                hovertemplate=(
                    f"<b>{label}</b><br>after %{{x}} finished trials (last: trial "
                    "%{customdata})<br>hypervolume %{y:.4f}<extra></extra>"
                ),
                mode="lines+markers",
                line={"shape": "hv", "color": EXIT_COLORS[index % len(EXIT_COLORS)]},
                marker={"size": 5},
                name=label,
            )
        )
    if all(len(trace.x) == 0 for trace in fig.data):
        add_message(fig, "No finished trial yet.")
    base_layout(
        fig,
        title="Hypervolume of the admissible front"
        + (f" of study {pairs[0][0]!r}" if len(pairs) == 1 else f": {len(pairs)} studies"),
        xaxis_title="finished trials",
        yaxis_title="normalized hypervolume (reference: budget, floor)",
        yaxis_rangemode="tozero",
        xaxis_rangemode="tozero",
    )
    return fig
