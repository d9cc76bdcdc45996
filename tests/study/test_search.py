import multiprocessing
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from optuna_nachos.space import suggest_eenn
from optuna_nachos.study import create_study, open_storage, run_search, storage_lock_path


def _cheap_objective(trial: optuna.Trial) -> tuple[float, float]:
    config = suggest_eenn(trial)
    return sum(config.depths) / 20.0, float(len(config.exit_stages))


def _worker(url: str, n_trials: int) -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = create_study(
        storage=open_storage(url),
        study_name="shared",
        sampler=optuna.samplers.RandomSampler(),
    )
    run_search(study, _cheap_objective, n_trials=n_trials, lock_path=storage_lock_path(url))


@pytest.mark.parametrize("scheme", ["journal", "sqlite"])
def test_two_processes_finish_exactly_the_requested_trials(tmp_path, scheme):
    name = "s.log" if scheme == "journal" else "s.db"
    url = f"{scheme}:///{tmp_path / name}"
    create_study(storage=open_storage(url), study_name="shared")  # create before the race
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_worker, args=(url, 13)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=600)
        assert worker.exitcode == 0
    study = optuna.load_study(study_name="shared", storage=open_storage(url))
    assert len(study.trials) == 13
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert sorted(t.number for t in study.trials) == list(range(13))


def test_run_search_resumes_to_the_total(tmp_path):
    study = create_study(storage=f"sqlite:///{tmp_path / 'r.db'}", study_name="r")
    assert run_search(study, _cheap_objective, n_trials=3) == 3
    assert run_search(study, _cheap_objective, n_trials=5) == 2
    assert run_search(study, _cheap_objective, n_trials=5) == 0
    assert len(study.trials) == 5


@pytest.mark.parametrize("locked", [False, True])
def test_enqueued_trials_run_as_part_of_the_total(tmp_path, locked):
    url = f"sqlite:///{tmp_path / 'q.db'}"
    study = create_study(storage=url, study_name="q")
    study.enqueue_trial({"stage1_depth": 4})
    study.enqueue_trial({"stage1_depth": 4, "stage2_depth": 2})
    lock = storage_lock_path(url) if locked else None
    assert run_search(study, _cheap_objective, n_trials=2, lock_path=lock) == 2
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    assert [t.params["stage1_depth"] for t in study.trials] == [4, 4]
    assert study.trials[1].params["stage2_depth"] == 2
    study.enqueue_trial({"stage1_depth": 3})
    assert run_search(study, _cheap_objective, n_trials=2, lock_path=lock) == 0
    assert study.trials[-1].state == TrialState.WAITING


def test_failed_trials_do_not_count(tmp_path):
    calls = []

    def flaky(trial):
        calls.append(trial.number)
        if trial.number == 1:
            return float("nan"), float("nan")  # Optuna records NaN values as a failure
        return _cheap_objective(trial)

    study = create_study(storage=None, study_name=None)
    run_search(study, flaky, n_trials=3)
    states = [t.state for t in study.trials]
    assert states.count(TrialState.COMPLETE) == 3
    assert states.count(TrialState.FAIL) == 1


def test_exceptions_fail_the_trial_and_propagate():
    study = create_study(storage=None, study_name=None)

    def broken(trial):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        run_search(study, broken, n_trials=2)
    assert study.trials[0].state == TrialState.FAIL


