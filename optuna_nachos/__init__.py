"""optuna-nachos: hardware-constrained search of early-exit neural networks with Optuna.

The public names most users need are here; the subpackages hold the rest:
:mod:`optuna_nachos.config`, :mod:`~optuna_nachos.models`, :mod:`~optuna_nachos.cost`,
:mod:`~optuna_nachos.data`, :mod:`~optuna_nachos.train`, :mod:`~optuna_nachos.space`,
:mod:`~optuna_nachos.objective`, :mod:`~optuna_nachos.study`, :mod:`~optuna_nachos.samplers`,
:mod:`~optuna_nachos.results`, :mod:`~optuna_nachos.deploy` (the trained network, saved,
exported and run), :mod:`~optuna_nachos.supernet` (weight sharing) and
:mod:`~optuna_nachos.visualization` (plotly figures).

The names are imported on first use (PEP 562), so that ``import optuna_nachos`` and the
``optuna-nachos`` command's ``--help`` do not pay for importing PyTorch and Optuna.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from optuna_nachos._version import __version__

if TYPE_CHECKING:  # what the lazy names are, for type checkers and editors
    from optuna_nachos.config import ConfigError, EENNConfig, ExitsConfig
    from optuna_nachos.cost import (
        LatencyTable,
        average_macs,
        cost_profile,
        exit_latency,
        exit_macs,
        peak_macs,
        profile_latency,
    )
    from optuna_nachos.deploy import (
        DeployedEENN,
        Preprocessing,
        export_eenn,
        load_eenn,
        save_eenn,
    )
    from optuna_nachos.models import (
        BackboneStages,
        EarlyExitNetwork,
        attach_exits,
        build_eenn,
        cut_stages,
    )
    from optuna_nachos.objective import ExitObjective, NachosObjective
    from optuna_nachos.results import admissible_trials, high_tradeoff_trials, hypervolume
    from optuna_nachos.samplers import NachosSampler
    from optuna_nachos.space import (
        BackboneExitSpace,
        MobileNetV3Space,
        config_from_params,
        suggest_eenn,
    )
    from optuna_nachos.study import (
        constraint_values,
        constraints_from_user_attrs,
        create_sampler,
        create_study,
        run_search,
    )
    from optuna_nachos.train import NachosLoss, TrainConfig

#: The subpackage each public name comes from.
_LAZY_NAMES: dict[str, str] = {
    "ConfigError": "config",
    "EENNConfig": "config",
    "ExitsConfig": "config",
    "average_macs": "cost",
    "cost_profile": "cost",
    "exit_macs": "cost",
    "peak_macs": "cost",
    "LatencyTable": "cost",
    "exit_latency": "cost",
    "profile_latency": "cost",
    "EarlyExitNetwork": "models",
    "attach_exits": "models",
    "build_eenn": "models",
    "BackboneStages": "models",
    "cut_stages": "models",
    "ExitObjective": "objective",
    "Preprocessing": "deploy",
    "BackboneExitSpace": "space",
    "constraints_from_user_attrs": "study",
    "NachosObjective": "objective",
    "DeployedEENN": "deploy",
    "admissible_trials": "results",
    "export_eenn": "deploy",
    "high_tradeoff_trials": "results",
    "hypervolume": "results",
    "load_eenn": "deploy",
    "save_eenn": "deploy",
    "NachosSampler": "samplers",
    "MobileNetV3Space": "space",
    "config_from_params": "space",
    "suggest_eenn": "space",
    "constraint_values": "study",
    "create_sampler": "study",
    "create_study": "study",
    "run_search": "study",
    "TrainConfig": "train",
    "NachosLoss": "train",
}

#: Subpackages reachable as attributes (``optuna_nachos.data``) without importing them first.
_SUBPACKAGES = frozenset(
    {
        "benchmark",
        "config",
        "cost",
        "dashboard",
        "data",
        "deploy",
        "models",
        "objective",
        "record",
        "report",
        "results",
        "samplers",
        "space",
        "study",
        "supernet",
        "train",
        "visualization",
    }
)


def __getattr__(name: str) -> Any:
    """Import a public name from its subpackage on first access (PEP 562)."""
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    subpackage = _LAZY_NAMES.get(name)
    if subpackage is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{subpackage}"), name)
    globals()[name] = value  # later accesses skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY_NAMES, *_SUBPACKAGES})


__all__ = [
    "BackboneExitSpace",
    "BackboneStages",
    "ConfigError",
    "DeployedEENN",
    "EENNConfig",
    "EarlyExitNetwork",
    "ExitObjective",
    "ExitsConfig",
    "LatencyTable",
    "MobileNetV3Space",
    "NachosLoss",
    "NachosObjective",
    "NachosSampler",
    "Preprocessing",
    "TrainConfig",
    "__version__",
    "admissible_trials",
    "attach_exits",
    "average_macs",
    "build_eenn",
    "config_from_params",
    "constraint_values",
    "constraints_from_user_attrs",
    "cost_profile",
    "cut_stages",
    "create_sampler",
    "create_study",
    "export_eenn",
    "exit_latency",
    "exit_macs",
    "high_tradeoff_trials",
    "hypervolume",
    "load_eenn",
    "peak_macs",
    "profile_latency",
    "run_search",
    "save_eenn",
    "suggest_eenn",
]
