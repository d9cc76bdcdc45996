"""The frozen, validated settings a NachosSampler gives its rounds."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from optuna_nachos.samplers import NachosSampler
from optuna_nachos.samplers._settings import NachosSettings


def test_settings_are_frozen_and_normalized() -> None:
    settings = NachosSettings(max_avg_macs=3_000_000, min_accuracy=1, surrogates=["rbf"])
    assert settings.max_avg_macs == 3e6 and isinstance(settings.max_avg_macs, float)
    assert isinstance(settings.min_accuracy, float)
    assert settings.surrogates == ("rbf",)
    assert settings.max_peak_macs is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.batch_size = 4  # type: ignore[misc]
    with pytest.raises(TypeError):
        NachosSettings(10)  # type: ignore[misc]  # keyword-only


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_startup_trials": -1}, "n_startup_trials must be an integer >= 0"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1"),
        ({"batch_size": True}, "batch_size must be an integer"),
        ({"population_size": 2.0}, "population_size must be an integer"),
        ({"n_folds": 1}, "n_folds must be an integer >= 2"),
        ({"num_classes": 1}, "num_classes must be an integer >= 2"),
        ({"max_avg_macs": 0}, "max_avg_macs must be positive"),
        ({"max_params": -5.0}, "max_params must be positive"),
        ({"selection": "best"}, "selection must be"),
        ({"exploration": -0.1}, "exploration must lie in"),
        ({"surrogates": ()}, "surrogates must be a non-empty selection"),
        ({"surrogates": ("rbf", "svm")}, "surrogates must be a non-empty selection"),
    ],
)
def test_settings_reject_invalid_values(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        NachosSettings(**kwargs)


def test_explored_share_of_a_round() -> None:
    assert NachosSettings().n_explore == 1  # 1 of 8 by default
    assert NachosSettings(batch_size=4, exploration=0.0).n_explore == 0
    assert NachosSettings(batch_size=4, exploration=1.0).n_explore == 4
    assert NachosSettings(batch_size=3, exploration=0.5).n_explore == 2


def test_sampler_builds_its_settings_once_from_its_arguments() -> None:
    sampler = NachosSampler(
        max_avg_macs=2_000_000, min_accuracy=0.5, batch_size=4, surrogates=["trees"], seed=0
    )
    assert sampler._settings == NachosSettings(
        max_avg_macs=2e6, min_accuracy=0.5, batch_size=4, surrogates=("trees",)
    )
    # Every constructor argument but the objects the sampler holds is a setting.
    objects = {"space", "seed", "independent_sampler", "warn_independent_sampling"}
    latency = {"latency_table", "latency_backend", "latency_batch_size"}
    arguments = set(NachosSampler.__init__.__kwdefaults__) - objects - latency
    assert arguments == {field.name for field in dataclasses.fields(NachosSettings)}
