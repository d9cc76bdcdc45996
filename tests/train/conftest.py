"""Shared fixtures of the training-layer tests: tiny networks and tiny datasets."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch.utils.data import TensorDataset

from optuna_nachos import EENNConfig, build_eenn
from optuna_nachos.models import EarlyExitNetwork

NUM_CLASSES = 3


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: end-to-end test that trains on real data (slow)")


def tiny_config(*, resolution: int = 8, exit_head: str = "pool_linear") -> EENNConfig:
    """The smallest network of the space: one layer per stage, exits after stages 1..4."""
    return EENNConfig(
        depths=(1, 1, 1, 1, 1),
        kernel_sizes=((3,),) * 5,
        expand_ratios=((3,),) * 5,
        exit_stages=(1, 2, 3, 4),
        resolution=resolution,
        exit_head=exit_head,
    )


def tiny_network(seed: int = 0, **kwargs: object) -> EarlyExitNetwork:
    torch.manual_seed(seed)
    return build_eenn(tiny_config(**kwargs), num_classes=NUM_CLASSES, in_channels=1)


def tiny_dataset(n: int = 48, *, seed: int = 0, resolution: int = 8) -> TensorDataset:
    """Learnable toy images: the class sets the mean brightness of a quadrant."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % NUM_CLASSES
    images = torch.randn(n, 1, resolution, resolution, generator=generator) * 0.5
    half = resolution // 2
    for c in range(NUM_CLASSES):
        rows = (c // 2) * half
        cols = (c % 2) * half
        images[labels == c, :, rows : rows + half, cols : cols + half] += 2.0
    return TensorDataset(images, labels)


@pytest.fixture
def make_network() -> Callable[..., EarlyExitNetwork]:
    """Factory of tiny networks: ``make_network(seed=0, resolution=8, exit_head=...)``."""
    return tiny_network


@pytest.fixture
def make_dataset() -> Callable[..., TensorDataset]:
    """Factory of tiny learnable datasets: ``make_dataset(n=48, seed=0, resolution=8)``."""
    return tiny_dataset


@pytest.fixture
def network() -> EarlyExitNetwork:
    return tiny_network()


@pytest.fixture
def dataset() -> TensorDataset:
    return tiny_dataset()
