"""Shared data and budget of the objective tests."""

import pytest

from optuna_nachos.data import load_dataset

RESOLUTION = 16
"""Input resolution of the digits networks under test."""

BUDGET = 0.9e6
"""An average-MAC budget that some of the small digits networks meet."""


@pytest.fixture(scope="module")
def digits():
    """The digits dataset at :data:`RESOLUTION`."""
    return load_dataset("digits", resolution=RESOLUTION, seed=0)
