"""The functional entry points: ``suggest_eenn`` and ``config_from_params``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import optuna

from optuna_nachos.config import EENNConfig
from optuna_nachos.space._mobilenetv3 import MobileNetV3Space


def suggest_eenn(
    trial: optuna.trial.BaseTrial, space: MobileNetV3Space | None = None
) -> EENNConfig:
    """Suggest an early-exit network on ``trial``.

    The configuration becomes ordinary, flat trial parameters (see
    :class:`~optuna_nachos.space.MobileNetV3Space`), so any Optuna sampler works on it.

    Args:
        trial: A live :class:`optuna.trial.Trial` or a :class:`optuna.trial.FixedTrial`.
        space: The search space; the default NACHOS space when ``None``.

    Returns:
        The suggested configuration.

    Raises:
        ConfigError: If a fixed value lies outside its choices (``FixedTrial`` only warns).
    """
    return (space or MobileNetV3Space()).suggest(trial)


def config_from_params(
    params: Mapping[str, Any], space: MobileNetV3Space | None = None
) -> EENNConfig:
    """Rebuild the configuration of a trial from ``trial.params``, validating the values.

    Args:
        params: Trial parameters; parameters outside the space are ignored.
        space: The search space the trial used; the default NACHOS space when ``None``.
    """
    return (space or MobileNetV3Space()).config_from_params(params)
