"""The Optuna side of configurations: search spaces and ``suggest_eenn``."""

from optuna_nachos.space._backbone import DEFAULT_EXIT_HEADS, BackboneExitSpace
from optuna_nachos.space._base import EENNSearchSpace, check_space
from optuna_nachos.space._mobilenetv3 import EDANAS_THRESHOLD_GENES, MobileNetV3Space
from optuna_nachos.space._registry import get_space, list_spaces, register_space
from optuna_nachos.space._suggest import config_from_params, suggest_eenn

__all__ = [
    "DEFAULT_EXIT_HEADS",
    "BackboneExitSpace",
    "EENNSearchSpace",
    "EDANAS_THRESHOLD_GENES",
    "MobileNetV3Space",
    "check_space",
    "config_from_params",
    "get_space",
    "list_spaces",
    "register_space",
    "suggest_eenn",
]
