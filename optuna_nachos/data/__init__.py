"""Datasets and loaders, offline first.

Datasets are decoded once per process into uint8 tensors, resized once to the requested
resolution, split reproducibly (stratified validation split from the training data), and
normalized and augmented on the fly, a batch at a time. Nothing is downloaded unless
``download=True`` is passed.
"""

from optuna_nachos.data import _builtin  # noqa: F401  (registers the built-in datasets)
from optuna_nachos.data._arrays import DatasetArrays
from optuna_nachos.data._dataset import TensorImageDataset
from optuna_nachos.data._errors import (
    DatasetCorruptError,
    DatasetNotFoundError,
    UnknownDatasetError,
)
from optuna_nachos.data._idx import read_idx
from optuna_nachos.data._load import DatasetSplits, clear_cache, load_dataset
from optuna_nachos.data._loader import make_loader
from optuna_nachos.data._paths import ENV_VAR
from optuna_nachos.data._registry import (
    DatasetLoader,
    get_dataset_loader,
    list_datasets,
    register_dataset,
)
from optuna_nachos.data._splits import stratified_subset
from optuna_nachos.data._transforms import resize_images, resize_shorter_center_crop

__all__ = [
    "ENV_VAR",
    "DatasetArrays",
    "DatasetCorruptError",
    "DatasetLoader",
    "DatasetNotFoundError",
    "DatasetSplits",
    "TensorImageDataset",
    "UnknownDatasetError",
    "clear_cache",
    "get_dataset_loader",
    "list_datasets",
    "load_dataset",
    "make_loader",
    "read_idx",
    "register_dataset",
    "resize_images",
    "resize_shorter_center_crop",
    "stratified_subset",
]
