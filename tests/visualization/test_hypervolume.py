import math

import optuna
import pytest

from optuna_nachos import hypervolume
from optuna_nachos.study import create_study
from optuna_nachos.visualization import hypervolume_history, plot_hypervolume_history


def test_history_of_the_digits_study(digits_study):
    study = digits_study.study
    fig = plot_hypervolume_history(study)
    (trace,) = fig.data
    completed = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert list(trace.x) == list(range(1, len(completed) + 1))
    assert sorted(trace.customdata) == [t.number for t in completed]
    values = list(trace.y)
    assert all(b >= a for a, b in zip(values, values[1:]))
    assert math.isclose(values[-1], hypervolume(study))
    assert values[-1] > 0
    assert trace.name == study.study_name


def test_history_by_hand(settings_study, add_trial):
    add_trial(settings_study, 0.4, 10.0)  # below the floor: no area
    add_trial(settings_study, 0.6, 50.0)
    add_trial(settings_study, 0.9, 150.0)  # over the budget: no area
    add_trial(settings_study, 0.8, 20.0)
    trials, values = hypervolume_history(settings_study)
    assert [t.number for t in trials] == [0, 1, 2, 3]
    box = 0.5 * 100
    assert values == pytest.approx([0, 0.1 * 50 / box, 0.1 * 50 / box, 0.3 * 80 / box])
    assert values[-1] == pytest.approx(hypervolume(settings_study))


def _study(name):
    return create_study(
        storage=None, study_name=name, settings={"min_accuracy": 0.5, "max_avg_macs": 100.0}
    )


def test_several_studies_overlaid(add_trial):
    first = _study("tpe")
    second = _study("random")
    add_trial(first, 0.7, 40.0)
    add_trial(second, 0.9, 40.0)
    add_trial(second, 0.95, 60.0)
    fig = plot_hypervolume_history([first, second])
    assert [t.name for t in fig.data] == ["tpe", "random"]
    assert [len(t.x) for t in fig.data] == [1, 2]
    assert fig.data[1].y[-1] == pytest.approx(hypervolume(second))
    fig = plot_hypervolume_history({"A": first, "B": second})
    assert [t.name for t in fig.data] == ["A", "B"]
    fig = plot_hypervolume_history([first, second], labels=["x", "y"])
    assert [t.name for t in fig.data] == ["x", "y"]
    fig = plot_hypervolume_history([first, first])
    assert [t.name for t in fig.data] == ["tpe (1)", "tpe (2)"]


def test_empty_study_says_so(settings_study, parts):
    fig = plot_hypervolume_history(settings_study)
    assert len(fig.data[0].x) == 0
    assert "No finished trial" in parts.text(fig)


def test_misuse_raises(settings_study):
    with pytest.raises(ValueError, match="at least one study"):
        plot_hypervolume_history([])
    with pytest.raises(ValueError, match="2 labels for 1 studies"):
        plot_hypervolume_history([settings_study], labels=["a", "b"])
    with pytest.raises(ValueError, match="not both"):
        plot_hypervolume_history({"a": settings_study}, labels=["a"])
    with pytest.raises(ValueError, match="reference point"):
        plot_hypervolume_history(optuna.create_study(directions=["maximize", "minimize"]))
    bare = optuna.create_study(directions=["maximize", "minimize"])
    fig = plot_hypervolume_history(bare, min_accuracy=0.5, max_avg_macs=100.0)
    assert len(fig.data) == 1