def test_a_trial_that_lost_the_storage_is_run_again_by_the_next_worker(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = create_study(storage=open_storage(url), study_name="outage")
    lost = []

    def outage_once(trial):
        config = suggest_eenn(trial)
        if not lost:
            lost.append(dict(trial.params))
            raise optuna.exceptions.StorageInternalError("the database went away")
        return sum(config.depths) / 20.0, float(len(config.exit_stages))

    with pytest.raises(optuna.exceptions.StorageInternalError):
        run_search(study, outage_once, n_trials=3, lock_path=storage_lock_path(url))
    failed = study.trials[0]
    assert failed.state == TrialState.FAIL
    assert failed.user_attrs["fail_reason"].startswith("storage lost (StorageInternalError")
    # The next worker (a restart of the command) runs the same configuration again first.
    run_search(study, outage_once, n_trials=3, lock_path=storage_lock_path(url))
    retried = study.trials[1]
    assert retried.params == lost[0] and retried.state == TrialState.COMPLETE
    assert retried.user_attrs["nachos_retry_of"] == [0]
    states = [t.state for t in study.trials]
    assert states.count(TrialState.COMPLETE) == 3 and len(states) == 4
    # Once only: a later start finds it retried already.
    run_search(study, outage_once, n_trials=3, lock_path=storage_lock_path(url))
    assert len(study.trials) == 4


def test_other_exceptions_are_not_retried(tmp_path):
    study = create_study(storage=None, study_name=None)

    def broken(trial):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        run_search(study, broken, n_trials=1)
    with pytest.raises(RuntimeError, match="boom"):
        run_search(study, broken, n_trials=1)
    assert all("nachos_retry_of" not in t.user_attrs for t in study.trials)
    assert study.trials[0].user_attrs["fail_reason"] == "RuntimeError: boom"


def test_storage_urls(tmp_path):
    assert storage_lock_path("sqlite:///a.db") == Path("a.db.nachos-lock")
    assert storage_lock_path("journal:///x/j.log") == Path("x/j.log.nachos-lock")
    assert storage_lock_path("postgresql://u@h/db") is None
    with pytest.raises(ValueError, match="cannot open storage"):
        open_storage(f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}")
    assert isinstance(
        open_storage(f"journal:///{tmp_path / 'j.log'}"), optuna.storages.JournalStorage
    )


@pytest.mark.parametrize("locked", [False, True])
def test_a_streak_of_failures_stops_the_worker(tmp_path, locked):
    from optuna_nachos.study._search import MAX_FAILURE_STREAK

    study = create_study(storage=f"sqlite:///{tmp_path / 'f.db'}", study_name="f")
    lock = tmp_path / "f.lock" if locked else None
    ran = run_search(study, lambda t: (float("nan"), float("nan")), n_trials=3, lock_path=lock)
    assert ran == MAX_FAILURE_STREAK
    assert all(t.state == TrialState.FAIL for t in study.trials)


def test_open_storage_errors_are_one_line_without_warnings(tmp_path):
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for url in ("postgresql://nobody@127.0.0.1:1/nachos", "foo://somewhere/x"):
            with pytest.raises(ValueError, match="cannot open storage") as error:
                open_storage(url)
            assert "\n" not in str(error.value)
    assert [str(w.message) for w in caught] == []
    with pytest.raises(FileNotFoundError, match="no storage file"):
        open_storage(f"sqlite:///{tmp_path / 'typo.db'}", must_exist=True)
    assert not (tmp_path / "typo.db").exists()


def test_server_storages_use_the_products_retry_callback(monkeypatch):
    from optuna_nachos.study import RetryStaleTrial

    seen = {}

    class Recorder:
        def __init__(self, url, **options):
            seen.update(options)

    monkeypatch.setattr(optuna.storages, "RDBStorage", Recorder)
    open_storage("mysql://u@h/db", heartbeat_interval=5)
    assert isinstance(seen["heartbeat_stale_trial_callback"], RetryStaleTrial)
    assert (seen["heartbeat_interval"], seen["grace_period"]) == (5, 15)


def _open_together(url: str, barrier) -> None:
    barrier.wait()
    create_study(storage=open_storage(url), study_name="together")


def test_workers_open_a_new_sqlite_file_together(tmp_path):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(3)
    workers = [context.Process(target=_open_together, args=(url, barrier)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=600)
    assert [worker.exitcode for worker in workers] == [0, 0, 0]
