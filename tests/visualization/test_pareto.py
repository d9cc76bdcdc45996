import math

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from optuna_nachos import EENNConfig, admissible_trials
from optuna_nachos.study import create_study, is_feasible
from optuna_nachos.visualization import plot_pareto_front

ADMISSIBLE = "admissible (Pareto-optimal)"
FEASIBLE = "feasible, dominated"
INFEASIBLE = "infeasible"
SKIPPED = "not trained (static guard)"


def _expected_groups(study):
    completed = study.get_trials(states=(TrialState.COMPLETE,))
    front = [t.number for t in admissible_trials(study)]
    skipped = [t.number for t in completed if "skipped_training" in t.user_attrs]
    trained = [t for t in completed if "skipped_training" not in t.user_attrs]
    return {
        ADMISSIBLE: front,
        FEASIBLE: [t.number for t in trained if is_feasible(t) and t.number not in front],
        INFEASIBLE: [t.number for t in trained if not is_feasible(t)],
        SKIPPED: skipped,
    }


def test_traces_hold_the_right_trials_at_their_values(digits_study, parts):
    study = digits_study.study
    fig = plot_pareto_front(study)
    traces = parts.traces(fig)
    expected = _expected_groups(study)
    assert set(traces) == set(expected)
    assert expected[ADMISSIBLE] and expected[SKIPPED] and expected[INFEASIBLE]
    by_number = {t.number: t for t in study.trials}
    for name, numbers in expected.items():
        trace = traces[name]
        assert list(trace.customdata) == numbers, name
        for number, x, y in zip(trace.customdata, trace.x, trace.y):
            accuracy, macs = by_number[number].values
            assert math.isclose(x * 1e6, macs) and y == accuracy
    plotted = [n for trace in fig.data for n in trace.customdata]
    assert sorted(plotted) == [t.number for t in study.get_trials(states=(TrialState.COMPLETE,))]


def test_budget_and_floor_lines_from_the_study_settings(digits_study, parts):
    fig = plot_pareto_front(digits_study.study)
    assert parts.vertical(fig) == [pytest.approx(digits_study.max_avg_macs / 1e6)]
    assert parts.horizontal(fig) == [pytest.approx(digits_study.min_accuracy)]
    assert fig.layout.xaxis.title.text == "average MACs per sample (millions), validation split"


def test_keyword_arguments_override_the_settings(digits_study, parts):
    fig = plot_pareto_front(digits_study.study, max_avg_macs=2e6, min_accuracy=0.5)
    assert parts.vertical(fig) == [pytest.approx(2.0)]
    assert parts.horizontal(fig) == [pytest.approx(0.5)]


def test_hover_shows_architecture_exits_and_thresholds(digits_study, parts):
    study = digits_study.study
    trace = parts.traces(plot_pareto_front(study))[ADMISSIBLE]
    for number, text in zip(trace.customdata, trace.text):
        trial = study.trials[number]
        config = EENNConfig.from_dict(trial.user_attrs["config"])
        assert f"trial {number}" in text
        assert config.short_name() in text
        assert "after stages " + ", ".join(map(str, config.exit_stages)) in text
        assert "thresholds " + ", ".join(f"{t:.2f}" for t in trial.user_attrs["thresholds"]) in text
    skipped = parts.traces(plot_pareto_front(study))[SKIPPED]
    assert all("not trained" in text for text in skipped.text)


def test_skipped_trials_can_be_left_out(digits_study, parts):
    fig = plot_pareto_front(digits_study.study, include_skipped=False)
    assert SKIPPED not in parts.traces(fig)


def test_plain_study_without_settings_draws_no_lines(add_trial, parts):
    study = optuna.create_study(directions=["maximize", "minimize"])
    add_trial(study, 0.9, 50.0)
    add_trial(study, 0.4, 20.0)  # below the floor of its constraints
    fig = plot_pareto_front(study)
    assert parts.vertical(fig) == [] and parts.horizontal(fig) == []
    traces = parts.traces(fig)
    assert list(traces[ADMISSIBLE].customdata) == [0]
    assert list(traces[INFEASIBLE].customdata) == [1]


def test_empty_study_gives_empty_traces(settings_study, parts):
    fig = plot_pareto_front(settings_study)
    assert all(len(trace.x) == 0 for trace in fig.data)
    assert "0 finished trials" in fig.layout.title.text


def test_misuse_raises():
    with pytest.raises(TypeError, match="optuna.Study"):
        plot_pareto_front([])
    single = optuna.create_study()
    with pytest.raises(ValueError, match="two objectives"):
        plot_pareto_front(single)


def test_latency_study_is_drawn_in_milliseconds(parts):
    """A study searched with the latency objective: its axis, budget and hover are in ms."""
    study = create_study(
        storage=None,
        study_name="latency",
        settings={"objective": "latency", "min_accuracy": 0.5, "max_avg_latency_ms": 2.0},
    )
    for accuracy, latency in ((0.9, 1.5), (0.8, 1.0), (0.7, 3.0)):
        study.add_trial(
            optuna.trial.create_trial(
                values=[accuracy, latency],
                params={"x": 0.0},
                distributions={"x": FloatDistribution(0, 1)},
                system_attrs={
                    "constraints:max_avg_latency_ms": latency - 2.0,
                    "constraints:min_accuracy": 0.5 - accuracy,
                },
            )
        )
    fig = plot_pareto_front(study)
    assert fig.layout.xaxis.title.text == "average latency per sample (ms), validation split"
    assert "latency" in fig.layout.title.text
    assert parts.vertical(fig) == [2.0]  # the latency budget, not a MAC budget
    assert "latency budget 2 ms" in parts.text(fig)
    front = parts.traces(fig)["admissible (Pareto-optimal)"]
    assert sorted(front.x) == [1.0, 1.5]  # milliseconds as recorded, not millions
    assert "average latency 1.000 ms" in " ".join(front.text)
    infeasible = parts.traces(fig)["infeasible"]
    assert list(infeasible.x) == [3.0]


def test_the_cost_axis_fits_the_points_and_the_floor_label_sits_in_the_margin(digits_study):
    study = digits_study.study
    fig = plot_pareto_front(study)
    low, high = fig.layout.xaxis.range
    xs = [x for trace in fig.data for x in trace.x]
    budget = digits_study.max_avg_macs / 1e6
    assert low > 0  # not from 0: the points are not squeezed against the budget line
    assert low <= min(*xs, budget) and max(*xs, budget) <= high
    assert high - low < 1.3 * (max(*xs, budget) - min(*xs, budget)) + 0.1
    # The floor's label is outside the plotting area (right margin), so no marker hides it.
    (floor_label,) = [a for a in fig.layout.annotations if "floor" in (a.text or "")]
    assert floor_label.xref == "paper" and floor_label.x >= 1 and floor_label.xanchor == "left"
    assert floor_label.y == pytest.approx(digits_study.min_accuracy)
    assert "validation split" in fig.layout.xaxis.title.text
    assert "validation split" in fig.layout.yaxis.title.text
