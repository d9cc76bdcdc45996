"""Shared fixtures of the cost tests."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from optuna_nachos.config import EENNConfig


def _random_config(
    rng: random.Random,
    *,
    resolution: int = 32,
    exit_head: str = "nachos",
    exit_stages: tuple[int, ...] | None = None,
) -> EENNConfig:
    depths = [rng.randint(1, 4) for _ in range(5)]
    if exit_stages is None:
        exit_stages = tuple(stage for stage in (1, 2, 3, 4) if rng.random() < 0.5)
    return EENNConfig(
        depths=depths,
        kernel_sizes=[[rng.choice((3, 5, 7)) for _ in range(d)] for d in depths],
        expand_ratios=[[rng.choice((3, 4, 6)) for _ in range(d)] for d in depths],
        exit_stages=exit_stages,
        resolution=resolution,
        exit_head=exit_head,
    )


def _small_config(*, exit_stages: tuple[int, ...] = (1, 2, 3, 4), **kwargs) -> EENNConfig:
    return EENNConfig(
        depths=(2,) * 5,
        kernel_sizes=((3, 3),) * 5,
        expand_ratios=((3, 3),) * 5,
        exit_stages=exit_stages,
        **kwargs,
    )


@pytest.fixture
def random_config() -> Callable[..., EENNConfig]:
    """``random_config(rng, *, resolution=32, exit_head="nachos", exit_stages=None)``: a random
    configuration of the default MobileNetV3 space (random exits when ``exit_stages`` is None)."""
    return _random_config


@pytest.fixture
def small_config() -> Callable[..., EENNConfig]:
    """``small_config(*, exit_stages=(1, 2, 3, 4), **fields)``: depth 2, kernel 3, expand 3."""
    return _small_config
