"""Helpers shared by the figures: units, trial attributes, reference lines, empty figures."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import optuna
import plotly.graph_objects as go
from optuna.trial import FrozenTrial

from optuna_nachos.config import ConfigError, EENNConfig
from optuna_nachos.record import (
    ACCURACY_INDEX,
    COST_INDEX,
    LATENCY_MS,
    MAX_AVG_LATENCY,
    MAX_AVG_MACS,
    MIN_ACCURACY,
    EENNTrial,
    is_latency_study,
    study_settings,
)

MACS_SCALE = 1e6
"""MACs are plotted in millions."""

MACS_TITLE = "average MACs per sample (millions)"
LATENCY_TITLE = "average latency per sample (ms)"
ACCURACY_TITLE = "accuracy (validation split, the objective)"

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


class CostAxis(NamedTuple):
    """How a study's second objective is drawn: average MACs (millions) or latency (ms)."""

    latency: bool = False

    @property
    def title(self) -> str:
        return LATENCY_TITLE if self.latency else MACS_TITLE

    @property
    def budget_name(self) -> str:
        """The study setting holding the budget on this axis."""
        return MAX_AVG_LATENCY if self.latency else MAX_AVG_MACS

    def plotted(self, value: float) -> float:
        """``value`` (MACs or ms) in the axis's unit."""
        return float(value) if self.latency else millions(value)

    def describe(self, value: float) -> str:
        """Hover text of an average cost."""
        return f"average latency {value:.3f} ms" if self.latency else f"average MACs {value:,.0f}"

    def budget_text(self, value: float) -> str:
        if self.latency:
            return f"latency budget {value:g} ms"
        return f"MAC budget {format_macs(value)}"


MACS_AXIS = CostAxis(latency=False)
LATENCY_AXIS = CostAxis(latency=True)


def cost_axis(study: optuna.Study | None = None, trial: FrozenTrial | None = None) -> CostAxis:
    """The cost axis of a study (its ``objective`` setting) or of a trial's recorded curve."""
    if trial is not None and EENNTrial.from_trial(trial).operating_curve_cost == LATENCY_MS:
        return LATENCY_AXIS
    settings = study_settings(study) if study is not None else {}
    return LATENCY_AXIS if is_latency_study(settings) else MACS_AXIS


def format_macs(macs: float) -> str:
    """MACs as ``"0.640 M"``: the form the figures print."""
    return f"{float(macs) / MACS_SCALE:.3f} M"


def format_values(values: Iterable[float], *, digits: int = 2) -> str:
    values = list(values)
    return ", ".join(f"{float(v):.{digits}f}" for v in values) if values else "none"


def require_record(trial: FrozenTrial, fields: Sequence[str], *, figure: str) -> EENNTrial:
    """The trial's record, with a clear error when it lacks fields a figure needs.

    Args:
        trial: The trial.
        fields: Fields of :class:`~optuna_nachos.record.EENNTrial` (named as the user
            attributes the objective writes) that must be present.
        figure: The figure's name, for the messages.

    Raises:
        TypeError: If ``trial`` is not a ``FrozenTrial``.
        ValueError: If a field is missing; the message says why when the trial records it.
    """
    if not isinstance(trial, FrozenTrial):
        raise TypeError(
            f"{figure} takes a FrozenTrial (e.g. study.trials[i]), got {type(trial).__name__}."
        )
    record = EENNTrial.from_trial(trial)
    missing = [name for name in fields if getattr(record, name) is None]
    if not missing:
        return record
    hint = ""
    if record.skip_reason is not None:
        hint = f" It was not trained ({record.skip_reason})."
    elif record.test_skipped is not None:
        hint = (
            f" Its test split was not evaluated ({record.test_skipped}): only the trials that "
            "can reach the admissible front are, unless the objective has "
            "test_evaluation='every' (--test-evaluation every)."
        )
    raise ValueError(
        f"{figure} needs the user attribute(s) {missing} of trial {trial.number}, written by "
        f"NachosObjective.{hint}"
    )


def require_values(trial: FrozenTrial, *, figure: str) -> tuple[float, float]:
    if trial.values is None or len(trial.values) != 2:
        raise ValueError(
            f"{figure} needs a finished trial with the values (accuracy, average MACs); trial "
            f"{trial.number} is {trial.state.name} with values {trial.values}."
        )
    return float(trial.values[ACCURACY_INDEX]), float(trial.values[COST_INDEX])


def trial_config(trial: FrozenTrial | EENNTrial) -> EENNConfig | None:
    """The configuration recorded by the objective, or ``None`` when absent or unreadable."""
    record = trial if isinstance(trial, EENNTrial) else EENNTrial.from_trial(trial)
    if record.config is None:
        return None
    try:
        return EENNConfig.from_dict(record.config)
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
    study: optuna.Study | None,
    budget: float | None,
    min_accuracy: float | None,
    *,
    axis: CostAxis = MACS_AXIS,
) -> tuple[float | None, float | None]:
    """Budget (on ``axis``) and floor: the keyword arguments, else the study settings, else
    ``None``."""
    settings = study_settings(study) if study is not None else {}
    if budget is None:
        budget = settings.get(axis.budget_name)
    if min_accuracy is None:
        min_accuracy = settings.get(MIN_ACCURACY)
    return (
        None if budget is None else float(budget),
        None if min_accuracy is None else float(min_accuracy),
    )


def add_reference_lines(
    fig: go.Figure,
    budget: float | None,
    min_accuracy: float | None,
    *,
    axis: CostAxis = MACS_AXIS,
) -> None:
    """The budget on ``axis`` (vertical) and the accuracy floor (horizontal), with labels."""
    if budget is not None:
        fig.add_vline(
            x=axis.plotted(budget),
            line={"color": COLORS["budget"], "dash": "dash", "width": 2},
            annotation={"text": axis.budget_text(budget), "font": {"color": COLORS["budget"]}},
            annotation_position="top right",
            name=axis.budget_name,
        )
    if min_accuracy is not None:
        fig.add_hline(
            y=min_accuracy,
            line={"color": COLORS["floor"], "dash": "dot", "width": 2},
            name="min_accuracy",
        )
        # In the right margin, at the line's height: no marker can lie under the label.
        fig.add_annotation(
            x=1,
            xref="paper",
            xanchor="left",
            y=min_accuracy,
            yref="y",
            text=f"accuracy<br>floor {min_accuracy:.1%}",
            showarrow=False,
            align="left",
            font={"color": COLORS["floor"]},
            name="min_accuracy",
        )
        fig.update_layout(margin={"r": 110})


def empty_figure(title: str, message: str) -> go.Figure:
    """A figure with no data and a centered explanation."""
    fig = go.Figure()
    fig.update_layout(
        title=title, template="plotly_white", xaxis_visible=False, yaxis_visible=False
    )
    add_message(fig, message, name="message")
    return fig


def add_message(fig: go.Figure, message: str, *, name: str | None = None) -> None:
    """Write ``message`` in the middle of ``fig`` (an empty plot's explanation)."""
    fig.add_annotation(
        text=message,
        xref="paper",
        yref="paper",
        x=0.5,
        y=0.5,
        showarrow=False,
        font={"size": 16},
        name=name,
    )


def base_layout(fig: go.Figure, *, title: str, **layout: Any) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0.02, "xanchor": "left"},
        template="plotly_white",
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "right", "x": 1},
        margin={"t": 110},
        **layout,
    )
    return fig
