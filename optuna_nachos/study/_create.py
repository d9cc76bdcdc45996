"""Creating and loading studies for the EENN search."""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from typing import Any

import optuna

from optuna_nachos._logging import get_logger
from optuna_nachos.record import (
    DIRECTIONS,
    METRIC_NAMES,
    SETTINGS_HISTORY_KEY,
    SETTINGS_KEY,
    SETTINGS_VERSION_KEY,
)

DEFAULT_STORAGE = "sqlite:///nachos.db"
VERSION_KEY = SETTINGS_VERSION_KEY
HISTORY_KEY = SETTINGS_HISTORY_KEY
FREE_SETTINGS = frozenset(
    {"sampler", "train.device", "train.progress", "train.num_workers", "test_evaluation"}
)
"""Settings that may change when a study is resumed: they do not change what a trial
measures (``test_evaluation`` only decides which trials also get test figures)."""

_logger = get_logger(__name__)


def create_study(
    *,
    study_name: str | None = "nachos",
    storage: str | optuna.storages.BaseStorage | None = DEFAULT_STORAGE,
    sampler: optuna.samplers.BaseSampler | None = None,
    load_if_exists: bool = True,
    settings: Mapping[str, Any] | None = None,
    metric_names: tuple[str, str] = METRIC_NAMES,
    new_settings: bool = False,
) -> optuna.Study:
    """Create (or resume) a study maximizing accuracy and minimizing average MACs.

    Args:
        study_name: Name of the study in the storage.
        storage: Storage URL or object; SQLite file ``nachos.db`` by default, ``None`` keeps
            the study in memory.
        sampler: The sampler; Optuna's default multi-objective sampler when ``None``.
        load_if_exists: Resume the study of the same name instead of raising.
        settings: Search settings recorded as the study user attribute ``nachos_settings``
            (plain JSON values: budgets, dataset, training settings). They are fixed when the
            study is created: resuming it with other settings raises, except for the keys of
            :data:`FREE_SETTINGS` (the sampler, the device), which are updated.
        new_settings: Accept other settings for an existing study: they are recorded as a
            new settings version (``nachos_settings_version``; the earlier versions stay in
            ``nachos_settings_history``), and the trials run from now on carry it.
        metric_names: Names of the two objectives; :data:`LATENCY_METRIC_NAMES` for a study
            that minimizes average latency.

    Returns:
        The study, with its directions and metric names set.

    Raises:
        ValueError: If an existing study of that name has other directions, or other
            settings (the message names the differences) and ``new_settings`` is false.
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
        _record_settings(study, json.loads(json.dumps(dict(settings))), new_settings)
    return study


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value}


def settings_differences(recorded: Mapping[str, Any], settings: Mapping[str, Any]) -> list[str]:
    """The settings that differ, as ``name recorded -> new``, free settings left out."""
    old, new = _flatten(recorded), _flatten(settings)
    return [
        f"{key} {old.get(key, '(unset)')!r} -> {new.get(key, '(unset)')!r}"
        for key in sorted(set(old) | set(new))
        if key not in FREE_SETTINGS and old.get(key) != new.get(key)
    ]


def _record_settings(study: optuna.Study, settings: dict[str, Any], new_settings: bool) -> None:
    recorded = study.user_attrs.get(SETTINGS_KEY)
    if recorded is None:
        study.set_user_attr(SETTINGS_KEY, settings)
        study.set_user_attr(VERSION_KEY, 1)
        return
    differences = settings_differences(recorded, settings)
    if differences and not new_settings:
        raise ValueError(
            f"study {study.study_name!r} was created with other settings: "
            f"{'; '.join(differences)}. Rerun with the recorded settings, choose another "
            "--study-name, or pass --new-settings to record a new settings version."
        )
    if differences:
        version = int(study.user_attrs.get(VERSION_KEY, 1))
        history = list(study.user_attrs.get(HISTORY_KEY, []))
        history.append({"version": version, "settings": recorded})
        study.set_user_attr(HISTORY_KEY, history)
        study.set_user_attr(VERSION_KEY, version + 1)
        _logger.warning(
            "Study %r: new settings version %d (%s).",
            study.study_name,
            version + 1,
            "; ".join(differences),
        )
    if settings != recorded:
        study.set_user_attr(SETTINGS_KEY, settings)


def settings_version(study: optuna.Study) -> int:
    """The study's current settings version (1 when created, 0 when it records none)."""
    return int(study.user_attrs.get(VERSION_KEY, 1 if SETTINGS_KEY in study.user_attrs else 0))
