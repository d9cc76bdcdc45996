"""The protocol of the spaces NachosSampler searches, and its error on other objects."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import optuna
import pytest

from optuna_nachos.cost import exit_macs
from optuna_nachos.samplers import EENNSearchSpace, NachosSampler
from optuna_nachos.space import BackboneExitSpace, MobileNetV3Space


def test_packaged_spaces_follow_the_protocol() -> None:
    assert isinstance(MobileNetV3Space(), EENNSearchSpace)
    assert issubclass(BackboneExitSpace, EENNSearchSpace)
    assert not isinstance(object(), EENNSearchSpace)


def test_an_object_without_the_methods_is_refused_by_name() -> None:
    with pytest.raises(TypeError) as error:
        NachosSampler(space=object())
    message = str(error.value)
    assert "object lacks the methods" in message
    for method in ("distributions", "config_from_params", "params_from_config", "exit_deficit"):
        assert f"{method}()" in message


class _Delegating:
    """A space of one's own: the four methods, delegated to the packaged space."""

    def __init__(self) -> None:
        self._space = MobileNetV3Space()

    def distributions(self) -> dict[str, Any]:
        return self._space.distributions()

    def config_from_params(self, params: Mapping[str, Any]) -> Any:
        return self._space.config_from_params(params)

    def params_from_config(self, config: Any) -> dict[str, Any]:
        return self._space.params_from_config(config)

    def exit_deficit(self, config: Any) -> int:
        return self._space.exit_deficit(config)


class _NoDeficit(_Delegating):
    exit_deficit = None  # type: ignore[assignment]


def test_only_the_missing_method_is_named() -> None:
    with pytest.raises(TypeError, match=r"_NoDeficit lacks the method exit_deficit\(\)\.$"):
        NachosSampler(space=_NoDeficit())


def test_a_space_of_ones_own_is_searched_with_exact_costs() -> None:
    space = _Delegating()
    sampler = NachosSampler(space=space, max_avg_macs=2.7e6, n_startup_trials=5, seed=0)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        params = {
            name: trial.suggest_categorical(name, dist.choices)  # type: ignore[attr-defined]
            for name, dist in space.distributions().items()
        }
        macs = exit_macs(space.config_from_params(params), num_classes=10)
        return 0.5, float(macs[0])

    study.optimize(objective, n_trials=3)
    # The random start draws only configurations whose first exit fits in the budget.
    for trial in study.trials:
        assert exit_macs(space.config_from_params(trial.params), num_classes=10)[0] <= 2.7e6
