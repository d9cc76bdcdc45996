"""End-to-end tests of the packaged objective on the bundled digits data (small and fast)."""

import math

import optuna
import pytest
import torch
from optuna.trial import TrialState

import optuna_nachos as nachos
from optuna_nachos.objective import _objective
from optuna_nachos.record import CONSTRAINT_NAMES
from optuna_nachos.train import TrainingDivergedError

from .conftest import BUDGET, RESOLUTION, objective_for

FLOOR = 0.2


def _expensive_first_exit(space):
    """A configuration whose only early exit (after stage 4) costs more than BUDGET."""
    return nachos.EENNConfig(
        depths=(2,) * 5,
        kernel_sizes=((7, 7),) * 5,
        expand_ratios=((4, 4),) * 5,
        exit_stages=(4,),
        resolution=RESOLUTION,
    )


@pytest.mark.slow
@pytest.mark.parametrize("sampler_name", ["motpe", "nsga2"])
def test_search_end_to_end_on_sqlite(tmp_path, digits, space, sampler_name):
    store_dir = tmp_path / "artifacts"
    store_dir.mkdir()
    store = optuna.artifacts.FileSystemArtifactStore(str(store_dir))
    # Every trained trial on test, to check the figures of each.
    objective = objective_for(digits, space, artifact_store=store, test_evaluation="every")
    study = nachos.create_study(
        storage=f"sqlite:///{tmp_path / 'e2e.db'}",
        study_name="e2e",
        sampler=nachos.create_sampler(sampler_name, seed=0),
        settings=objective.settings(),
    )
    study.enqueue_trial(space.params_from_config(_expensive_first_exit(space)))
    study.optimize(objective, n_trials=4)

    reloaded = optuna.load_study(study_name="e2e", storage=f"sqlite:///{tmp_path / 'e2e.db'}")
    finished = reloaded.get_trials(states=(TrialState.COMPLETE,))
    assert len(finished) == 4
    for trial in finished:
        assert {"max_avg_macs", "min_accuracy", "min_exits"} <= set(trial.constraints)
        assert set(trial.constraints) <= set(CONSTRAINT_NAMES)
        accuracy, avg_macs = trial.values
        assert math.isclose(trial.constraints["min_accuracy"], FLOOR - accuracy, abs_tol=1e-12)
        assert math.isclose(trial.constraints["max_avg_macs"], avg_macs - BUDGET, rel_tol=1e-9)
        costs = trial.user_attrs["exit_macs"]
        assert costs == sorted(costs)
        if "skipped_training" in trial.user_attrs:
            continue
        ratios = trial.user_attrs["exit_ratios"]  # on the test split
        test_macs = trial.user_attrs["test_avg_macs"]
        assert math.isclose(sum(ratios), 1.0, abs_tol=1e-9)
        assert math.isclose(test_macs, sum(r * c for r, c in zip(ratios, costs)), rel_tol=1e-9)
        assert costs[0] <= avg_macs <= costs[-1]
        assert trial.user_attrs["val_accuracy"] == accuracy
        assert len(trial.user_attrs["thresholds"]) == len(costs) - 1
        assert len(trial.user_attrs["accuracy_per_exit"]) == len(costs)
        assert 0.0 <= trial.user_attrs["backbone_accuracy"] <= 1.0
        assert trial.user_attrs["train_seconds"] > 0
        rebuilt = nachos.config_from_params(trial.params, space)
        assert trial.user_attrs["config"] == rebuilt.to_dict()

    skipped = finished[0]
    assert "skipped_training" in skipped.user_attrs
    assert skipped.values[0] == 0.0
    assert skipped.constraints["max_avg_macs"] > 0

    admissible = nachos.admissible_trials(reloaded)
    assert skipped not in admissible
    for trial in admissible:
        assert all(value <= 0 for value in trial.constraints.values())
    feasible = [t for t in finished if all(v <= 0 for v in t.constraints.values())]
    assert bool(admissible) == bool(feasible)

    trained = [t for t in finished if "nachos_artifact_id" in t.user_attrs]
    assert trained, "every trained trial uploads its network"
    trial = trained[-1]
    deployed = nachos.load_eenn(trial, artifact_store=store)
    exported = nachos.export_eenn(
        tmp_path / "exported",
        deployed.model,
        deployed.thresholds,
        in_channels=digits.in_channels,
    )
    again = nachos.load_eenn(exported)
    images = torch.stack([digits.test[i][0] for i in range(len(digits.test))])
    labels = torch.tensor([digits.test[i][1] for i in range(len(digits.test))])
    accuracy = (again.predict(images).predictions == labels).double().mean().item()
    assert math.isclose(accuracy, trial.user_attrs["test_accuracy"], abs_tol=1e-9)
    assert list(again.thresholds) == trial.user_attrs["thresholds"]


