"""Running the search so that several workers together finish exactly the requested trials."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from optuna_nachos._logging import get_logger
from optuna_nachos.record import FAIL_REASON_ATTR, WORKER_ATTR
from optuna_nachos.study._create import VERSION_KEY, settings_version
from optuna_nachos.study._storage import StudyLock, storage_outage
from optuna_nachos.study._workers import (
    STORAGE_LOST,
    fail_stale_trials,
    heartbeat,
    live_running,
    worker_record,
)

_logger = get_logger(__name__)

_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def finished_trials(study: optuna.Study) -> int:
    """The trials that count toward ``n_trials``: COMPLETE and PRUNED (not FAIL, not RUNNING)."""
    return len(study.get_trials(deepcopy=False, states=_FINISHED))


MAX_FAILURE_STREAK = 10
"""A worker stops after this many failed trials in a row (something is wrong beyond one
candidate: the data, the device, the settings)."""

POLL_SECONDS = 1.0
"""How often a worker that waits for the other workers' trials looks at the study again."""

INTERRUPTED = "interrupted (KeyboardInterrupt)"


class _Progress:
    """Follows one worker's trials: the total reached, and the streak of failures."""

    def __init__(self, n_trials: int) -> None:
        self.n_trials = n_trials
        self.failure_streak = 0
        self.ran = 0

    def record(self, trial: FrozenTrial) -> None:
        self.ran += 1
        self.failure_streak = self.failure_streak + 1 if trial.state == TrialState.FAIL else 0
        if self.failure_streak == MAX_FAILURE_STREAK:
            _logger.warning(
                "Stopping: the last %d trials failed (see their 'fail_reason' user attribute).",
                MAX_FAILURE_STREAK,
            )

    @property
    def failing(self) -> bool:
        return self.failure_streak >= MAX_FAILURE_STREAK


def run_search(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], Sequence[float]],
    *,
    n_trials: int,
    timeout: float | None = None,
    lock_path: Path | None = None,
    show_progress_bar: bool = False,
    callbacks: Sequence[Callable[[optuna.Study, FrozenTrial], None]] | None = None,
    max_retry: int = 2,
) -> int:
    """Run trials until the study holds ``n_trials`` finished trials.

    ``n_trials`` is a total for the study, not for this call: finished means COMPLETE or
    PRUNED, so running the search again resumes an interrupted study and retries failed
    slots. Enqueued trials run first, as part of the total.

    Several workers (processes, machines) may run the same search on one storage. Each starts
    a trial under the study's lock (:class:`~optuna_nachos.study.StudyLock`: a lock file
    beside a SQLite or journal file, an advisory lock on PostgreSQL) and records itself on
    the trial (host, process), so together they finish exactly ``n_trials``: a worker that
    sees the total reached by the trials still running elsewhere waits for them, and a RUNNING
    trial whose worker is gone (checked by its process on this host, by the heartbeat on a
    database server) is marked FAIL and enqueued again (up to ``max_retry`` times). On a
    database server other than PostgreSQL there is no lock, and the study may end with up to
    one extra trial per worker.

    A ``KeyboardInterrupt`` (Ctrl-C) or an exception of the objective marks the running trial
    FAIL, with the reason in its ``fail_reason`` user attribute, and propagates.

    Args:
        study: The study.
        objective: Returns the objective values of a trial.
        n_trials: Total number of finished trials the study should hold.
        timeout: Stop starting new trials (and waiting for other workers) after this many
            seconds.
        lock_path: A lock file shared by the workers (by default the storage's own lock).
        show_progress_bar: Show a progress bar of this worker's trials.
        callbacks: Called with the study and the frozen trial after each trial this worker
            finishes, as :meth:`optuna.study.Study.optimize` calls its callbacks (for example
            :class:`optuna_nachos.dashboard.DashboardCallback`); outside the lock.
        max_retry: How many times the configuration of a stale trial is enqueued again.

    Returns:
        The number of trials this call ran.

    Raises:
        ValueError: If ``n_trials`` is below 1 or ``timeout`` is negative or not finite.
    """
    if n_trials < 1:
        raise ValueError(f"n_trials must be at least 1, got {n_trials}.")
    if timeout is not None and not 0 <= timeout < math.inf:
        raise ValueError(f"timeout must be a finite number of seconds >= 0, got {timeout}.")
    lock = StudyLock(study._storage, study.study_name, lock_path=lock_path)
    version = settings_version(study)
    progress = _Progress(n_trials)
    started = time.monotonic()
    bar = None
    if show_progress_bar:
        from tqdm.auto import tqdm

        bar = tqdm(total=max(0, n_trials - finished_trials(study)), unit="trial")
    try:
        while timeout is None or time.monotonic() - started < timeout:
            with lock():
                fail_stale_trials(study, max_retry=max_retry)
                # One snapshot for both counts: a trial that finishes between two reads
                # (workers tell outside the lock) would be counted in neither.
                trials = study.get_trials(deepcopy=False)
                finished = sum(t.state in _FINISHED for t in trials)
                if finished >= n_trials or progress.failing:
                    break
                if finished + len(live_running(trials)) >= n_trials:
                    trial = None  # the others' running trials reach the total: wait for them
                else:
                    with warnings.catch_warnings():
                        # Optuna warns that a heartbeat storage is meant for optimize(); here
                        # the heartbeat is recorded by this loop.
                        warnings.simplefilter("ignore", UserWarning)
                        trial = study.ask()
                    study._storage.set_trial_user_attr(
                        trial._trial_id, WORKER_ATTR, worker_record()
                    )
                    if version > 1:
                        trial.set_user_attr(VERSION_KEY, version)
            if trial is None:
                time.sleep(POLL_SECONDS)
                continue
            if bar is not None:
                bar.set_postfix_str(f"trial {trial.number}: running", refresh=True)
            frozen = _run_trial(study, trial, objective)
            progress.record(frozen)
            if frozen.state == TrialState.COMPLETE:
                _logger.info("Trial %d finished with values %s.", frozen.number, frozen.values)
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(_outcome(study, frozen))
            for callback in callbacks or ():
                callback(study, frozen)
    finally:
        if bar is not None:
            bar.close()
    return progress.ran


def _outcome(study: optuna.Study, trial: FrozenTrial) -> str:
    """A finished trial in a few words: its state and values, e.g. ``trial 3: complete,
    accuracy 0.9417, avg_macs 1.204e+06``."""
    words = f"trial {trial.number}: {trial.state.name.lower()}"
    if trial.values is None:
        return words
    names = study.metric_names or [f"value {i}" for i in range(len(trial.values))]
    return ", ".join([words, *(f"{name} {value:.4g}" for name, value in zip(names, trial.values))])


def _run_trial(
    study: optuna.Study,
    trial: optuna.Trial,
    objective: Callable[[optuna.Trial], Sequence[float]],
) -> FrozenTrial:
    try:
        with heartbeat(study._storage, trial._trial_id):
            values = objective(trial)
    except KeyboardInterrupt:
        _fail(study, trial, INTERRUPTED)
        raise
    except Exception as error:
        reason = f"{type(error).__name__}: {error}"
        if storage_outage(error) is not None:
            # Enqueued again by the next worker that starts (fail_stale_trials).
            reason = f"{STORAGE_LOST} ({reason})"
        _fail(study, trial, reason)
        raise
    return study.tell(trial, values)


def _fail(study: optuna.Study, trial: optuna.Trial, reason: str) -> None:
    if FAIL_REASON_ATTR not in trial.user_attrs:
        trial.set_user_attr(FAIL_REASON_ATTR, reason)
    study.tell(trial, state=TrialState.FAIL)
