"""The building blocks of NachosSampler: encoding, surrogates, integer NSGA-II."""

from __future__ import annotations

import numpy as np
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from optuna_nachos.samplers._encoding import SearchSpaceEncoder
from optuna_nachos.samplers._nsga2 import (
    IntegerNSGA2,
    constrained_ranks,
    crowding_distance,
    dominated_hypervolume,
    non_dominated_ranks,
    select_hypervolume,
    select_spread,
)
from optuna_nachos.samplers._surrogates import fit_surrogate

SPACE = {
    "cat": CategoricalDistribution(["a", "b", "c"]),
    "flag": CategoricalDistribution([False, True]),
    "kernel": CategoricalDistribution([3, 5, 7]),
    "depth": IntDistribution(1, 9, step=2),
    "width": IntDistribution(8, 512, log=True),
    "lr": FloatDistribution(1e-5, 1e-1, log=True),
    "ratio": FloatDistribution(0.0, 1.0, step=0.1),
    "x": FloatDistribution(-2.0, 2.0),
}


def test_encode_decode_round_trip() -> None:
    encoder = SearchSpaceEncoder(SPACE)
    rng = np.random.default_rng(0)
    vectors = encoder.random(200, rng)
    for vector in vectors:
        params = encoder.decode(vector)
        for name, dist in SPACE.items():
            assert dist._contains(dist.to_internal_repr(params[name]))
        assert encoder.key(encoder.encode(params)) == encoder.key(vector)
    params = encoder.decode(vectors[0])
    assert isinstance(params["depth"], int) and isinstance(params["width"], int)
    assert isinstance(params["lr"], float) and isinstance(params["ratio"], float)
    assert type(params["flag"]) is bool
    # Index genes are integers, real genes are values (the log for log-scaled floats).
    assert encoder.encode({**params, "depth": 7})[3] == 3
    assert encoder.encode({**params, "lr": 1e-3})[5] == pytest.approx(np.log(1e-3))
    assert encoder.try_encode({"cat": "a"}) is None
    assert encoder.try_encode({**params, "depth": 11}) is None


def test_features_one_hot_unordered_and_values_of_ordered_choices() -> None:
    encoder = SearchSpaceEncoder(SPACE)
    params = {
        "cat": "c",
        "flag": True,
        "kernel": 7,
        "depth": 3,
        "width": 64,
        "lr": 1e-2,
        "ratio": 0.5,
        "x": 0.25,
    }
    features = encoder.features(encoder.encode(params)[None, :])[0]
    assert encoder.num_features == len(features) == 3 + 1 + 1 + 1 + 1 + 1 + 1 + 1
    np.testing.assert_allclose(features[:3], [0, 0, 1])  # one-hot of "c"
    assert features[3] == 1.0 and features[4] == 7.0 and features[5] == 3.0
    assert features[6] == pytest.approx(np.log(64))
    assert features[7] == pytest.approx(np.log(1e-2))
    assert features[8] == pytest.approx(0.5) and features[9] == pytest.approx(0.25)


def test_ranks_and_crowding() -> None:
    f = np.array([[0.0, 3.0], [1.0, 2.0], [2.0, 1.0], [3.0, 3.0], [2.0, 2.0]])
    np.testing.assert_array_equal(non_dominated_ranks(f), [0, 0, 0, 2, 1])
    v = np.array([0.0, 0.5, 0.0, 0.0, 0.1])
    # Feasible first (Pareto ranks), then infeasible by violation.
    np.testing.assert_array_equal(constrained_ranks(f, v), [0, 3, 0, 1, 2])
    crowd = crowding_distance(f[:3])
    assert np.isinf(crowd[0]) and np.isinf(crowd[2]) and np.isfinite(crowd[1])


def test_select_spread_takes_extremes_and_spreads() -> None:
    t = np.linspace(0, 1, 21)
    front = np.stack([t, 1 - t], axis=1)
    chosen = select_spread(front, np.zeros(21), 3)
    assert set(chosen) == {0, 20, 10}
    worse = np.vstack([front, front + 0.5])
    chosen = select_spread(worse, np.zeros(42), 25)
    assert set(range(21)) <= set(chosen)


