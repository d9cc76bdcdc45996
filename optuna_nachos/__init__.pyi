"""The public names of ``optuna_nachos``, each written once: the package reads this stub to
load them lazily, and type checkers and editors read it as the package's interface."""

from optuna_nachos import (
    benchmark as benchmark,
    config as config,
    cost as cost,
    dashboard as dashboard,
    data as data,
    deploy as deploy,
    models as models,
    objective as objective,
    record as record,
    report as report,
    results as results,
    samplers as samplers,
    space as space,
    study as study,
    supernet as supernet,
    train as train,
    visualization as visualization,
)
from optuna_nachos._version import __version__ as __version__
from optuna_nachos.config import (
    ConfigError as ConfigError,
    EENNConfig as EENNConfig,
    ExitsConfig as ExitsConfig,
)
from optuna_nachos.cost import (
    LatencyTable as LatencyTable,
    average_macs as average_macs,
    cost_profile as cost_profile,
    exit_latency as exit_latency,
    exit_macs as exit_macs,
    peak_macs as peak_macs,
    profile_latency as profile_latency,
)
from optuna_nachos.deploy import (
    DeployedEENN as DeployedEENN,
    Preprocessing as Preprocessing,
    export_eenn as export_eenn,
    load_eenn as load_eenn,
    save_eenn as save_eenn,
)
from optuna_nachos.models import (
    BackboneStages as BackboneStages,
    EarlyExitNetwork as EarlyExitNetwork,
    attach_exits as attach_exits,
    build_eenn as build_eenn,
    cut_stages as cut_stages,
)
from optuna_nachos.objective import (
    ExitObjective as ExitObjective,
    NachosObjective as NachosObjective,
)
from optuna_nachos.results import (
    admissible_trials as admissible_trials,
    high_tradeoff_trials as high_tradeoff_trials,
    hypervolume as hypervolume,
)
from optuna_nachos.samplers import NachosSampler as NachosSampler
from optuna_nachos.space import (
    BackboneExitSpace as BackboneExitSpace,
    MobileNetV3Space as MobileNetV3Space,
    config_from_params as config_from_params,
    suggest_eenn as suggest_eenn,
)
from optuna_nachos.study import (
    constraint_values as constraint_values,
    constraints_from_user_attrs as constraints_from_user_attrs,
    create_sampler as create_sampler,
    create_study as create_study,
    run_search as run_search,
)
from optuna_nachos.train import NachosLoss as NachosLoss, TrainConfig as TrainConfig
