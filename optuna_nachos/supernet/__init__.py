"""The weight-sharing supernet of the MobileNetV3 space (no Optuna here).

Train it once on your data (:func:`train_supernet`), then every candidate of a search
inherits its weights (:meth:`Supernet.extract`) instead of training from scratch. Built on
OFA's dynamic MobileNetV3 (the ``ofa`` package); OFA's published ImageNet checkpoint can be
the starting point (:func:`import_ofa_checkpoint`).
"""

from optuna_nachos.supernet._extract import recalibrate_batchnorm
from optuna_nachos.supernet._io import (
    CHECKPOINT_FILE,
    METADATA_FILE,
    WEIGHTS_FILE,
    SupernetError,
    load_supernet,
    read_metadata,
)
from optuna_nachos.supernet._network import (
    DEPTHS,
    EXPAND_RATIOS,
    KERNEL_SIZES,
    Supernet,
    largest_config,
    random_config,
    smallest_config,
    uniform_config,
)
from optuna_nachos.supernet._ofa_import import OFA_CHECKPOINT_NAME, import_ofa_checkpoint
from optuna_nachos.supernet._settings import SupernetSettings
from optuna_nachos.supernet._train import subnet_accuracies, train_supernet

__all__ = [
    "CHECKPOINT_FILE",
    "DEPTHS",
    "EXPAND_RATIOS",
    "KERNEL_SIZES",
    "METADATA_FILE",
    "OFA_CHECKPOINT_NAME",
    "WEIGHTS_FILE",
    "Supernet",
    "SupernetError",
    "SupernetSettings",
    "import_ofa_checkpoint",
    "largest_config",
    "load_supernet",
    "random_config",
    "read_metadata",
    "recalibrate_batchnorm",
    "smallest_config",
    "subnet_accuracies",
    "train_supernet",
    "uniform_config",
]
