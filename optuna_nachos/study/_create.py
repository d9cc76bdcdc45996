"""Creating and loading studies for the EENN search."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import optuna

DIRECTIONS = ("maximize", "minimize")
METRIC_NAMES = ("accuracy", "avg_macs")
LATENCY_METRIC_NAMES = ("accuracy", "avg_latency_ms")
"""Metric names of a study that minimizes average latency instead of MACs."""
DEFAULT_STORAGE = "sqlite:///nachos.db"
SETTINGS_KEY = "nachos_settings"


def create_study(
    *,
    study_name: str | None = "nachos",
    storage: str | optuna.storages.BaseStorage | None = DEFAULT_STORAGE,
    sampler: optuna.samplers.BaseSampler | None = None,
    load_if_exists: bool = True,
    settings: Mapping[str, Any] | None = None,
    metric_names: tuple[str, str] = METRIC_NAMES,
) -> optuna.Study:
    """Create (or resume) a study maximizing accuracy and minimizing average MACs.

    Args:
        study_name: Name of the study in the storage.
        storage: Storage URL or object; SQLite file ``nachos.db`` by default, ``None`` keeps
            the study in memory.
        sampler: The sampler; Optuna's default multi-objective sampler when ``None``.
        load_if_exists: Resume the study of the same name instead of raising.
        settings: Search settings recorded as the study user attribute ``nachos_settings``
            (plain JSON values: budgets, dataset, training settings).
        metric_names: Names of the two objectives; :data:`LATENCY_METRIC_NAMES` for a study
            that minimizes average latency.

    Returns:
        The study, with its directions and metric names set.

    Raises:
        ValueError: If an existing study of that name has other directions.
    """
    study = optuna.create_study(
        study_name=study_name,
        storage=storage,
        sampler=sampler,
        directions=list(DIRECTIONS),
        load_if_exists=load_if_exists,
    )
    directions = [d.name.lower() for d in study.directions]
    if directions != list(DIRECTIONS):
        raise ValueError(
            f"study {study_name!r} has directions {directions}; an EENN study needs "
            f"{list(DIRECTIONS)}. Choose another study name."
        )
    if study.metric_names is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(list(metric_names))
    if settings is not None:
        study.set_user_attr(SETTINGS_KEY, dict(settings))
    return study


def study_settings(study: optuna.Study) -> dict[str, Any]:
    """The search settings recorded by :func:`create_study` (empty when none)."""
    return dict(study.user_attrs.get(SETTINGS_KEY, {}))
