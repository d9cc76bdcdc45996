"""Small real data and one tiny trained supernet shared by the supernet tests."""

from dataclasses import dataclass
from pathlib import Path

import pytest

from optuna_nachos.data import load_dataset
from optuna_nachos.supernet import Supernet, SupernetSettings, train_supernet

RESOLUTION = 16


@dataclass(frozen=True)
class TrainedSupernet:
    supernet: Supernet
    folder: Path


@pytest.fixture(scope="session")
def digits16():
    """Digits at 16x16, a few hundred training images."""
    return load_dataset("digits", resolution=RESOLUTION, seed=0, train_subset=256)


@pytest.fixture(scope="session")
def digits16_all():
    """Digits at 16x16, the whole training split (1,293 images)."""
    return load_dataset("digits", resolution=RESOLUTION, seed=0)


def tiny_settings(**overrides) -> SupernetSettings:
    values = dict(
        epochs=2,
        batch_size=64,
        random_subnets=1,
        recalibration_batches=2,
        device="cpu",
        progress=False,
        seed=0,
    )
    values.update(overrides)
    return SupernetSettings(**values)


@pytest.fixture(scope="session")
def trained(tmp_path_factory, digits16) -> TrainedSupernet:
    """A supernet trained for 2 epochs on 256 digits images (seconds)."""
    import torch

    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("supernet") / "sn"
    supernet = train_supernet(digits16, folder, settings=tiny_settings(), metadata={"data_seed": 0})
    return TrainedSupernet(supernet, folder)