def test_integer_nsga2_finds_the_front_under_constraints() -> None:
    space = {f"x{i}": IntDistribution(0, 9) for i in range(4)}
    encoder = SearchSpaceEncoder(space)

    def evaluate(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # On the Pareto front x2 = x3 = 0; x0 + x1 trades one objective for the other.
        f1 = x[:, 0] + x[:, 1]
        f2 = (9 - x[:, 0]) + (9 - x[:, 1]) + x[:, 2] + x[:, 3]
        violation = np.maximum(0.0, 4 - x[:, 0])  # x0 >= 4
        return np.stack([f1, f2], axis=1), violation

    nsga = IntegerNSGA2(
        encoder=encoder,
        evaluate=evaluate,
        key=encoder.key,
        population_size=20,
        n_generations=15,
        rng=np.random.default_rng(0),
    )
    archive = nsga.run(np.zeros((0, 4)))
    assert len(set(archive.keys)) == len(archive.keys)
    ranks = constrained_ranks(archive.objectives, archive.violations)
    front = archive.vectors[ranks == 0]
    assert np.all(archive.violations[ranks == 0] == 0)
    assert np.all(front[:, 2:] == 0)  # the true front is reached ...
    assert len({tuple(v) for v in archive.objectives[ranks == 0]}) >= 10  # ... and covered
    assert np.all(front[:, 0] >= 4)


def test_surrogate_selection_by_kendall_tau() -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(60, 3))
    y = 3 * x[:, 0] + np.sin(6 * x[:, 1])
    surrogate = fit_surrogate(x, y, n_folds=3, seed=0)
    assert surrogate.name in ("rbf", "trees", "mlp")
    assert surrogate.tau_mean is not None and surrogate.tau_mean > 0.5
    assert set(surrogate.scores) == {"rbf", "trees", "mlp"}
    assert surrogate.scores[surrogate.name] == max(surrogate.scores.values())
    predictions = surrogate.predict(x)
    assert predictions.shape == (60,)
    summary = surrogate.summary()
    assert summary["surrogate"] == surrogate.name
    # Too little data: no cross-validation; constant targets: a constant.
    assert fit_surrogate(x[:3], y[:3]).tau_mean is None
    flat = fit_surrogate(x, np.ones(60))
    assert flat.name == "constant" and np.all(flat.predict(x) == 1.0)


def test_dominated_hypervolume_exact_in_two_and_three_dimensions() -> None:
    points = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0], [3.5, 3.5]])
    assert dominated_hypervolume(points, np.array([4.0, 4.0])) == pytest.approx(6.0)
    assert dominated_hypervolume(points[:0], np.array([4.0, 4.0])) == 0.0
    cube = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    assert dominated_hypervolume(cube, np.array([2.0, 2.0, 2.0])) == pytest.approx(4.0)


def test_select_hypervolume_prefers_improvements_then_spreads() -> None:
    front = np.array([[0.0, 1.0], [1.0, 0.0]])
    candidates = np.array(
        [
            [0.5, 0.5],  # fills the gap: the largest gain
            [0.9, 0.9],  # no gain once [0.5, 0.5] is chosen
            [0.2, 0.8],  # a smaller gain
            [0.3, 0.3],  # the largest gain of all, but predicted infeasible
        ]
    )
    violations = np.array([0.0, 0.0, 0.0, 1.0])
    chosen = select_hypervolume(
        candidates, violations, 2, front=front, reference=np.array([2.0, 2.0])
    )
    assert chosen.tolist() == [0, 2]
    # With more places than improving candidates, the rest is filled (feasible first).
    chosen = select_hypervolume(
        candidates, violations, 4, front=front, reference=np.array([2.0, 2.0])
    )
    assert chosen[:2].tolist() == [0, 2] and sorted(chosen.tolist()) == [0, 1, 2, 3]
