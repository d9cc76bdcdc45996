"""Which trials the packaged objective evaluates on the test split, and on what validation rows."""

import math

import optuna
import pytest
from optuna.trial import TrialState

import optuna_nachos as nachos
from optuna_nachos.record import EENNTrial, reported_values

from .conftest import RESOLUTION, objective_for

ADMISSIBLE = {"max_avg_macs": -1.0, "min_accuracy": -0.1, "min_exits": 0.0}


def _objective_for(digits, space, **kwargs):
    return objective_for(digits, space, epochs=(1, 1, 0), **kwargs)


def _finished(study, accuracy, macs, *, admissible=True):
    constraints = dict(ADMISSIBLE, max_avg_macs=-1.0 if admissible else 1.0)
    study.add_trial(
        optuna.trial.create_trial(
            values=[accuracy, macs],
            constraints=constraints,
            user_attrs={"objective_split": "validation"},
        )
    )


def test_only_trials_that_can_reach_the_admissible_front_are_tested(digits, space):
    objective = _objective_for(digits, space)
    study = optuna.create_study(directions=["maximize", "minimize"])
    _finished(study, 0.8, 5e5)
    _finished(study, 0.95, 1e5, admissible=False)  # inadmissible trials dominate nothing
    trial = study.ask()

    def reason(accuracy, macs, constraints=ADMISSIBLE):
        return objective._test_skip_reason(trial, accuracy, macs, constraints)

    assert reason(0.7, 6e5) == "dominated on validation by trial 0"
    assert reason(0.8, 6e5) == "dominated on validation by trial 0"
    assert reason(0.7, 4e5) is None  # cheaper: on the front
    assert reason(0.9, 6e5) is None  # more accurate: on the front
    assert reason(0.8, 5e5) is None  # equal figures do not dominate
    violated = dict(ADMISSIBLE, min_accuracy=0.05, min_exits=1.0)
    assert reason(0.9, 1e5, violated) == (
        "not admissible on validation (violates min_accuracy, min_exits)"
    )
    every = _objective_for(digits, space, test_evaluation="every")
    assert every._test_skip_reason(trial, 0.7, 6e5, ADMISSIBLE) is None
    assert every._test_skip_reason(trial, 0.9, 1e5, violated) is None


def test_a_fixed_trial_is_always_tested(digits, space):
    objective = _objective_for(digits, space)
    trial = optuna.trial.FixedTrial({})
    assert objective._test_skip_reason(trial, 0.1, 9e9, ADMISSIBLE) is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"test_evaluation": "some"}, "test_evaluation must be one of"),
        ({"val_rows": 0}, "val_rows must be a positive integer"),
        ({"val_rows": True}, "val_rows must be a positive integer"),
    ],
)
def test_bad_settings_are_refused(digits, space, kwargs, message):
    with pytest.raises(ValueError, match=message):
        _objective_for(digits, space, **kwargs)


def _cheap_params(space):
    config = nachos.EENNConfig(
        depths=(2,) * 5,
        kernel_sizes=((3, 3),) * 5,
        expand_ratios=((3, 3),) * 5,
        exit_stages=(1, 2),
        resolution=RESOLUTION,
    )
    return space.params_from_config(config)


@pytest.mark.slow
def test_a_search_tests_its_front_and_says_why_it_skipped_the_rest(digits, space):
    # An unreachable floor: no trial is admissible, so none is tested after training.
    objective = _objective_for(digits, space, min_accuracy=0.99, val_rows=100)
    assert objective.settings()["val_rows"] == 100
    assert objective.settings()["test_evaluation"] == "front"
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.enqueue_trial(_cheap_params(space))
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    assert trial.state == TrialState.COMPLETE
    attrs = trial.user_attrs
    assert attrs["test_skipped"] == "not admissible on validation (violates min_accuracy)"
    assert "test_accuracy" not in attrs and "exit_ratios" not in attrs
    assert "operating_curve" not in attrs
    assert reported_values(trial) is None
    assert EENNTrial.from_trial(trial).test_skipped == attrs["test_skipped"]
    # What a skipped trial still carries: its thresholds and validation figures.
    assert len(attrs["thresholds"]) == 2 and len(attrs["val_exit_ratios"]) == 3
    # Scored on 100 fixed validation images.
    assert math.isclose(trial.values[0] * 100, round(trial.values[0] * 100), abs_tol=1e-9)

    # A reachable floor: the first trained trial is on the front, so it is tested.
    objective = _objective_for(digits, space, min_accuracy=0.0)
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.enqueue_trial(_cheap_params(space))
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    assert "test_skipped" not in trial.user_attrs
    assert reported_values(trial) is not None
    assert len(trial.user_attrs["exit_ratios"]) == 3
    assert trial.user_attrs["operating_curve"]
    assert nachos.admissible_trials(study) == [study.trials[0]]


def test_validation_rows_are_a_fixed_stratified_subset(digits, space):
    objective = _objective_for(digits, space, val_rows=100)
    rows = objective._scoring_data.val
    assert len(rows) == 100
    again = _objective_for(digits, space, val_rows=100)._scoring_data.val
    assert rows.targets.tolist() == again.targets.tolist()
    counts = rows.targets.bincount(minlength=digits.num_classes)
    assert int(counts.min()) >= 9 and int(counts.max()) <= 11  # 10 classes, 100 rows
    assert objective._scoring_data.test is digits.test
    whole = _objective_for(digits, space, val_rows=10**6)
    assert whole._scoring_data is digits
