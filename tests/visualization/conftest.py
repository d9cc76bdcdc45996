"""Fixtures of the figure tests: small in-memory studies and readers of figure parts."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import optuna
import plotly.graph_objects as go
import pytest
from optuna.distributions import FloatDistribution

from optuna_nachos.study import create_study


def _add_trial(
    study: optuna.Study,
    accuracy: float,
    macs: float,
    *,
    budget: float = 100.0,
    floor: float = 0.5,
    user_attrs: dict | None = None,
) -> None:
    study.add_trial(
        optuna.trial.create_trial(
            values=[accuracy, macs],
            params={"x": 0.0},
            distributions={"x": FloatDistribution(0, 1)},
            user_attrs=user_attrs or {},
            system_attrs={
                "constraints:max_avg_macs": macs - budget,
                "constraints:min_accuracy": floor - accuracy,
            },
        )
    )


@pytest.fixture
def add_trial() -> Callable[..., None]:
    """Add a completed trial carrying the objective's two constraints (budget 100, floor 0.5)."""
    return _add_trial


@pytest.fixture
def settings_study() -> optuna.Study:
    """An empty in-memory EENN study with a budget of 100 MACs and a floor of 0.5."""
    return create_study(
        storage=None, study_name="toy", settings={"min_accuracy": 0.5, "max_avg_macs": 100.0}
    )


def _lines(fig: go.Figure) -> list:
    return [shape for shape in fig.layout.shapes if shape.type == "line"]


@pytest.fixture
def parts() -> SimpleNamespace:
    """Readers of figure parts: traces by name, reference lines, annotation text."""
    return SimpleNamespace(
        traces=lambda fig: {trace.name: trace for trace in fig.data},
        vertical=lambda fig: [s.x0 for s in _lines(fig) if s.x0 == s.x1],
        horizontal=lambda fig: [s.y0 for s in _lines(fig) if s.y0 == s.y1],
        text=lambda fig: "\n".join(a.text or "" for a in fig.layout.annotations),
    )
