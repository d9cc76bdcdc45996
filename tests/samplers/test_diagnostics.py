"""Round diagnostics: one bounded study attribute per round, read back in round order."""

from __future__ import annotations

import json
import math
import warnings

import optuna

from optuna_nachos.cost import exit_macs
from optuna_nachos.samplers import (
    ROUND_USER_ATTR_PREFIX,
    ROUNDS_USER_ATTR,
    NachosSampler,
    round_diagnostics,
)
from optuna_nachos.samplers._diagnostics import round_user_key
from optuna_nachos.space import MobileNetV3Space

BUDGET = 2.7e6


def test_one_attribute_per_round_of_bounded_size(tmp_path) -> None:
    space = MobileNetV3Space()
    sampler = NachosSampler(
        space=space,
        max_avg_macs=BUDGET,
        n_startup_trials=6,
        batch_size=2,
        population_size=8,
        n_generations=1,
        n_folds=2,
        n_repeats=1,
        surrogates=("rbf",),
        seed=0,
    )
    storage = f"sqlite:///{tmp_path / 'rounds.db'}"
    study = optuna.create_study(
        directions=["maximize", "minimize"], sampler=sampler, storage=storage
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["accuracy", "avg_macs"])

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        config = space.suggest(trial)
        macs = exit_macs(config, num_classes=10)
        trial.set_constraint("max_avg_macs", macs[0] - BUDGET)
        return 0.2 + 0.04 * math.log(macs[-1]), float(macs[0])

    study.optimize(objective, n_trials=16)

    attrs = optuna.load_study(study_name=study.study_name, storage=storage).user_attrs
    keys = sorted(k for k in attrs if k.startswith(ROUND_USER_ATTR_PREFIX))
    assert (
        keys == [round_user_key(i) for i in range(5)] == [f"nachos_round:{i:06d}" for i in range(5)]
    )
    assert ROUNDS_USER_ATTR not in attrs  # no value that grows with every round
    sizes = [len(json.dumps(attrs[k])) for k in keys]
    # Each value holds one round (about 600 bytes here), far below MySQL's 64 KB TEXT limit,
    # and later rounds' values are no larger than the first ones (nothing accumulates).
    assert max(sizes) < 4096
    assert max(sizes) < 1.5 * min(sizes)
    rounds = round_diagnostics(study)
    assert [r["round"] for r in rounds] == [0, 1, 2, 3, 4]
    assert rounds == [attrs[k] for k in keys]


def _study_with(attrs: dict) -> optuna.Study:
    study = optuna.create_study()
    for key, value in attrs.items():
        study.set_user_attr(key, value)
    return study


def test_reader_orders_rounds_by_index() -> None:
    study = _study_with(
        {
            round_user_key(1_000_000): {"round": 1_000_000},
            round_user_key(12): {"round": 12},
            round_user_key(2): {"round": 2},
            "nachos_round:notanumber": {"round": -1},
            "nachos_round:000003": "not a round",
            "other": {"round": 99},
        }
    )
    assert [r["round"] for r in round_diagnostics(study)] == [2, 12, 1_000_000]
    assert round_diagnostics(optuna.create_study()) == []


def test_reader_reads_the_single_list_of_earlier_versions() -> None:
    old = [{"round": 0, "n_proposals": 8}, {"round": 1, "n_proposals": 7}]
    assert round_diagnostics(_study_with({ROUNDS_USER_ATTR: old})) == old
    # A study continued by this version: the old list, then one attribute per new round.
    continued = _study_with({ROUNDS_USER_ATTR: old, round_user_key(2): {"round": 2}})
    assert [r["round"] for r in round_diagnostics(continued)] == [0, 1, 2]
    # Entries without an index keep their position.
    unnumbered = _study_with({ROUNDS_USER_ATTR: [{"n_proposals": 8}, {"n_proposals": 6}]})
    assert [r["n_proposals"] for r in round_diagnostics(unnumbered)] == [8, 6]
