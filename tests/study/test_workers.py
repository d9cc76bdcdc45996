"""Stale trials, worker records, heartbeats and worker seeds."""

import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState

from optuna_nachos.space import suggest_eenn
from optuna_nachos.study import (
    create_study,
    derive_seed,
    finished_trials,
    open_storage,
    register_worker,
    run_search,
    storage_lock_path,
)
from optuna_nachos.study._search import INTERRUPTED
from optuna_nachos.study._workers import (
    RETRY_ATTR,
    WORKER_ATTR,
    is_alive,
    worker_record,
)


def _cheap_objective(trial: optuna.Trial) -> tuple[float, float]:
    config = suggest_eenn(trial)
    return sum(config.depths) / 20.0, float(len(config.exit_stages))


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _left_running(study: optuna.Study, record: dict) -> optuna.trial.FrozenTrial:
    """A trial left RUNNING by a worker, as a killed search leaves it."""
    trial = study.ask()
    suggest_eenn(trial)
    trial.set_user_attr(WORKER_ATTR, record)
    return study.trials[-1]


def test_worker_record_and_liveness():
    record = worker_record()
    assert is_alive(record) is True
    assert is_alive({**record, "pid": _dead_pid()}) is False
    assert is_alive({**record, "start": "1"}) is False  # the id reused by another process
    assert is_alive({**record, "host": "another-machine"}) is None
    assert is_alive(None) is None


@pytest.mark.parametrize("scheme", ["sqlite", "journal"])
def test_a_killed_workers_trial_is_failed_and_retried(tmp_path, scheme):
    url = f"{scheme}:///{tmp_path / ('s.db' if scheme == 'sqlite' else 's.log')}"
    study = create_study(storage=open_storage(url), study_name="s")
    run_search(study, _cheap_objective, n_trials=2, lock_path=storage_lock_path(url))
    stale = _left_running(study, {**worker_record(), "pid": _dead_pid()})

    # The rerun of the same search: the dead worker's trial must not count, nor stay RUNNING.
    ran = run_search(study, _cheap_objective, n_trials=3, lock_path=storage_lock_path(url))
    assert ran == 1
    trials = study.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2 + [
        TrialState.FAIL,
        TrialState.COMPLETE,
    ]
    assert trials[2].user_attrs["fail_reason"].startswith("stale: worker process")
    assert trials[3].params == stale.params  # the same configuration, retried
    assert trials[3].user_attrs[RETRY_ATTR] == [stale.number]
    assert finished_trials(study) == 3


def test_a_trial_of_another_host_is_waited_for_not_failed(tmp_path):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    study = create_study(storage=url, study_name="h")
    _left_running(study, {"host": "another-machine", "pid": 1, "start": None})
    # This worker runs one trial; with the other host's running one that makes the total,
    # so it waits for that one (until the timeout here) instead of starting a third.
    started = time.monotonic()
    assert run_search(study, _cheap_objective, n_trials=2, timeout=1.5) == 1
    assert time.monotonic() - started >= 1.5
    assert [t.state for t in study.trials] == [TrialState.RUNNING, TrialState.COMPLETE]


def test_retries_stop_after_max_retry(tmp_path):
    study = create_study(storage=f"sqlite:///{tmp_path / 'm.db'}", study_name="m")
    dead = {**worker_record(), "pid": _dead_pid()}
    trial = study.ask()
    suggest_eenn(trial)
    trial.set_user_attr(WORKER_ATTR, dead)
    trial.set_user_attr(RETRY_ATTR, [7, 8])  # already retried twice
    run_search(study, _cheap_objective, n_trials=1, max_retry=2)
    assert study.trials[0].state == TrialState.FAIL
    assert RETRY_ATTR not in study.trials[1].user_attrs  # a new configuration, not a retry


def test_interrupt_fails_the_trial_and_propagates(tmp_path):
    study = create_study(storage=f"sqlite:///{tmp_path / 'i.db'}", study_name="i")

    def interrupted(trial):
        suggest_eenn(trial)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_search(study, interrupted, n_trials=2)
    (trial,) = study.trials
    assert trial.state == TrialState.FAIL
    assert trial.user_attrs["fail_reason"] == INTERRUPTED


@pytest.mark.parametrize("timeout", [-5.0, float("inf"), float("nan")])
def test_invalid_timeout(timeout):
    study = create_study(storage=None, study_name=None)
    with pytest.raises(ValueError, match="timeout must be"):
        run_search(study, _cheap_objective, n_trials=1, timeout=timeout)


def test_worker_seeds_differ_per_worker_and_resume(tmp_path):
    study = create_study(storage=f"sqlite:///{tmp_path / 'w.db'}", study_name="w")
    assert register_worker(study) == (0, 0)
    assert register_worker(study) == (1, 0)
    assert derive_seed(5, 0, 0) == 5  # a single new run keeps its seed
    seeds = {derive_seed(5, worker, n) for worker in range(4) for n in (0, 3)}
    assert len(seeds) == 8
    assert derive_seed(5, 1, 3) == derive_seed(5, 1, 3)


def test_retry_stale_trial_callback_enqueues_the_configuration(tmp_path):
    from optuna_nachos.study import RetryStaleTrial

    study = create_study(storage=f"sqlite:///{tmp_path / 'c.db'}", study_name="c")
    trial = study.ask()
    suggest_eenn(trial)
    trial.set_user_attr(WORKER_ATTR, {"host": "machine-b", "pid": 42, "start": None})
    study.tell(trial, state=TrialState.FAIL)  # as the storage's heartbeat check leaves it
    RetryStaleTrial(max_retry=1)(study, study.trials[0])
    waiting = study.trials[1]
    assert waiting.state == TrialState.WAITING
    assert waiting.user_attrs[RETRY_ATTR] == [0]
    assert waiting.user_attrs["nachos_retry_reason"].startswith(
        "stale: no heartbeat from worker machine-b:42"
    )
    assert waiting.system_attrs["fixed_params"] == study.trials[0].params
