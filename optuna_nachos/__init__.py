"""optuna-nachos: hardware-constrained search of early-exit neural networks with Optuna.

The public names most users need are here; the subpackages hold the rest:
:mod:`optuna_nachos.config`, :mod:`~optuna_nachos.models`, :mod:`~optuna_nachos.cost`,
:mod:`~optuna_nachos.data`, :mod:`~optuna_nachos.train`, :mod:`~optuna_nachos.space`,
:mod:`~optuna_nachos.objective`, :mod:`~optuna_nachos.study`, :mod:`~optuna_nachos.samplers`,
:mod:`~optuna_nachos.results` and :mod:`~optuna_nachos.visualization` (plotly figures).
"""

from optuna_nachos._version import __version__
from optuna_nachos.config import ConfigError, EENNConfig
from optuna_nachos.cost import average_macs, cost_profile, exit_macs, peak_macs
from optuna_nachos.models import EarlyExitNetwork, attach_exits, build_eenn
from optuna_nachos.objective import NachosObjective
from optuna_nachos.results import (
    DeployedEENN,
    admissible_trials,
    export_eenn,
    high_tradeoff_trials,
    hypervolume,
    load_eenn,
    save_eenn,
)
from optuna_nachos.samplers import NachosSampler
from optuna_nachos.space import MobileNetV3Space, config_from_params, suggest_eenn
from optuna_nachos.study import constraint_values, create_sampler, create_study, run_search
from optuna_nachos.train import NachosLoss, TrainConfig

__all__ = [
    "ConfigError",
    "DeployedEENN",
    "EENNConfig",
    "EarlyExitNetwork",
    "MobileNetV3Space",
    "NachosLoss",
    "NachosObjective",
    "NachosSampler",
    "TrainConfig",
    "__version__",
    "admissible_trials",
    "attach_exits",
    "average_macs",
    "build_eenn",
    "config_from_params",
    "constraint_values",
    "cost_profile",
    "create_sampler",
    "create_study",
    "export_eenn",
    "exit_macs",
    "high_tradeoff_trials",
    "hypervolume",
    "load_eenn",
    "peak_macs",
    "run_search",
    "save_eenn",
    "suggest_eenn",
]
