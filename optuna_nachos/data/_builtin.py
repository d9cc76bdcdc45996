"""Registration of the built-in datasets."""

from __future__ import annotations

from optuna_nachos.data._cifar import load_cifar10, load_cifar10_jpeg, load_cifar100
from optuna_nachos.data._digits import load_digits
from optuna_nachos.data._folders import load_cinic10, load_image_folder, load_imagenette
from optuna_nachos.data._idx import load_fashion_mnist, load_mnist
from optuna_nachos.data._registry import register_dataset
from optuna_nachos.data._svhn import load_svhn

BUILTIN_DATASETS = {
    "digits": load_digits,
    "mnist": load_mnist,
    "fashion-mnist": load_fashion_mnist,
    "cifar10": load_cifar10,
    "cifar100": load_cifar100,
    "svhn": load_svhn,
    "cifar10-jpeg": load_cifar10_jpeg,
    "cinic10": load_cinic10,
    "imagenette": load_imagenette,
    "imagefolder": load_image_folder,
}

for _name, _loader in BUILTIN_DATASETS.items():
    register_dataset(_name, _loader)
