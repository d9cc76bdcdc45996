"""Running the search so that several workers together finish exactly the requested trials."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from optuna_nachos._logging import get_logger
from optuna_nachos.study._storage import file_lock

_logger = get_logger()

# Enqueued (WAITING) trials are not counted: they are still to run, and the next ask takes them.
_COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)


def _counted_trials(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=_COUNTED))


MAX_FAILURE_STREAK = 10
"""A worker stops after this many failed trials in a row (something is wrong beyond one
candidate: the data, the device, the settings)."""


class _Progress:
    """Follows one worker's trials: the total reached, and the streak of failures."""

    def __init__(self, n_trials: int) -> None:
        self.n_trials = n_trials
        self.failure_streak = 0
        self.ran = 0

    def record(self, trial: optuna.trial.FrozenTrial) -> None:
        self.ran += 1
        self.failure_streak = self.failure_streak + 1 if trial.state == TrialState.FAIL else 0
        if self.failure_streak == MAX_FAILURE_STREAK:
            _logger.warning(
                "Stopping: the last %d trials failed (see their 'fail_reason' user attribute).",
                MAX_FAILURE_STREAK,
            )

    def done(self, study: optuna.Study) -> bool:
        return self.failure_streak >= MAX_FAILURE_STREAK or _counted_trials(study) >= self.n_trials

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.record(trial)
        if self.done(study):
            study.stop()


def run_search(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], Sequence[float]],
    *,
    n_trials: int,
    timeout: float | None = None,
    lock_path: Path | None = None,
    show_progress_bar: bool = False,
    callbacks: Sequence[Callable[[optuna.Study, FrozenTrial], None]] | None = None,
) -> int:
    """Run trials until the study holds ``n_trials`` finished or running trials.

    ``n_trials`` is a total for the study, not for this call, and failed trials do not count,
    so running the search again resumes an interrupted study and retries failed slots.
    Enqueued trials that have not started do not count either: they run first, as part of
    the total.
    Workers on one machine that share a SQLite or journal file pass the same ``lock_path``:
    each starts a trial under the lock, so together they finish exactly ``n_trials``. Without
    a lock (a database server shared by several machines) the trials run through
    ``study.optimize``, whose heartbeat lets the storage retry the trial of a worker that died;
    then each worker checks the total when a trial ends, and the study may end with up to one
    extra trial per worker.

    Args:
        study: The study.
        objective: Returns the objective values of a trial.
        n_trials: Total number of trials the study should hold.
        timeout: Stop starting new trials after this many seconds.
        lock_path: A lock file shared by the workers of one machine.
        show_progress_bar: Show a progress bar of this worker's trials.
        callbacks: Called with the study and the frozen trial after each trial this worker
            finishes, as :meth:`optuna.study.Study.optimize` calls its callbacks (for example
            :class:`optuna_nachos.dashboard.DashboardCallback`); outside the lock.

    Returns:
        The number of trials this call ran.
    """
    if n_trials < 1:
        raise ValueError(f"n_trials must be at least 1, got {n_trials}.")
    remaining = n_trials - _counted_trials(study)
    if remaining <= 0:
        return 0
    progress = _Progress(n_trials)
    if lock_path is None:
        started = time.monotonic()
        while not progress.done(study):
            left = None if timeout is None else timeout - (time.monotonic() - started)
            if left is not None and left <= 0:
                break
            study.optimize(
                objective,
                n_trials=n_trials - _counted_trials(study),
                timeout=left,
                callbacks=[progress, *(callbacks or ())],
                show_progress_bar=show_progress_bar,
            )
        return progress.ran
    return _run_locked(
        study, objective, progress, timeout, lock_path, show_progress_bar, callbacks or ()
    )


def _run_locked(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], Sequence[float]],
    progress: _Progress,
    timeout: float | None,
    lock_path: Path,
    show_progress_bar: bool,
    callbacks: Sequence[Callable[[optuna.Study, FrozenTrial], None]] = (),
) -> int:
    started = time.monotonic()
    bar = None
    if show_progress_bar:
        from tqdm.auto import tqdm

        bar = tqdm(total=max(0, progress.n_trials - _counted_trials(study)), unit="trial")
    try:
        while timeout is None or time.monotonic() - started < timeout:
            with file_lock(lock_path):
                if progress.done(study):
                    break
                trial = study.ask()
            try:
                values = objective(trial)
            except Exception:
                study.tell(trial, state=TrialState.FAIL)
                raise
            frozen = study.tell(trial, values)
            progress.record(frozen)
            if frozen.state == TrialState.COMPLETE:
                _logger.info("Trial %d finished with values %s.", frozen.number, frozen.values)
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(f"trial {frozen.number}: {frozen.state.name.lower()}")
            for callback in callbacks:
                callback(study, frozen)
    finally:
        if bar is not None:
            bar.close()
    return progress.ran
