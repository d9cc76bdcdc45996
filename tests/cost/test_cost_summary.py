"""Average, peak and lower-bound MACs, and the cost profile."""

from __future__ import annotations

import json
import math

import pytest

from optuna_nachos.cost import (
    CostProfile,
    average_macs,
    cost_profile,
    exit_macs,
    exit_params,
    min_average_macs,
    peak_macs,
)


def test_average_macs_weights_costs_by_ratios() -> None:
    assert average_macs([100, 300], [0.75, 0.25]) == 150.0
    assert average_macs([10, 20, 40], [0.0, 0.0, 1.0]) == 40.0
    assert average_macs([7], [1.0]) == 7.0
    assert isinstance(average_macs([1, 2], [0.5, 0.5]), float)
    # tolerance on the sum of ratios
    assert math.isclose(average_macs([100, 200], [0.5 + 4e-7, 0.5]), 150.00004)


def test_average_macs_accepts_numpy_and_torch() -> None:
    import numpy as np
    import torch

    assert average_macs(np.array([100, 300]), np.array([0.5, 0.5])) == 200.0
    assert average_macs(torch.tensor([100, 300]), torch.tensor([0.25, 0.75])) == 250.0


@pytest.mark.parametrize(
    ("costs", "ratios", "error", "match"),
    [
        ([100, 200], [1.0], ValueError, "one exit ratio per exit"),
        ([100, 200], [0.5, 0.4], ValueError, "sum to 1"),
        ([100, 200], [1.5, -0.5], ValueError, "non-negative"),
        ([100, -200], [0.5, 0.5], ValueError, "non-negative"),
        ([], [], ValueError, "empty"),
        ([100, 200], [math.nan, 1.0], ValueError, "finite"),
        ([100, 200], "ab", TypeError, "sequence of numbers"),
        ([100, 200], [0.5, "x"], TypeError, "sequence of numbers"),
        (None, [1.0], TypeError, "sequence of numbers"),
    ],
)
def test_average_macs_errors(costs, ratios, error, match) -> None:
    with pytest.raises(error, match=match):
        average_macs(costs, ratios)


def test_peak_and_min_average() -> None:
    costs = [120, 250, 400]
    assert peak_macs(costs) == 400
    assert min_average_macs(costs) == 120
    assert isinstance(peak_macs([1.0, 2.0]), int)
    # The lower bound is the cheapest exit even if the costs do not increase.
    assert min_average_macs([300, 200, 500]) == 200
    for function in (peak_macs, min_average_macs):
        with pytest.raises(ValueError, match="empty"):
            function([])
        with pytest.raises(ValueError, match="non-negative"):
            function([1, -1])


def test_min_average_macs_is_a_lower_bound_of_any_average() -> None:
    costs = [100, 150, 500]
    for ratios in ([1, 0, 0], [0, 1, 0], [0.2, 0.3, 0.5], [0, 0, 1]):
        assert average_macs(costs, ratios) >= min_average_macs(costs)
    assert average_macs(costs, [0, 0, 1]) == peak_macs(costs)


@pytest.mark.parametrize("convention", ["nachos", "reference"])
def test_cost_profile(convention: str, small_config) -> None:
    config = small_config(exit_stages=(1, 3), resolution=32)
    profile = cost_profile(config, num_classes=10, convention=convention)
    macs = exit_macs(config, num_classes=10, convention=convention)
    assert profile.exit_macs == tuple(macs)
    assert profile.exit_params == tuple(exit_params(config, num_classes=10))
    assert profile.peak_macs == macs[-1]
    assert profile.min_average_macs == macs[0]
    assert profile.convention == convention
    assert profile.exit_pools == (4, 1)
    assert profile.num_exits == 3
    assert profile.total_params == profile.exit_params[-1]
    assert profile.average_macs([0.5, 0.25, 0.25]) == average_macs(macs, [0.5, 0.25, 0.25])
    with pytest.raises(AttributeError):
        profile.peak_macs = 0  # frozen


def test_cost_profile_fvcore_equals_analytic(small_config) -> None:
    config = small_config(exit_stages=(2, 3), resolution=28)
    kwargs = {"num_classes": 100, "in_channels": 1, "convention": "reference"}
    assert cost_profile(config, method="fvcore", **kwargs) == cost_profile(config, **kwargs)


def test_cost_profile_to_dict_is_plain_json(small_config) -> None:
    profile = cost_profile(small_config(), num_classes=10)
    data = profile.to_dict()
    assert json.loads(json.dumps(data)) == data
    for key in ("exit_macs", "exit_params", "exit_pools"):
        assert all(type(v) is int for v in data[key])
    for key in ("peak_macs", "min_average_macs", "total_params"):
        assert type(data[key]) is int
    assert CostProfile.from_dict(json.loads(json.dumps(data))) == profile


def test_cost_profile_validation() -> None:
    with pytest.raises(ValueError, match="convention"):
        CostProfile((1, 2), (3, 4), 2, 1, convention="paper")
    with pytest.raises(ValueError, match="one entry per exit"):
        CostProfile((1, 2), (3,), 2, 1)
    with pytest.raises(ValueError, match="method"):
        cost_profile(None, num_classes=10, method="guess")
    with pytest.raises(TypeError, match="EENNConfig"):
        cost_profile(None, num_classes=10)
