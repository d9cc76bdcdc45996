"""Shared data and budget of the objective tests."""

import pytest

import optuna_nachos as nachos
from optuna_nachos.data import load_dataset

RESOLUTION = 16
"""Input resolution of the digits networks under test."""

BUDGET = 0.9e6
"""An average-MAC budget that some of the small digits networks meet."""


@pytest.fixture(scope="module")
def digits():
    """The digits dataset at :data:`RESOLUTION`."""
    return load_dataset("digits", resolution=RESOLUTION, seed=0)


@pytest.fixture
def space():
    """A small NACHOS space at :data:`RESOLUTION` (depth 2, two expand ratios)."""
    return nachos.MobileNetV3Space(resolutions=(RESOLUTION,), depths=(2,), expand_ratios=(3, 4))


def objective_for(digits, space, *, epochs=(2, 1, 1), **kwargs):
    """A packaged objective on ``digits`` at :data:`BUDGET` and floor 0.2, training
    ``epochs`` (backbone, exit warm-up, exits) at batch 64; ``kwargs`` override settings."""
    backbone, warmup, exits = epochs
    settings = {
        "dataset": digits,
        "space": space,
        "max_avg_macs": BUDGET,
        "min_accuracy": 0.2,
        "train_config": nachos.TrainConfig(
            backbone_epochs=backbone,
            warmup_epochs=warmup,
            exit_epochs=exits,
            progress=False,
            batch_size=64,
        ),
    }
    settings.update(kwargs)
    return nachos.NachosObjective(**settings)
