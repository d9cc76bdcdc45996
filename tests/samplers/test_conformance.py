"""Optuna's own sampler conformance suites, run on NachosSampler."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from optuna.samplers import BaseSampler
from optuna.testing.pytest_samplers import (
    BasicSamplerTestCase,
    MultiObjectiveSamplerTestCase,
    RelativeSamplerTestCase,
)

from optuna_nachos.samplers import NachosSampler

# Small settings keep the suites fast: a few random trials, then rounds of small NSGA-II runs.
_FAST = dict(
    n_startup_trials=5,
    batch_size=4,
    population_size=8,
    n_generations=2,
    surrogates=("rbf", "trees"),
    n_folds=2,
    warn_independent_sampling=False,
)


class TestNachosSamplerBasic(BasicSamplerTestCase):
    @pytest.fixture
    def sampler(self) -> Callable[[], BaseSampler]:
        return lambda: NachosSampler(**_FAST)


class TestNachosSamplerMultiObjective(MultiObjectiveSamplerTestCase):
    @pytest.fixture
    def sampler(self) -> Callable[[], BaseSampler]:
        return lambda: NachosSampler(**_FAST)


class TestNachosSamplerRelative(RelativeSamplerTestCase):
    # The relative suite calls ``sample_relative`` right after one completed trial, so the
    # random start must end after one trial for it to exercise the rounds.
    @pytest.fixture
    def sampler(self) -> Callable[[], BaseSampler]:
        return lambda: NachosSampler(**{**_FAST, "n_startup_trials": 1})
