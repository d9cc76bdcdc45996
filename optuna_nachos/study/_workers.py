"""The workers of a study: who runs which trial, stale trials, heartbeats and worker seeds.

A trial started by :func:`~optuna_nachos.study.run_search` carries the record of its worker
(host, process id, process start time). A RUNNING trial whose worker process is gone (killed,
crashed, the machine rebooted) is stale: it is marked FAIL with the reason in its
``fail_reason`` user attribute and enqueued again, so the study still reaches its total.
Processes on the same host are checked directly; on a database server the heartbeat finds
the stale trials of workers on other machines.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from optuna_nachos._logging import get_logger
from optuna_nachos.record import (
    FAIL_REASON_ATTR,
    RETRY_ATTR,
    RETRY_REASON_ATTR,
    WORKER_ATTR,
    WORKERS_ATTR,
)
from optuna_nachos.study._storage import heartbeat_interval, rdb_storage

_logger = get_logger(__name__)

STORAGE_LOST = "storage lost"
"""How the ``fail_reason`` of a trial that lost its storage begins: its worker could not go
on, and the next worker that starts enqueues its parameters again."""


def _process_start(pid: int) -> str | None:
    """The start time of a process in clock ticks since boot (Linux), or ``None``."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[19] if len(fields) > 19 else None


