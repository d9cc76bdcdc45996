"""Several workers share the proposals of a round through the storage."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from optuna_nachos.cost import exit_macs
from optuna_nachos.samplers import PROPOSAL_ATTR, NachosSampler
from optuna_nachos.space import MobileNetV3Space

REPO = Path(__file__).resolve().parents[2]
BUDGET = 2.7e6
SETTINGS: dict[str, Any] = dict(
    max_avg_macs=BUDGET,
    n_startup_trials=8,
    batch_size=4,
    population_size=16,
    n_generations=3,
    n_folds=3,
    surrogates=("rbf", "trees"),
)


def _objective(space: MobileNetV3Space):
    def objective(trial: optuna.Trial) -> tuple[float, float]:
        config = space.suggest(trial)
        macs = exit_macs(config, num_classes=10)
        average = macs[0] + 0.3 * (macs[-1] - macs[0])
        trial.set_constraint("max_avg_macs", average - BUDGET)
        trial.set_constraint("min_exits", space.exit_deficit(config))
        return 0.2 + 0.04 * math.log(macs[-1]), average

    return objective


def _check_no_repeats(study: optuna.Study, space: MobileNetV3Space, n_trials: int) -> None:
    trials = study.trials
    assert len(trials) == n_trials
    assert all(t.state == TrialState.COMPLETE for t in trials)
    claimed = [t for t in trials if t.system_attrs.get(PROPOSAL_ATTR)]
    assert claimed, "no trial took a proposal"
    # No proposal was claimed twice, and no claimed proposal repeats any other trial.
    claims = Counter(
        space.config_from_params(t.system_attrs[PROPOSAL_ATTR]["params"]) for t in claimed
    )
    assert max(claims.values()) == 1
    configs = Counter(space.config_from_params(t.params) for t in trials)
    for trial in claimed:
        assert configs[space.config_from_params(trial.params)] == 1
        assert trial.params == trial.system_attrs[PROPOSAL_ATTR]["params"]


@pytest.fixture(autouse=True)
def _quiet_optuna() -> Iterator[None]:
    """Optuna's per-trial lines off during these tests, and back as they were after."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(verbosity)


def _create(storage: Any) -> optuna.Study:
    study = optuna.create_study(
        study_name="parallel", storage=storage, directions=["maximize", "minimize"]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["accuracy", "avg_macs"])
    return study


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_threads_share_rounds(backend: str, tmp_path: Path) -> None:
    space = MobileNetV3Space()
    storage = None if backend == "memory" else f"sqlite:///{tmp_path / 'threads.db'}"
    study = _create(storage)
    study.sampler = NachosSampler(space=space, seed=0, **SETTINGS)
    study.optimize(_objective(space), n_trials=28, n_jobs=2)
    _check_no_repeats(study, space, 28)


_WORKER = textwrap.dedent(
    """
    import json, math, sys, time
    import optuna
    from optuna_nachos.cost import exit_macs
    from optuna_nachos.samplers import NachosSampler
    from optuna_nachos.space import MobileNetV3Space

    kind, location, seed, n_trials, settings = sys.argv[1:6]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if kind == "journal":
        storage = optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(location)
        )
    else:
        storage = location
    space = MobileNetV3Space()
    budget = 2.7e6

    def objective(trial):
        config = space.suggest(trial)
        macs = exit_macs(config, num_classes=10)
        average = macs[0] + 0.3 * (macs[-1] - macs[0])
        trial.set_constraint("max_avg_macs", average - budget)
        trial.set_constraint("min_exits", space.exit_deficit(config))
        time.sleep(0.02)
        return 0.2 + 0.04 * math.log(macs[-1]), average

    sampler = NachosSampler(space=space, seed=int(seed), **json.loads(settings))
    study = optuna.load_study(study_name="parallel", storage=storage, sampler=sampler)
    study.optimize(objective, n_trials=int(n_trials))
    """
)


@pytest.mark.parametrize("backend", ["journal", "sqlite"])
def test_processes_share_rounds(backend: str, tmp_path: Path) -> None:
    import json

    if backend == "journal":
        location = str(tmp_path / "journal.log")
        storage: Any = optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(location)
        )
    else:
        location = storage = f"sqlite:///{tmp_path / 'processes.db'}"
    _create(storage)
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    n_per_worker = 14
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                str(script),
                backend,
                location,
                str(seed),
                str(n_per_worker),
                json.dumps(SETTINGS),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for seed in (0, 1)
    ]
    for worker in workers:
        output, _ = worker.communicate(timeout=600)
        assert worker.returncode == 0, output
    study = optuna.load_study(study_name="parallel", storage=storage)
    _check_no_repeats(study, MobileNetV3Space(), 2 * n_per_worker)


def test_racing_claims_step_back(tmp_path: Path) -> None:
    """A claim written by another process at the same moment makes the later claimer retry."""
    space = MobileNetV3Space()
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "race.log"))
    )
    study = _create(storage)
    study.sampler = NachosSampler(space=space, seed=0, **SETTINGS)
    study.optimize(_objective(space), n_trials=8)  # the random start

    rival = study.ask()  # a trial of "another process", not sampled yet
    original = storage.set_trial_system_attr
    raced: list[Any] = []

    def racing_set(trial_id: int, key: str, value: Any) -> None:
        # The other process writes the very same claim just before this one lands.
        if key == PROPOSAL_ATTR and value is not None and not raced:
            raced.append(value)
            original(rival._trial_id, key, value)
        original(trial_id, key, value)

    storage.set_trial_system_attr = racing_set  # type: ignore[method-assign]
    try:
        trial = study.ask()
        config = space.suggest(trial)
    finally:
        storage.set_trial_system_attr = original  # type: ignore[method-assign]
    assert raced, "no claim was written"
    mine = storage.get_trial_system_attrs(trial._trial_id)[PROPOSAL_ATTR]
    assert mine is not None and mine["params"] != raced[0]["params"]
    assert config == space.config_from_params(mine["params"])
