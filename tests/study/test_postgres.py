"""Many workers on one PostgreSQL study: tables created once, exact totals, dead workers."""

import json
import multiprocessing
import os
import signal
import time

import optuna
import pytest
from optuna.trial import TrialState

from optuna_nachos.space import suggest_eenn
from optuna_nachos.study import (
    StudyLock,
    create_sampler,
    create_study,
    derive_seed,
    open_storage,
    register_worker,
    run_search,
)
from optuna_nachos.study._workers import RETRY_ATTR

SPAWN = multiprocessing.get_context("spawn")


def _objective(trial: optuna.Trial) -> tuple[float, float]:
    config = suggest_eenn(trial)
    time.sleep(0.2)  # long enough for the workers to overlap
    return sum(config.depths) / 20.0, float(len(config.exit_stages))


def _hanging_objective(trial: optuna.Trial) -> tuple[float, float]:
    suggest_eenn(trial)
    trial.set_user_attr("started", True)
    time.sleep(3600)
    raise AssertionError("killed before")


def _worker(url, n_trials, barrier=None, host=None, hang=False, heartbeat=60) -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    if host is not None:  # pretend to run on another machine: only the heartbeat sees it die
        import socket

        socket.gethostname = lambda: host
    if barrier is not None:
        barrier.wait()  # every worker opens the new database at the same moment
    storage = open_storage(url, heartbeat_interval=heartbeat, grace_period=3 * heartbeat)
    with StudyLock(storage, "shared")():
        study = create_study(storage=storage, study_name="shared")
        worker, n_existing = register_worker(study)
    study.sampler = create_sampler("random", seed=derive_seed(0, worker, n_existing))
    objective = _hanging_objective if hang else _objective
    run_search(study, objective, n_trials=n_trials)


def _join(processes, timeout=600):
    for process in processes:
        process.join(timeout=timeout)
        assert process.exitcode == 0


def test_workers_create_the_tables_of_a_new_database_together(postgres_url):
    barrier = SPAWN.Barrier(4)
    workers = [SPAWN.Process(target=_worker, args=(postgres_url, 4, barrier)) for _ in range(4)]
    for worker in workers:
        worker.start()
    _join(workers)
    study = optuna.load_study(study_name="shared", storage=open_storage(postgres_url))
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 4


def test_four_workers_finish_exactly_n_distinct_trials(postgres_url):
    create_study(storage=open_storage(postgres_url), study_name="shared")
    workers = [SPAWN.Process(target=_worker, args=(postgres_url, 16)) for _ in range(4)]
    for worker in workers:
        worker.start()
    _join(workers)
    trials = optuna.load_study(study_name="shared", storage=open_storage(postgres_url)).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 16
    assert len({json.dumps(t.params, sort_keys=True) for t in trials}) == 16
    assert len({t.user_attrs["nachos_worker"]["pid"] for t in trials}) > 1


def test_a_killed_workers_trial_is_failed_by_the_heartbeat_and_retried(postgres_url):
    storage = open_storage(postgres_url, heartbeat_interval=1, grace_period=3)
    study = create_study(storage=storage, study_name="shared")
    doomed = SPAWN.Process(
        target=_worker,
        args=(postgres_url, 3),
        kwargs={"host": "machine-a", "hang": True, "heartbeat": 1},
    )
    doomed.start()
    deadline = time.monotonic() + 300
    while not any(t.user_attrs.get("started") for t in study.trials):
        assert time.monotonic() < deadline and doomed.is_alive()
        time.sleep(0.2)
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.join()

    run_search(study, _objective, n_trials=3)  # another worker, on "another machine"
    trials = study.trials
    states = [t.state for t in trials]
    assert states.count(TrialState.COMPLETE) == 3 and TrialState.RUNNING not in states
    (stale,) = [t for t in trials if t.state == TrialState.FAIL]
    assert stale.user_attrs["fail_reason"].startswith("stale: no heartbeat from worker machine-a")
    (retry,) = [t for t in trials if t.user_attrs.get(RETRY_ATTR) == [stale.number]]
    assert retry.state == TrialState.COMPLETE and retry.params == stale.params


def test_the_command_line_runs_on_postgresql(postgres_url, tmp_path, monkeypatch, capsys):
    from optuna_nachos.cli import main

    monkeypatch.chdir(tmp_path)
    search = [
        "search",
        "--dataset",
        "digits",
        "--sampler",
        "random",
        "--max-avg-macs",
        "1.2M",
        "--min-accuracy",
        "0",
        "--n-trials",
        "2",
        "--no-progress",
        "--storage",
        postgres_url,
    ]
    assert main(search) == 0
    assert "2 finished trials" in capsys.readouterr().out
    assert main(["best", "--storage", postgres_url, "--json"]) == 0
    study = optuna.load_study(study_name="nachos", storage=open_storage(postgres_url))
    assert study.user_attrs["nachos_artifacts"] == str(tmp_path / "nachos_artifacts")


@pytest.mark.parametrize("scheme", ["postgresql", "postgresql+psycopg"])
def test_open_storage_accepts_the_driver_spellings(postgres_url, scheme):
    url = postgres_url.replace("postgresql://", f"{scheme}://")
    storage = open_storage(url)
    assert isinstance(storage, optuna.storages.RDBStorage)
    assert StudyLock(storage, "x").exclusive
