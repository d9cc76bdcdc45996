"""Running the search so that several workers together finish exactly the requested trials."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import optuna
from optuna.trial import TrialState

from optuna_nachos._logging import get_logger
from optuna_nachos.study._storage import file_lock

_logger = get_logger()

_COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)


def _counted_trials(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=_COUNTED))


def run_search(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], Sequence[float]],
    *,
    n_trials: int,
    timeout: float | None = None,
    lock_path: Path | None = None,
    show_progress_bar: bool = False,
) -> int:
    """Run trials until the study holds ``n_trials`` finished or running trials.

    ``n_trials`` is a total for the study, not for this call: several workers (processes on
    one machine sharing a SQLite or journal file, given the same ``lock_path``) together finish
    exactly that many, and running the search again resumes an interrupted study. Failed
    trials do not count, so their slots are retried.

    Args:
        study: The study.
        objective: Returns the objective values of a trial.
        n_trials: Total number of trials the study should hold.
        timeout: Stop starting new trials after this many seconds.
        lock_path: A lock file shared by the workers of one machine (``None``: no lock; then
            concurrent workers on a server storage may overshoot by at most one trial each).
        show_progress_bar: Show a progress bar of this worker's trials.

    Returns:
        The number of trials this call ran.
    """
    if n_trials < 1:
        raise ValueError(f"n_trials must be at least 1, got {n_trials}.")
    started = time.monotonic()
    ran = 0
    bar = None
    if show_progress_bar:
        from tqdm.auto import tqdm

        bar = tqdm(total=max(0, n_trials - _counted_trials(study)), unit="trial")
    try:
        while timeout is None or time.monotonic() - started < timeout:
            with file_lock(lock_path):
                if _counted_trials(study) >= n_trials:
                    break
                trial = study.ask()
            try:
                values = objective(trial)
            except Exception:
                study.tell(trial, state=TrialState.FAIL)
                raise
            frozen = study.tell(trial, values)
            ran += 1
            if frozen.state == TrialState.COMPLETE:
                _logger.info("Trial %d finished with values %s.", frozen.number, frozen.values)
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(f"trial {frozen.number}: {frozen.state.name.lower()}")
    finally:
        if bar is not None:
            bar.close()
    return ran
