"""Attaching the figures and a summary note of an EENN study for optuna-dashboard."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

import optuna
from optuna.trial import FrozenTrial

from optuna_nachos._logging import get_logger
from optuna_nachos.report import summarize, summary_markdown

if TYPE_CHECKING:
    import plotly.graph_objects as go

_logger = get_logger(__name__)

INSTALL_HINT = 'pip install "optuna-nachos[dashboard]"'

GRAPH_ID_PREFIX = "nachos-"
"""Prefix of the graph object ids of the attached figures (``nachos-pareto_front``, ...)."""

NOTE_BEGIN = "[//]: # (optuna-nachos summary: begin)"
NOTE_END = "[//]: # (optuna-nachos summary: end)"
# Markdown link reference definitions: they render as nothing, in the dashboard and elsewhere.

# Where optuna-dashboard 0.21 keeps a graph object: "dashboard:plot_data:<id>:<chunk>".
_PLOT_DATA_PREFIX = "dashboard:plot_data:"


def import_dashboard() -> ModuleType:
    """Import optuna-dashboard, or raise an :class:`ImportError` saying how to install it."""
    try:
        import optuna_dashboard
    except ImportError as error:
        message = f"optuna-dashboard is not installed; install it with: {INSTALL_HINT}"
        raise ImportError(message) from error
    return optuna_dashboard


@dataclass(frozen=True)
class Attachments:
    """What :func:`attach` stored in a study.

    Attributes:
        graph_ids: Graph object id of each attached figure, by figure name.
        note: The study note as stored (the summary between its markers, and any text of the
            user's around it).
    """

    graph_ids: dict[str, str]
    note: str


def graph_id(name: str) -> str:
    """The stable graph object id of the figure ``name`` (``nachos-<name>``)."""
    return GRAPH_ID_PREFIX + re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def attached_graph_ids(study: optuna.Study) -> list[str]:
    """Graph object ids of the figures that optuna-nachos attached to the study, sorted."""
    ids = set()
    for key in study._storage.get_study_system_attrs(study._study_id):
        if key.startswith(_PLOT_DATA_PREFIX + GRAPH_ID_PREFIX):
            ids.add(key[len(_PLOT_DATA_PREFIX) :].rsplit(":", 1)[0])
    return sorted(ids)


def _placeholder(name: str) -> go.Figure:
    import plotly.graph_objects as go

    figure = go.Figure()
    figure.update_layout(
        title=f"{name.replace('_', ' ')}: nothing to show yet",
        xaxis={"visible": False},
        yaxis={"visible": False},
        annotations=[
            {
                "text": "Not drawn at the last refresh (no admissible trial yet?).",
                "showarrow": False,
                "xref": "paper",
                "yref": "paper",
                "x": 0.5,
                "y": 0.5,
            }
        ],
    )
    return figure


def note_markdown(study: optuna.Study, figure_names: list[str] | None = None) -> str:
    """The optuna-nachos part of the study note: summary, constraint handling, figures."""
    summary = summarize(study)
    blocks = [
        f"## optuna-nachos: study `{study.study_name}`",
        summary_markdown(summary, level=3).rstrip("\n"),
        "### Feasibility in the dashboard's own plots\n\n"
        "optuna-dashboard reads only Optuna's legacy constraint list, which Optuna 5's "
        "`trial.set_constraint` does not write. Served by `optuna-nachos dashboard`, the "
        "dashboard sees the constraints through a read-only view and marks infeasible trials "
        "as infeasible; served by the plain `optuna-dashboard` command, its own plots show "
        "every trial as feasible. The figures attached by optuna-nachos are constraint-aware "
        "either way.",
    ]
    if figure_names:
        names = ", ".join(f"`{graph_id(n)}`" for n in figure_names)
        blocks.append(f"Figures attached by optuna-nachos (on the study page): {names}.")
    return "\n\n".join(blocks)


def merge_note(existing: str, summary: str) -> str:
    """Put ``summary`` between the markers in ``existing``, keeping the user's own text.

    A note without markers gets the summary first, then the user's text.
    """
    block = f"{NOTE_BEGIN}\n{summary}\n{NOTE_END}"
    start = existing.find(NOTE_BEGIN)
    end = existing.find(NOTE_END, start + 1) if start >= 0 else -1
    if start >= 0 and end >= 0:
        return existing[:start] + block + existing[end + len(NOTE_END) :]
    rest = existing.strip()
    return block + ("\n\n" + rest if rest else "") + "\n"


def attach(study: optuna.Study, *, figures: Mapping[str, go.Figure] | None = None) -> Attachments:
    """Store an EENN study's figures and a summary note for optuna-dashboard.

    The figures are saved with :func:`optuna_dashboard.save_plotly_graph_object` under stable
    ids (:func:`graph_id`), so attaching again replaces them; a figure attached before but
    missing now (a trial-level figure while no trial is admissible) is replaced by a
    placeholder. The study note (:func:`optuna_dashboard.save_note`) says that trials are
    chosen on validation and reported on test, and gets the trial counts, the hypervolume, the
    admissible Pareto table (trial, validation and test accuracy and average MACs, peak MACs,
    exits, exit ratios, thresholds), the best trade-offs, the violated constraints and the search
    settings, between two markers: text the user wrote in the note outside them is kept.

    Nothing is written to the trials, so the samplers see the study as before. The
    dashboard's own plots need :func:`dashboard_app` or :func:`run_dashboard` to see the
    constraints (see :class:`ConstraintView`).

    Args:
        study: An EENN study (directions maximize accuracy, minimize average MACs).
        figures: Figures by name; by default
            :func:`optuna_nachos.visualization.study_figures` of the study.

    Returns:
        The graph ids and the note stored.

    Raises:
        ImportError: If optuna-dashboard is not installed.
    """
    dashboard = import_dashboard()
    if figures is None:
        from optuna_nachos.visualization import study_figures

        figures = study_figures(study)
    figures = dict(figures)
    ids: dict[str, str] = {}
    for name, figure in figures.items():
        ids[name] = dashboard.save_plotly_graph_object(
            study, figure, graph_object_id=graph_id(name)
        )
    for stale in set(attached_graph_ids(study)) - set(ids.values()):
        name = stale[len(GRAPH_ID_PREFIX) :]
        dashboard.save_plotly_graph_object(study, _placeholder(name), graph_object_id=stale)
    existing = dashboard.get_note(study)
    note = merge_note(existing, note_markdown(study, list(figures)))
    if note != existing:
        dashboard.save_note(study, note)
    _logger.info(
        "Attached %d figures and the summary note to study %r.", len(ids), study.study_name
    )
    return Attachments(graph_ids=ids, note=note)


class DashboardCallback:
    """A study callback that refreshes the dashboard attachments as trials finish.

    Pass it to :func:`optuna_nachos.study.run_search` (``callbacks=[...]``) or to
    :meth:`optuna.study.Study.optimize`. An error while attaching is logged and does not stop
    the search.

    Args:
        every: Refresh after every ``every``-th finished trial of this worker.

    Raises:
        ImportError: If optuna-dashboard is not installed (checked at construction).
    """

    def __init__(self, *, every: int = 1) -> None:
        if every < 1:
            raise ValueError(f"every must be at least 1, got {every}.")
        import_dashboard()
        self.every = every
        self._finished = 0

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._finished += 1
        if self._finished % self.every:
            return
        try:
            attach(study)
        except Exception as error:  # a broken figure must not stop a long search
            _logger.warning(
                "Could not refresh the dashboard attachments after trial %d: %s",
                trial.number,
                error,
            )
