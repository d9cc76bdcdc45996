"""run_search(callbacks=...): what search --dashboard relies on, with and without the lock."""

import optuna
import pytest

from optuna_nachos.study import create_study, run_search


def _objective(trial: optuna.Trial) -> tuple[float, float]:
    x = trial.suggest_float("x", 0.0, 1.0)
    trial.set_constraint("max_avg_macs", x - 0.5)
    return x, 1e6 * x


@pytest.mark.parametrize("locked", [False, True])
def test_callbacks_run_once_per_finished_trial(tmp_path, locked):
    study = create_study(
        storage=f"sqlite:///{tmp_path / 's.db'}",
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    seen = []
    ran = run_search(
        study,
        _objective,
        n_trials=3,
        lock_path=tmp_path / "s.lock" if locked else None,
        callbacks=[lambda s, t: seen.append((s.study_name, t.number, t.state))],
    )
    assert ran == 3
    assert seen == [("nachos", n, optuna.trial.TrialState.COMPLETE) for n in range(3)]
