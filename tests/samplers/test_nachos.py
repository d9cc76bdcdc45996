"""NachosSampler on the EENN space and on generic search spaces."""

from __future__ import annotations

import copy
import logging
import math
import pickle
import warnings
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from optuna_nachos._logging import LOGGER_NAME
from optuna_nachos.cost import exit_macs, total_params
from optuna_nachos.samplers import (
    PROPOSAL_ATTR,
    ROUND_ATTR_PREFIX,
    NachosSampler,
    round_diagnostics,
)
from optuna_nachos.space import MobileNetV3Space

BUDGET = 2.7e6

# Small NSGA-II and cross-validation settings keep each round well under a second.
FAST: dict[str, Any] = dict(
    n_startup_trials=10,
    batch_size=4,
    population_size=16,
    n_generations=3,
    n_folds=3,
    surrogates=("rbf", "trees"),
)


def eenn_objective(space: MobileNetV3Space, budget: float = BUDGET):
    """A cheap stand-in of the packaged objective: real analytic costs, a made-up accuracy."""

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        config = space.suggest(trial)
        macs = exit_macs(config, num_classes=10)
        accuracy = min(0.99, 0.2 + 0.04 * math.log(macs[-1]) - 0.01 * config.num_early_exits)
        average = macs[0] + 0.3 * (macs[-1] - macs[0])
        trial.set_constraint("max_avg_macs", average - budget)
        trial.set_constraint("min_exits", space.exit_deficit(config))
        return accuracy, average

    return objective


def eenn_study(sampler: NachosSampler, storage: Any = None) -> optuna.Study:
    study = optuna.create_study(
        directions=["maximize", "minimize"], sampler=sampler, storage=storage
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["accuracy", "avg_macs"])
    return study


def _claimed(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.trials if t.system_attrs.get(PROPOSAL_ATTR)]


def test_proposals_valid_feasible_and_new(tmp_path: Any) -> None:
    space = MobileNetV3Space()
    sampler = NachosSampler(space=space, max_avg_macs=BUDGET, seed=0, **FAST)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = eenn_study(sampler, storage)
    study.optimize(eenn_objective(space), n_trials=26)

    assert len(study.trials) == 26
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    claimed = _claimed(study)
    # Every trial after the random start took a proposal.
    assert [t.number for t in claimed] == list(range(10, 26))
    for trial in claimed:
        config = space.config_from_params(trial.params)  # valid configuration
        assert trial.system_attrs[PROPOSAL_ATTR]["params"] == trial.params
        assert exit_macs(config, num_classes=10)[0] <= BUDGET  # exact lower bound holds
        assert space.exit_deficit(config) == 0
    configs = [space.config_from_params(t.params) for t in study.trials]
    assert len(set(configs)) == len(configs)  # no configuration twice
    # The random start, too, samples only statically feasible configurations.
    for config in configs[:10]:
        assert exit_macs(config, num_classes=10)[0] <= BUDGET
        assert space.exit_deficit(config) == 0


def test_whole_space_startup_when_asked() -> None:
    space = MobileNetV3Space()
    sampler = NachosSampler(
        space=space, max_avg_macs=BUDGET, feasible_startup=False, seed=0, **FAST
    )
    study = eenn_study(sampler)
    study.optimize(eenn_objective(space), n_trials=10)
    firsts = [
        exit_macs(space.config_from_params(t.params), num_classes=10)[0] for t in study.trials
    ]
    assert max(firsts) > BUDGET  # about 80 % of the space lies over this budget


def test_round_diagnostics_recorded_and_logged(nachos_log: pytest.LogCaptureFixture) -> None:
    space = MobileNetV3Space()
    every_surrogate = {**FAST, "surrogates": ("rbf", "trees", "mlp")}
    sampler = NachosSampler(space=space, max_avg_macs=BUDGET, seed=1, **every_surrogate)
    study = eenn_study(sampler)
    with nachos_log.at_level(logging.INFO, logger=LOGGER_NAME):
        study.optimize(eenn_objective(space), n_trials=18)
    rounds = round_diagnostics(study)
    assert [r["round"] for r in rounds] == [0, 1]
    for info in rounds:
        assert set(info["surrogates"]) == {"accuracy", "exit_position"}
        accuracy = info["surrogates"]["accuracy"]
        assert accuracy["surrogate"] in ("rbf", "trees", "mlp")
        assert -1.0 <= accuracy["kendall_tau"] <= 1.0
        assert info["n_proposals"] == 4
        assert info["n_candidates"] > 0
        assert info["seconds"] >= 0
    system = study._storage.get_study_system_attrs(study._study_id)
    assert sorted(k for k in system if k.startswith(ROUND_ATTR_PREFIX)) == [
        f"{ROUND_ATTR_PREFIX}000000",
        f"{ROUND_ATTR_PREFIX}000001",
    ]
    assert sum("NACHOS round" in r.getMessage() for r in nachos_log.records) == 2