def test_static_guard_skips_training(monkeypatch, digits, space):
    def must_not_train(*args, **kwargs):
        raise AssertionError("the static guard must skip training")

    monkeypatch.setattr(_objective, "fit", must_not_train)
    objective = objective_for(digits, space)
    study = nachos.create_study(storage=None, study_name=None)
    study.enqueue_trial(space.params_from_config(_expensive_first_exit(space)))
    no_exit = nachos.EENNConfig(
        depths=(2,) * 5,
        kernel_sizes=((3, 3),) * 5,
        expand_ratios=((3, 3),) * 5,
        exit_stages=(),
        resolution=RESOLUTION,
    )
    study.enqueue_trial(space.params_from_config(no_exit))
    study.optimize(objective, n_trials=2)
    budget_trial, exits_trial = study.trials
    assert budget_trial.state == exits_trial.state == TrialState.COMPLETE
    first_cost = budget_trial.user_attrs["exit_macs"][0]
    assert budget_trial.values == [0.0, first_cost]
    assert budget_trial.constraints["max_avg_macs"] == pytest.approx(first_cost - BUDGET)
    assert budget_trial.constraints["max_avg_macs"] > 0
    assert budget_trial.constraints["min_exits"] == 0
    assert exits_trial.constraints["min_exits"] == 1
    assert "min_exits" in exits_trial.user_attrs["skipped_training"]
    assert nachos.admissible_trials(study) == []


def test_failing_candidates_keep_the_study_going(monkeypatch, digits, space):
    real_fit = _objective.fit
    calls = []

    def diverging_first(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise TrainingDivergedError(
                phase="backbone", epoch=1, batch=0, terms=["cls"], values=[float("nan")]
            )
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(_objective, "fit", diverging_first)
    objective = objective_for(
        digits,
        space,
        train_config=nachos.TrainConfig(
            backbone_epochs=1, warmup_epochs=0, exit_epochs=1, progress=False
        ),
    )
    study = nachos.create_study(storage=None, study_name=None)
    cheap = nachos.EENNConfig(
        depths=(2,) * 5,
        kernel_sizes=((3, 3),) * 5,
        expand_ratios=((3, 3),) * 5,
        exit_stages=(1, 2),
        resolution=RESOLUTION,
    )
    for _ in range(2):
        study.enqueue_trial(space.params_from_config(cheap))
    study.optimize(objective, n_trials=2)
    failed, completed = study.trials
    assert failed.state == TrialState.FAIL
    assert "training diverged" in failed.user_attrs["fail_reason"]
    assert completed.state == TrialState.COMPLETE


def test_objective_rejects_impossible_budgets(digits, space):
    with pytest.raises(ValueError, match="cheapest network"):
        objective_for(digits, space, max_avg_macs=1000.0)
    with pytest.raises(ValueError, match="min_accuracy"):
        objective_for(digits, space, min_accuracy=1.5)


def test_smallest_average_macs_is_a_lower_bound(digits, space):
    floor = space.smallest_average_macs(num_classes=10, in_channels=1)
    sampler = optuna.samplers.RandomSampler(seed=0)
    study = optuna.create_study(sampler=sampler)
    for _ in range(30):
        trial = study.ask()
        config = nachos.suggest_eenn(trial, space)
        if config.exit_stages:
            assert nachos.exit_macs(config, num_classes=10, in_channels=1)[0] >= floor
        study.tell(trial, 0.0)