def _process_state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def worker_record() -> dict[str, Any]:
    """The record of this process: host name, process id and process start time."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "start": _process_start(pid)}


def is_alive(record: Any) -> bool | None:
    """Whether the worker of a record still runs: ``None`` when this host cannot tell
    (another host, or no record)."""
    if not isinstance(record, dict) or record.get("host") != socket.gethostname():
        return None
    pid = record.get("pid")
    if not isinstance(pid, int):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if _process_state(pid) in ("Z", "X"):
        return False  # killed, waiting for its parent to collect it
    start = _process_start(pid)
    # The same id with another start time is a new process that reused the id.
    return not (start is not None and record.get("start") not in (None, start))


def retry_trial(
    study: optuna.Study, trial: FrozenTrial, *, max_retry: int = 2, reason: str | None = None
) -> int | None:
    """Enqueue a stale trial's parameters again, up to ``max_retry`` times per configuration.

    Returns:
        The number of the trial it replaces, or ``None`` when no retry is left.
    """
    history = list(trial.user_attrs.get(RETRY_ATTR, [])) + [trial.number]
    if len(history) > max_retry:
        _logger.warning(
            "Trial %d is stale and was already retried %d times; not retrying it again.",
            trial.number,
            max_retry,
        )
        return None
    user_attrs: dict[str, Any] = {RETRY_ATTR: history}
    if reason is not None:
        user_attrs[RETRY_REASON_ATTR] = reason
    study.enqueue_trial(trial.params, user_attrs=user_attrs, skip_if_exists=False)
    return trial.number


def _heartbeat_reason(trial: FrozenTrial) -> str:
    worker = trial.user_attrs.get(WORKER_ATTR) or {}
    return (
        f"stale: no heartbeat from worker {worker.get('host', '?')}:{worker.get('pid', '?')}"
        " (killed or disconnected)"
    )


class RetryStaleTrial:
    """Heartbeat callback of a database storage: retry the trial of a dead worker.

    Replaces Optuna's ``RetryFailedTrialCallback`` (deprecated in Optuna 4.9, removed in 6).
    Optuna calls it for a stale trial it has already marked FAIL (in ``study.optimize``); the
    trial's parameters are enqueued again for the next free worker, the reason in the new
    trial's ``nachos_retry_reason`` user attribute. :func:`run_search` finds stale trials
    itself first, and records the reason on the failed trial too.

    Args:
        max_retry: How many times one configuration is retried.
    """

    def __init__(self, *, max_retry: int = 2) -> None:
        self.max_retry = max_retry

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        reason = _heartbeat_reason(trial)
        _logger.warning("Trial %d marked FAIL: %s.", trial.number, reason)
        retry_trial(study, trial, max_retry=self.max_retry, reason=reason)


def _fail(study: optuna.Study, trial: FrozenTrial, reason: str, max_retry: int) -> bool:
    storage = study._storage
    try:
        storage.set_trial_user_attr(trial._trial_id, FAIL_REASON_ATTR, reason)
        if not storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
            return False
    except (RuntimeError, optuna.exceptions.UpdateFinishedTrialError):
        return False  # it finished, or another worker failed it first
    _logger.warning("Trial %d marked FAIL: %s.", trial.number, reason)
    retry_trial(study, trial, max_retry=max_retry, reason=reason)
    return True


def fail_stale_trials(study: optuna.Study, *, max_retry: int = 2) -> list[int]:
    """Mark FAIL the RUNNING trials whose worker is gone, and enqueue them again.

    Workers on this host are checked by their process; on a storage with a heartbeat, trials
    whose heartbeat stopped for the grace period are stale too, wherever their worker ran.
    The reason goes to the failed trial's ``fail_reason`` user attribute. Trials failed because
    their worker lost the storage (a database restart) are enqueued again too, once each.

    Returns:
        The numbers of the trials marked FAIL.
    """
    failed = []
    backend = rdb_storage(study._storage)
    if heartbeat_interval(study._storage) and backend is not None:
        stale_ids = set(backend._get_stale_trial_ids(study._study_id))
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if trial._trial_id in stale_ids and _fail(
                study, trial, _heartbeat_reason(trial), max_retry
            ):
                failed.append(trial.number)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        record = trial.user_attrs.get(WORKER_ATTR)
        if is_alive(record) is not False:
            continue
        reason = f"stale: worker process {record['pid']} on {record['host']} is gone"
        if _fail(study, trial, reason, max_retry):
            failed.append(trial.number)
    _retry_storage_losses(study, max_retry=max_retry)
    return failed


def _retry_storage_losses(study: optuna.Study, *, max_retry: int) -> None:
    """Enqueue again the trials failed because their worker lost the storage, once each."""
    trials = study.get_trials(deepcopy=False)
    retried = {number for trial in trials for number in trial.user_attrs.get(RETRY_ATTR, [])}
    for trial in trials:
        reason = str(trial.user_attrs.get(FAIL_REASON_ATTR, ""))
        if (
            trial.state == TrialState.FAIL
            and reason.startswith(STORAGE_LOST)
            and trial.number not in retried
        ):
            _logger.warning("Trial %d failed when its worker lost the storage.", trial.number)
            retry_trial(study, trial, max_retry=max_retry, reason=reason)


def live_running(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """The RUNNING trials among ``trials`` that a live worker runs (or that this host cannot
    check: a worker on another machine)."""
    running = [trial for trial in trials if trial.state == TrialState.RUNNING]
    return [
        trial
        for trial in running
        if WORKER_ATTR in trial.user_attrs and is_alive(trial.user_attrs[WORKER_ATTR]) is not False
    ]


@contextlib.contextmanager
def heartbeat(storage: BaseStorage, trial_id: int) -> Iterator[None]:
    """Record the trial's heartbeat every interval while the block runs (database servers)."""
    interval = heartbeat_interval(storage)
    backend = rdb_storage(storage)
    if not interval or backend is None:
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        while True:
            try:
                backend.record_heartbeat(trial_id)
            except Exception as error:  # a lost connection must not kill the trial
                _logger.warning("Heartbeat of trial %d not recorded: %s", trial_id, error)
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, name=f"nachos-heartbeat-{trial_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def derive_seed(seed: int, worker: int, n_trials: int) -> int:
    """A sampler seed for one worker at one point of the study.

    The first worker of a new study keeps ``seed`` itself (a single run reproduces the
    seed's trials); every other worker, and every resumed run, gets a seed derived from
    ``seed``, its worker number and the study's trial count, so that no two workers draw
    the same candidates.
    """
    if worker == 0 and n_trials == 0:
        return int(seed)
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(worker), int(n_trials)])
    return int(state.generate_state(1)[0] & 0x7FFFFFFF)


def register_worker(study: optuna.Study) -> tuple[int, int]:
    """Count this worker on the study; call it under the study's lock.

    Returns:
        The worker number (0 for the first worker ever started on the study) and the
        study's trial count when it started.
    """
    worker = int(study.user_attrs.get(WORKERS_ATTR, 0))
    study.set_user_attr(WORKERS_ATTR, worker + 1)
    return worker, len(study.get_trials(deepcopy=False))
