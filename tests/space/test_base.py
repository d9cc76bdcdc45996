"""The contract of EENN search spaces: the packaged spaces fulfil it, a space of one's own is
searched through it, and other objects are refused."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import optuna
import pytest
import torch

from optuna_nachos import record
from optuna_nachos.cost import cost_profile, exit_macs
from optuna_nachos.models import build_eenn
from optuna_nachos.record import MAX_AVG_MACS, MAX_PARAMS, MAX_PEAK_MACS, MIN_EXITS
from optuna_nachos.samplers import NachosSampler
from optuna_nachos.space import BackboneExitSpace, EENNSearchSpace, MobileNetV3Space, check_space


def test_packaged_spaces_fulfil_the_contract() -> None:
    assert isinstance(MobileNetV3Space(), EENNSearchSpace)
    assert issubclass(BackboneExitSpace, EENNSearchSpace)
    check_space(MobileNetV3Space())


def test_other_objects_are_refused_by_name() -> None:
    with pytest.raises(TypeError, match="EENNSearchSpace; got object"):
        NachosSampler(space=object())


def test_a_subclass_lacking_a_method_cannot_be_made() -> None:
    class _NoBuild(EENNSearchSpace):
        pass

    with pytest.raises(TypeError, match="abstract"):
        _NoBuild()  # type: ignore[abstract]


class _Delegating(EENNSearchSpace):
    """A space of one's own: the contract, delegated to the packaged space."""

    def __init__(self) -> None:
        self._space = MobileNetV3Space(resolutions=(16,))

    def settings(self) -> dict[str, Any]:
        return {"delegating": True}

    def distributions(self) -> dict[str, Any]:
        return self._space.distributions()

    def suggest(self, trial: optuna.trial.BaseTrial) -> Any:
        return self._space.suggest(trial)

    def config_from_params(self, params: Mapping[str, Any]) -> Any:
        return self._space.config_from_params(params)

    def params_from_config(self, config: Any) -> dict[str, Any]:
        return self._space.params_from_config(config)

    def num_configurations(self) -> int:
        return self._space.num_configurations()

    def exit_deficit(self, config: Any) -> int:
        return self._space.exit_deficit(config)

    def cost_profile(self, config: Any, **task: Any) -> Any:
        return self._space.cost_profile(config, **task)

    def smallest_average_macs(self, **task: Any) -> int:
        return self._space.smallest_average_macs(**task)

    def build(self, config: Any, **task: Any) -> Any:
        return self._space.build(config, **task)


def test_a_space_of_ones_own_is_searched_with_exact_costs() -> None:
    space = _Delegating()
    assert space.log10_size() == pytest.approx(MobileNetV3Space().log10_size())
    sampler = NachosSampler(space=space, max_avg_macs=1.5e6, n_startup_trials=5, seed=0)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        config = space.suggest(trial)
        return 0.5, float(exit_macs(config, num_classes=10)[0])

    study.optimize(objective, n_trials=3)
    # The random start draws only configurations whose first exit fits in the budget.
    for trial in study.trials:
        assert exit_macs(space.config_from_params(trial.params), num_classes=10)[0] <= 1.5e6


def _config(space: MobileNetV3Space, seed: int = 0) -> Any:
    return space.suggest(optuna.trial.FixedTrial(_random_params(space, seed)))


def _random_params(space: MobileNetV3Space, seed: int) -> dict[str, Any]:
    generator = torch.Generator().manual_seed(seed)
    return {
        name: dist.choices[int(torch.randint(len(dist.choices), (1,), generator=generator))]
        for name, dist in space.distributions().items()
    }


def test_mobilenetv3_space_costs_and_builds_for_the_task() -> None:
    space = MobileNetV3Space(resolutions=(16,))
    config = _config(space)
    profile = space.cost_profile(config, num_classes=7, in_channels=1, convention="reference")
    assert profile == cost_profile(config, num_classes=7, in_channels=1, convention="reference")
    network = space.build(config, num_classes=7, in_channels=1)
    reference = build_eenn(config, num_classes=7, in_channels=1)
    assert [p.shape for p in network.parameters()] == [p.shape for p in reference.parameters()]
    with pytest.raises(TypeError, match="pass num_classes"):
        space.cost_profile(config)
    with pytest.raises(TypeError, match="pass num_classes"):
        space.build(config)


def test_mobilenetv3_smallest_average_macs_is_the_cheapest_first_exit() -> None:
    space = MobileNetV3Space(
        resolutions=(16,), depths=(2, 3), kernel_sizes=(3, 5), expand_ratios=(3, 4)
    )
    floor = space.smallest_average_macs(num_classes=10, in_channels=1)
    firsts = [
        space.cost_profile(_config(space, seed), num_classes=10, in_channels=1).exit_macs[0]
        for seed in range(30)
    ]
    assert floor <= min(firsts)
    assert floor in {
        space.cost_profile(c, num_classes=10, in_channels=1).exit_macs[0]
        for c in _cheapest_candidates(space)
    }


def _cheapest_candidates(space: MobileNetV3Space) -> list[Any]:
    from optuna_nachos.config import EENNConfig

    out = []
    for exits in ((1,), (1, 2), (1, 2, 3), (1, 2, 3, 4)):
        out.append(
            EENNConfig(
                depths=(2,) * 5,
                kernel_sizes=((3,) * 2,) * 5,
                expand_ratios=((3,) * 2,) * 5,
                exit_stages=exits,
                resolution=16,
            )
        )
    return out


def test_the_static_constraint_names_are_the_records() -> None:
    from optuna_nachos.space import _base

    for name in ("MIN_EXITS", "MAX_AVG_MACS", "MAX_PEAK_MACS", "MAX_PARAMS"):
        assert getattr(_base, name) == getattr(record, name)


def test_static_constraints_follow_the_profile() -> None:
    space = MobileNetV3Space(resolutions=(16,), min_exits=2)
    config = _config(space, seed=3)
    profile = space.cost_profile(config, num_classes=10, in_channels=1)
    values = space.static_constraints(
        config,
        num_classes=10,
        in_channels=1,
        max_avg_macs=1e6,
        max_peak_macs=2e6,
        max_params=1e5,
    )
    assert values == {
        MIN_EXITS: float(max(0, 2 - config.num_early_exits)),
        MAX_AVG_MACS: profile.min_average_macs - 1e6,
        MAX_PEAK_MACS: profile.peak_macs - 2e6,
        MAX_PARAMS: profile.total_params - 1e5,
    }
    # Unset limits do not appear.
    assert set(space.static_constraints(config, num_classes=10, in_channels=1)) == {MIN_EXITS}
