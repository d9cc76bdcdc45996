"""Helpers shared by the figures: units, trial attributes, reference lines, empty figures."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import optuna
import plotly.graph_objects as go
from optuna.trial import FrozenTrial

from optuna_nachos.config import ConfigError, EENNConfig
from optuna_nachos.record import (
    ACCURACY_INDEX,
    CONFIG_ATTR,
    COST_INDEX,
    MAX_AVG_MACS,
    MIN_ACCURACY,
    SKIP_REASON_ATTR,
    study_settings,
)

MACS_SCALE = 1e6
"""MACs are plotted in millions."""

MACS_TITLE = "average MACs per sample (millions)"
ACCURACY_TITLE = "accuracy (test split)"

COLORS = {
    "admissible": "#2ca02c",
    "feasible": "#1f77b4",
    "infeasible": "#d62728",
    "skipped": "#7f7f7f",
    "chosen": "#ff7f0e",
    "budget": "#9467bd",
    "floor": "#8c564b",
}

EXIT_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


def millions(macs: float) -> float:
    return float(macs) / MACS_SCALE


def format_macs(macs: float) -> str:
    """MACs as ``"0.640 M"``: the form the figures print."""
    return f"{float(macs) / MACS_SCALE:.3f} M"


def format_values(values: Iterable[float], *, digits: int = 2) -> str:
    values = list(values)
    return ", ".join(f"{float(v):.{digits}f}" for v in values) if values else "none"


def require_attrs(trial: FrozenTrial, names: Sequence[str], *, figure: str) -> None:
    """Raise a clear error when a trial lacks user attributes a figure needs."""
    if not isinstance(trial, FrozenTrial):
        raise TypeError(
            f"{figure} takes a FrozenTrial (e.g. study.trials[i]), got {type(trial).__name__}."
        )
    missing = [name for name in names if name not in trial.user_attrs]
    if not missing:
        return
    hint = ""
    if SKIP_REASON_ATTR in trial.user_attrs:
        hint = f" It was not trained ({trial.user_attrs[SKIP_REASON_ATTR]})."
    raise ValueError(
        f"{figure} needs the user attribute(s) {missing} of trial {trial.number}, written by "
        f"NachosObjective on every trained trial.{hint}"
    )


def require_values(trial: FrozenTrial, *, figure: str) -> tuple[float, float]:
    if trial.values is None or len(trial.values) != 2:
        raise ValueError(
            f"{figure} needs a finished trial with the values (accuracy, average MACs); trial "
            f"{trial.number} is {trial.state.name} with values {trial.values}."
        )
    return float(trial.values[ACCURACY_INDEX]), float(trial.values[COST_INDEX])


def trial_config(trial: FrozenTrial) -> EENNConfig | None:
    """The configuration recorded by the objective, or ``None`` when absent or unreadable."""
    data = trial.user_attrs.get(CONFIG_ATTR)
    if data is None:
        return None
    try:
        return EENNConfig.from_dict(data)
    except ConfigError:
        return None


def exit_names(config: EENNConfig | None, num_exits: int) -> list[str]:
    """Readable exit names, e.g. ``["after stage 1", "after stage 3", "final"]``."""
    if config is not None and config.num_exits == num_exits:
        return [f"after stage {s}" for s in config.exit_stages] + ["final"]
    return [f"exit {j}" for j in range(1, num_exits)] + ["final"]


def check_study(study: Any, *, figure: str) -> optuna.Study:
    if not isinstance(study, optuna.Study):
        raise TypeError(f"{figure} takes an optuna.Study, got {type(study).__name__}.")
    if len(study.directions) != 2:
        raise ValueError(
            f"{figure} needs a study with the two objectives (accuracy, average MACs), as made by "
            f"optuna_nachos.create_study; study {study.study_name!r} has "
            f"{len(study.directions)}."
        )
    return study


def references(
    study: optuna.Study | None, max_avg_macs: float | None, min_accuracy: float | None
) -> tuple[float | None, float | None]:
    """Budget and floor: the keyword arguments, else the study settings, else ``None``."""
    settings = study_settings(study) if study is not None else {}
    if max_avg_macs is None:
        max_avg_macs = settings.get(MAX_AVG_MACS)
    if min_accuracy is None:
        min_accuracy = settings.get(MIN_ACCURACY)
    return (
        None if max_avg_macs is None else float(max_avg_macs),
        None if min_accuracy is None else float(min_accuracy),
    )


def add_reference_lines(
    fig: go.Figure, max_avg_macs: float | None, min_accuracy: float | None
) -> None:
    """The MAC budget (vertical) and the accuracy floor (horizontal), with their labels."""
    if max_avg_macs is not None:
        fig.add_vline(
            x=millions(max_avg_macs),
            line={"color": COLORS["budget"], "dash": "dash", "width": 2},
            annotation={
                "text": f"MAC budget {format_macs(max_avg_macs)}",
                "font": {"color": COLORS["budget"]},
            },
            annotation_position="top right",
            name="max_avg_macs",
        )
    if min_accuracy is not None:
        fig.add_hline(
            y=min_accuracy,
            line={"color": COLORS["floor"], "dash": "dot", "width": 2},
            annotation={
                "text": f"accuracy floor {min_accuracy:.1%}",
                "font": {"color": COLORS["floor"]},
            },
            annotation_position="bottom right",
            name="min_accuracy",
        )


def empty_figure(title: str, message: str) -> go.Figure:
    """A figure with no data and a centered explanation."""
    fig = go.Figure()
    fig.update_layout(
        title=title, template="plotly_white", xaxis_visible=False, yaxis_visible=False
    )
    fig.add_annotation(
        text=message,
        xref="paper",
        yref="paper",
        x=0.5,
        y=0.5,
        showarrow=False,
        font={"size": 16},
        name="message",
    )
    return fig


def base_layout(fig: go.Figure, *, title: str, **layout: Any) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0.02, "xanchor": "left"},
        template="plotly_white",
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "right", "x": 1},
        margin={"t": 110},
        **layout,
    )
    return fig
