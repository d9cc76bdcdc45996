"""PyTorch modules of early-exit networks (no Optuna here)."""

from optuna_nachos.models._blocks import ConvBNAct, MBConv, SqueezeExcitation, make_divisible
from optuna_nachos.models._builder import attach_exits, build_eenn, choose_pools
from optuna_nachos.models._exit_rule import (
    cumulative_confidence,
    exit_probabilities,
    select_exits,
    survival,
)
from optuna_nachos.models._heads import (
    ExitHeadSpec,
    MBConvExitHead,
    NachosExitHead,
    PoolLinearExitHead,
    get_exit_head,
    list_exit_heads,
    register_exit_head,
)
from optuna_nachos.models._init import init_weights
from optuna_nachos.models._layer_costs import (
    conv2d_cost,
    conv_bn_cost,
    conv_output_side,
    linear_cost,
    mbconv_cost,
)
from optuna_nachos.models._mobilenetv3 import (
    FINAL_EXPAND_CHANNELS,
    FINAL_FEATURE_CHANNELS,
    STAGES,
    STEM_CHANNELS,
    FinalClassifier,
    StageSpec,
    build_stem,
)
from optuna_nachos.models._network import EarlyExitNetwork, EarlyExitPrediction, EENNOutput
from optuna_nachos.models._profile import profile_macs
from optuna_nachos.models._stages import BackboneStages, ChainHead, cut_stages

__all__ = [
    "FINAL_EXPAND_CHANNELS",
    "FINAL_FEATURE_CHANNELS",
    "STEM_CHANNELS",
    "build_stem",
    "STAGES",
    "BackboneStages",
    "ChainHead",
    "ConvBNAct",
    "EENNOutput",
    "EarlyExitNetwork",
    "EarlyExitPrediction",
    "ExitHeadSpec",
    "FinalClassifier",
    "MBConv",
    "MBConvExitHead",
    "NachosExitHead",
    "PoolLinearExitHead",
    "SqueezeExcitation",
    "StageSpec",
    "attach_exits",
    "build_eenn",
    "choose_pools",
    "conv2d_cost",
    "conv_bn_cost",
    "conv_output_side",
    "cumulative_confidence",
    "cut_stages",
    "exit_probabilities",
    "get_exit_head",
    "init_weights",
    "linear_cost",
    "list_exit_heads",
    "make_divisible",
    "mbconv_cost",
    "profile_macs",
    "register_exit_head",
    "select_exits",
    "survival",
]
