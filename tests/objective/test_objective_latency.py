"""Latency as a constraint and as the objective, with a latency table, on the digits data."""

import math

import optuna
import pytest
from optuna.trial import TrialState

import optuna_nachos as nachos
from optuna_nachos.cost import exit_latency, profile_latency
from optuna_nachos.objective import _objective
from optuna_nachos.record import CONSTRAINT_NAMES, LATENCY_METRIC_NAMES
from optuna_nachos.report import summarize
from optuna_nachos.report._summary import summary_markdown
from optuna_nachos.samplers import NachosSampler

from .conftest import BUDGET, RESOLUTION

FLOOR = 0.0


@pytest.fixture(scope="module")
def space():
    return nachos.MobileNetV3Space(resolutions=(RESOLUTION,), depths=(2,), expand_ratios=(3, 4))


@pytest.fixture(scope="module")
def table(digits, space):
    return profile_latency(
        resolutions=(RESOLUTION,),
        kernel_sizes=space.kernel_sizes,
        expand_ratios=space.expand_ratios,
        num_classes=digits.num_classes,
        in_channels=digits.in_channels,
        backends=("torch",),
        batch_sizes=(1,),
        warmup=1,
        repeats=3,
    )


def _objective_for(digits, space, table, **kwargs):
    settings = {
        "dataset": digits,
        "space": space,
        "max_avg_macs": BUDGET,
        "min_accuracy": FLOOR,
        "latency_table": table,
        "latency_backend": "torch",
        "train_config": nachos.TrainConfig(
            backbone_epochs=1, warmup_epochs=1, exit_epochs=1, progress=False, batch_size=64
        ),
    }
    settings.update(kwargs)
    return nachos.NachosObjective(**settings)


def _cheap(space):
    return nachos.EENNConfig(
        depths=(2,) * 5,
        kernel_sizes=((3, 3),) * 5,
        expand_ratios=((3, 3),) * 5,
        exit_stages=(1, 3),
        resolution=RESOLUTION,
    )


def test_latency_constraints_on_a_mac_study(digits, space, table):
    config = _cheap(space)
    latency = exit_latency(config, table, backend="torch")
    objective = _objective_for(
        digits,
        space,
        table,
        max_avg_latency_ms=latency[-1] * 10,
        max_peak_latency_ms=latency[-1] * 2,
    )
    study = nachos.create_study(storage=None, study_name=None)
    study.enqueue_trial(space.params_from_config(config))
    study.optimize(objective, n_trials=1)
    (trial,) = study.trials
    assert trial.state == TrialState.COMPLETE
    assert trial.user_attrs["exit_latency_ms"] == pytest.approx(latency)
    ratios = trial.user_attrs["exit_ratios"]
    avg_latency = sum(r * v for r, v in zip(ratios, latency))
    assert trial.user_attrs["avg_latency_ms"] == pytest.approx(avg_latency)
    # Chosen on validation: the constraint reads the validation exit ratios.
    val_ratios = trial.user_attrs["val_exit_ratios"]
    val_latency = sum(r * v for r, v in zip(val_ratios, latency))
    assert trial.user_attrs["val_avg_latency_ms"] == pytest.approx(val_latency)
    assert trial.constraints["max_avg_latency_ms"] == pytest.approx(val_latency - latency[-1] * 10)
    assert trial.constraints["max_peak_latency_ms"] == pytest.approx(-latency[-1])
    assert set(trial.constraints) <= set(CONSTRAINT_NAMES)
    # The second objective stays average MACs (on validation, where the trial is chosen).
    macs = trial.user_attrs["exit_macs"]
    assert trial.values[1] == pytest.approx(sum(r * m for r, m in zip(val_ratios, macs)))
    assert trial.user_attrs["test_avg_macs"] == pytest.approx(
        sum(r * m for r, m in zip(ratios, macs))
    )
    assert trial.constraints["max_avg_macs"] == pytest.approx(trial.values[1] - BUDGET)


def test_static_guard_uses_the_first_exit_latency(monkeypatch, digits, space, table):
    def must_not_train(*args, **kwargs):
        raise AssertionError("the static guard must skip training")

    monkeypatch.setattr(_objective, "fit", must_not_train)
    config = _cheap(space)
    latency = exit_latency(config, table, backend="torch")
    budget = latency[0] * 0.9
    objective = _objective_for(
        digits, space, table, cost_objective="latency", max_avg_latency_ms=budget
    )
    study = nachos.create_study(storage=None, study_name=None, metric_names=LATENCY_METRIC_NAMES)
    study.enqueue_trial(space.params_from_config(config))
    study.optimize(objective, n_trials=1)
    (trial,) = study.trials
    assert "max_avg_latency_ms" in trial.user_attrs["skipped_training"]
    assert trial.values == pytest.approx([0.0, latency[0]])
    assert trial.constraints["max_avg_latency_ms"] == pytest.approx(latency[0] - budget)
    assert study.metric_names == list(LATENCY_METRIC_NAMES)