@pytest.mark.parametrize(
    "kwargs",
    [{"selection": "spread"}, {"exploration": 0.0}, {"exploration": 1.0}],
)
def test_selection_and_exploration_settings(kwargs: dict[str, Any]) -> None:
    space = MobileNetV3Space()
    sampler = NachosSampler(space=space, max_avg_macs=BUDGET, seed=6, **FAST, **kwargs)
    study = eenn_study(sampler)
    study.optimize(eenn_objective(space), n_trials=18)
    claimed = _claimed(study)
    assert len(claimed) == 8
    configs = {space.config_from_params(t.params) for t in study.trials}
    assert len(configs) == 18
    for trial in claimed:
        assert exit_macs(space.config_from_params(trial.params), num_classes=10)[0] <= BUDGET


def test_peak_and_params_limits_are_exact() -> None:
    space = MobileNetV3Space()
    max_peak, max_params = 9e6, 3_000_000
    sampler = NachosSampler(
        space=space,
        max_avg_macs=4e6,
        max_peak_macs=max_peak,
        max_params=max_params,
        seed=2,
        **FAST,
    )
    study = eenn_study(sampler)
    study.optimize(eenn_objective(space, budget=4e6), n_trials=22)
    for trial in _claimed(study):
        config = space.config_from_params(trial.params)
        assert exit_macs(config, num_classes=10)[-1] <= max_peak
        assert total_params(config, num_classes=10) <= max_params


def test_min_exits_of_the_space_is_exact() -> None:
    space = MobileNetV3Space(min_exits=2)
    sampler = NachosSampler(space=space, max_avg_macs=BUDGET, seed=3, **FAST)
    study = eenn_study(sampler)
    study.optimize(eenn_objective(space), n_trials=22)
    assert len(_claimed(study)) == 12
    for trial in _claimed(study):
        assert space.config_from_params(trial.params).num_early_exits >= 2


def test_same_seed_same_sequence() -> None:
    def run(seed: int) -> list[dict[str, Any]]:
        space = MobileNetV3Space()
        sampler = NachosSampler(space=space, max_avg_macs=BUDGET, seed=seed, **FAST)
        study = eenn_study(sampler)
        study.optimize(eenn_objective(space), n_trials=20)
        return [t.params for t in study.trials]

    first = run(7)
    assert first == run(7)
    assert first != run(8)


def test_reseed_rng_changes_the_sequence() -> None:
    space = MobileNetV3Space()

    def run(reseed: bool) -> list[dict[str, Any]]:
        sampler = NachosSampler(space=space, seed=5, **FAST)
        if reseed:
            sampler.reseed_rng()
        study = eenn_study(sampler)
        study.optimize(eenn_objective(space), n_trials=3)
        return [t.params for t in study.trials]

    assert run(False) != run(True)


def test_enqueued_trials_keep_their_params_and_are_not_proposed() -> None:
    space = MobileNetV3Space()
    sampler = NachosSampler(space=space, max_avg_macs=BUDGET, seed=4, **FAST)
    study = eenn_study(sampler)
    objective = eenn_objective(space)
    study.optimize(objective, n_trials=10)
    # A cheap, feasible configuration the sampler could well propose itself.
    cheap = {name: dist.choices[0] for name, dist in space.distributions().items()}
    cheap.update({f"exit_after_stage{s}": True for s in space.exit_stages})
    study.enqueue_trial(cheap)
    partial = {"stage1_depth": 4, "stage5_depth": 4}
    study.enqueue_trial(partial)
    study.optimize(objective, n_trials=14)

    enqueued, partially = study.trials[10], study.trials[11]
    assert enqueued.params == cheap
    assert PROPOSAL_ATTR not in enqueued.system_attrs  # nothing claimed for it
    assert {k: partially.params[k] for k in partial} == partial
    configs = [space.config_from_params(t.params) for t in study.trials]
    assert configs.count(space.config_from_params(cheap)) == 1


