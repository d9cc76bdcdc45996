import math

import optuna
import pytest
from optuna.distributions import FloatDistribution

from optuna_nachos.results import admissible_trials, high_tradeoff_trials, hypervolume
from optuna_nachos.study import create_study


def _add(study, accuracy, macs, *, feasible=True, constraints=True):
    trial = optuna.trial.create_trial(
        values=[accuracy, macs],
        params={"x": 0.0},
        distributions={"x": FloatDistribution(0, 1)},
        system_attrs=(
            {
                "constraints:max_avg_macs": macs - 100.0,
                "constraints:min_accuracy": 0.5 - accuracy if feasible else 0.1,
            }
            if constraints
            else {}
        ),
    )
    study.add_trial(trial)


@pytest.fixture
def study():
    study = create_study(
        storage=None, study_name=None, settings={"min_accuracy": 0.5, "max_avg_macs": 100.0}
    )
    _add(study, 0.9, 80.0)
    _add(study, 0.8, 40.0)
    _add(study, 0.7, 50.0)  # dominated by (0.8, 40)
    _add(study, 0.95, 90.0, feasible=False)  # infeasible
    _add(study, 0.99, 120.0)  # over budget: infeasible by its own constraint
    _add(study, 0.6, 10.0)
    _add(study, 0.97, 5.0, constraints=False)  # carries no constraints: never admissible
    return study


def test_admissible_trials_are_feasible_pareto_sorted(study):
    front = admissible_trials(study)
    assert [tuple(t.values) for t in front] == [(0.6, 10.0), (0.8, 40.0), (0.9, 80.0)]


def test_hypervolume_matches_hand_computed_area(study):
    # Box [0.5, 1] x [0, 100]; strips: (0.6-0.5)*(100-10) + (0.8-0.6)*(100-40) + (0.9-0.8)*20
    expected = (0.1 * 90 + 0.2 * 60 + 0.1 * 20) / (0.5 * 100)
    assert math.isclose(hypervolume(study), expected)
    assert math.isclose(hypervolume(study.trials, min_accuracy=0.5, max_avg_macs=100.0), expected)


def test_hypervolume_needs_reference_point():
    bare = optuna.create_study(directions=["maximize", "minimize"])
    with pytest.raises(ValueError, match="reference point"):
        hypervolume(bare)


def test_hypervolume_empty_front_is_zero():
    study = create_study(
        storage=None, study_name=None, settings={"min_accuracy": 0.5, "max_avg_macs": 100.0}
    )
    assert hypervolume(study) == 0.0


def test_high_tradeoff_picks_the_knee():
    study = create_study(
        storage=None, study_name=None, settings={"min_accuracy": 0.0, "max_avg_macs": 100.0}
    )
    # A sharp knee at (0.9, 20): going left loses a lot of accuracy, going right buys little.
    for acc, macs in [(0.55, 5.0), (0.9, 20.0), (0.91, 60.0), (0.92, 95.0)]:
        _add(study, acc, macs)
    picked = high_tradeoff_trials(study, n=1)
    assert [tuple(t.values) for t in picked] == [(0.9, 20.0)]
    assert len(high_tradeoff_trials(study, n=10)) == 4
    with pytest.raises(ValueError):
        high_tradeoff_trials(study, n=0)