def test_settings_are_validated(digits, space, table):
    with pytest.raises(ValueError, match="needs a latency table"):
        _objective_for(digits, space, None, max_avg_latency_ms=1.0)
    with pytest.raises(ValueError, match="needs latency_table and max_avg_latency_ms"):
        _objective_for(digits, space, table, cost_objective="latency")
    with pytest.raises(ValueError, match="cost_objective"):
        _objective_for(digits, space, table, cost_objective="energy")
    with pytest.raises(ValueError, match="max_avg_macs is required"):
        _objective_for(digits, space, table, max_avg_macs=None)
    with pytest.raises(ValueError, match="onnxruntime"):
        _objective_for(digits, space, table, latency_backend="onnxruntime")


def test_sampler_costs_are_the_table_latencies(digits, space, table):
    objective = _objective_for(
        digits, space, table, cost_objective="latency", max_avg_latency_ms=5.0, max_avg_macs=None
    )
    options = objective.sampler_options()
    sampler = NachosSampler(space=space, seed=0, n_startup_trials=2, **options)
    config = _cheap(space)
    costs = sampler._space_costs.costs(space.params_from_config(config))
    assert list(costs.exit_macs) == pytest.approx(exit_latency(config, table, backend="torch"))
    assert options["max_avg_macs"] == 5.0
    with pytest.raises(ValueError, match="needs the search space"):
        NachosSampler(latency_table=table, latency_backend="torch")


@pytest.mark.slow
def test_latency_study_end_to_end_on_digits(tmp_path, digits, space, table):
    config = _cheap(space)
    latency = exit_latency(config, table, backend="torch")
    budget = latency[-1]
    objective = _objective_for(
        digits,
        space,
        table,
        cost_objective="latency",
        max_avg_latency_ms=budget,
        max_avg_macs=None,
    )
    storage = f"sqlite:///{tmp_path / 'latency.db'}"
    sampler = NachosSampler(
        space=space, seed=0, n_startup_trials=2, batch_size=2, **objective.sampler_options()
    )
    study = nachos.create_study(
        storage=storage,
        study_name="latency",
        sampler=sampler,
        settings=objective.settings(),
        metric_names=LATENCY_METRIC_NAMES,
    )
    study.enqueue_trial(space.params_from_config(config))
    study.optimize(objective, n_trials=4)

    reloaded = optuna.load_study(study_name="latency", storage=storage)
    assert reloaded.metric_names == list(LATENCY_METRIC_NAMES)
    finished = reloaded.get_trials(states=(TrialState.COMPLETE,))
    assert len(finished) == 4
    for trial in finished:
        assert "max_avg_latency_ms" in trial.constraints
        assert "max_avg_macs" not in trial.constraints
        per_exit = trial.user_attrs["exit_latency_ms"]
        rebuilt = nachos.config_from_params(trial.params, space)
        assert per_exit == pytest.approx(exit_latency(rebuilt, table, backend="torch"))
        if "skipped_training" in trial.user_attrs:
            continue
        val_ratios = trial.user_attrs["val_exit_ratios"]
        accuracy, avg_latency = trial.values  # chosen on validation
        assert avg_latency == pytest.approx(sum(r * v for r, v in zip(val_ratios, per_exit)))
        assert trial.user_attrs["val_avg_latency_ms"] == pytest.approx(avg_latency)
        assert per_exit[0] <= avg_latency + 1e-9 <= per_exit[-1] + 2e-9
        assert math.isclose(
            trial.constraints["max_avg_latency_ms"], avg_latency - budget, rel_tol=1e-9
        )
        if "test_skipped" in trial.user_attrs:  # not on the admissible front
            assert "test_accuracy" not in trial.user_attrs
            continue
        ratios = trial.user_attrs["exit_ratios"]
        assert trial.user_attrs["avg_latency_ms"] == pytest.approx(
            sum(r * v for r, v in zip(ratios, per_exit))
        )
        # The average MACs stay on record, in MACs.
        macs = trial.user_attrs["exit_macs"]
        assert trial.user_attrs["avg_macs"] == pytest.approx(
            sum(r * m for r, m in zip(ratios, macs))
        )
    assert nachos.admissible_trials(reloaded), "the cheap enqueued network fits the budget"
    for trial in nachos.admissible_trials(reloaded):
        assert "test_accuracy" in trial.user_attrs, "the front is evaluated on test"
    summary = summarize(reloaded)
    assert summary.front[0]["avg_latency_ms"] is not None
    text = summary_markdown(summary)
    assert "avg latency" in text and " ms |" in text
    assert "average latency" in text  # the hypervolume's reference point is in ms
    assert 0.0 <= nachos.hypervolume(reloaded) <= 1.0