def test_generic_search_space_with_independent_fallback(tmp_path: Any) -> None:
    def objective(trial: optuna.Trial) -> float:
        kind = trial.suggest_categorical("kind", ["a", "b", "c"])
        depth = trial.suggest_int("depth", 1, 8)
        width = trial.suggest_int("width", 16, 256, log=True)
        rate = trial.suggest_float("rate", 1e-4, 1e-1, log=True)
        step = trial.suggest_float("step", 0.0, 1.0, step=0.25)
        value = (depth - 5) ** 2 + math.log(width) + abs(math.log10(rate) + 2) + step
        if kind == "b":  # a parameter outside the intersection search space
            value += trial.suggest_float("extra", -1.0, 1.0) ** 2
        trial.set_constraint("depth_limit", depth - 6)
        return value

    sampler = NachosSampler(seed=0, warn_independent_sampling=False, **FAST)
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "journal.log"))
    )
    study = optuna.create_study(sampler=sampler, storage=storage)
    study.optimize(objective, n_trials=30)

    assert len(study.trials) == 30
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    claimed = _claimed(study)
    assert len(claimed) == 20
    names = {"kind", "depth", "width", "rate", "step"}
    for trial in claimed:
        assert set(trial.system_attrs[PROPOSAL_ATTR]["params"]) == names
        assert 1e-4 <= trial.params["rate"] <= 1e-1
        assert trial.params["step"] in (0.0, 0.25, 0.5, 0.75, 1.0)
        assert isinstance(trial.params["width"], int)
        if trial.params["kind"] == "b":
            assert -1.0 <= trial.params["extra"] <= 1.0
    keys = [tuple(t.params[n] for n in sorted(names)) for t in study.trials]
    assert len(set(keys)) == len(keys)
    # The stored constraint got a surrogate, and most proposals satisfy it.
    info = round_diagnostics(study)[-1]
    assert "constraint:depth_limit" in info["surrogates"]
    feasible = [t.constraints["depth_limit"] <= 0 for t in claimed]
    assert sum(feasible) >= 0.7 * len(feasible)


def test_single_objective_improves_on_random() -> None:
    def objective(trial: optuna.Trial) -> float:
        return sum((trial.suggest_int(f"x{i}", 0, 10) - 7) ** 2 for i in range(4))

    sampler = NachosSampler(seed=0, **FAST)
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=40)
    start = min(t.value for t in study.trials[:10])
    assert study.best_value < start


def test_sampler_pickles_and_copies() -> None:
    sampler = NachosSampler(space=MobileNetV3Space(), max_avg_macs=BUDGET, seed=0, **FAST)
    restored = pickle.loads(pickle.dumps(sampler))
    copied = copy.deepcopy(sampler)
    for other in (restored, copied):
        study = eenn_study(other)
        study.optimize(eenn_objective(MobileNetV3Space()), n_trials=12)
        assert len(_claimed(study)) == 2


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_startup_trials": -1},
        {"batch_size": 0},
        {"population_size": 1},
        {"surrogates": ("svm",)},
        {"surrogates": ()},
        {"max_avg_macs": 0},
        {"max_peak_macs": 1e6},  # needs a space
        {"selection": "best"},
        {"exploration": 1.5},
    ],
)
def test_invalid_settings(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        NachosSampler(**kwargs)


def test_objective_roles_from_directions_and_explicit_indices() -> None:
    space = MobileNetV3Space()
    # Reversed objectives, no metric names: the indices say which is which.
    sampler = NachosSampler(
        space=space,
        max_avg_macs=BUDGET,
        min_accuracy=0.5,
        accuracy_objective=1,
        avg_macs_objective=0,
        seed=0,
        **FAST,
    )
    study = optuna.create_study(directions=["minimize", "maximize"], sampler=sampler)
    objective = eenn_objective(space)
    study.optimize(lambda t: tuple(reversed(objective(t))), n_trials=14)
    info = round_diagnostics(study)[0]
    assert set(info["surrogates"]) == {"objective1", "exit_position"}

    bad = NachosSampler(space=space, accuracy_objective=5, **FAST)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=bad)
    with pytest.raises(ValueError, match="out of range"):
        study.optimize(objective, n_trials=11)
