import math

import pytest

from optuna_nachos.visualization import plot_operating_curve


def _trained(study):
    return [t for t in study.trials if "operating_curve" in t.user_attrs]


def test_curve_points_and_chosen_point(digits_study, parts):
    trials = _trained(digits_study.study)
    assert trials
    for trial in trials:
        fig = plot_operating_curve(trial)
        traces = parts.traces(fig)
        curve = traces["threshold settings (test split)"]
        points = sorted(trial.user_attrs["operating_curve"], key=lambda p: p["avg_macs"])
        assert [x * 1e6 for x in curve.x] == pytest.approx([p["avg_macs"] for p in points])
        assert list(curve.y) == [p["accuracy"] for p in points]
        chosen = traces["chosen thresholds (validation split)"]
        assert list(chosen.customdata) == [trial.number]
        assert math.isclose(chosen.x[0] * 1e6, trial.values[1])
        assert chosen.y[0] == trial.values[0]
        thresholds = ", ".join(f"{t:.2f}" for t in trial.user_attrs["thresholds"])
        assert f"thresholds {thresholds}" in chosen.text[0]
        assert parts.vertical(fig) == [] and parts.horizontal(fig) == []


def test_budget_and_floor_from_the_study_or_keywords(digits_study, parts):
    study = digits_study.study
    trial = _trained(study)[0]
    fig = plot_operating_curve(trial, study=study)
    assert parts.vertical(fig) == [pytest.approx(digits_study.max_avg_macs / 1e6)]
    assert parts.horizontal(fig) == [pytest.approx(digits_study.min_accuracy)]
    fig = plot_operating_curve(trial, study=study, max_avg_macs=1.5e6, min_accuracy=0.1)
    assert parts.vertical(fig) == [pytest.approx(1.5)]
    assert parts.horizontal(fig) == [pytest.approx(0.1)]


def test_untrained_trial_raises(digits_study):
    skipped = next(t for t in digits_study.study.trials if "skipped_training" in t.user_attrs)
    with pytest.raises(ValueError, match=r"operating_curve.*written by NachosObjective"):
        plot_operating_curve(skipped)


def test_a_trial_not_tested_says_why_and_how_to_test_every_trial():
    import optuna

    trial = optuna.trial.create_trial(
        values=[0.5, 1e6],
        user_attrs={"thresholds": [0.5], "test_skipped": "dominated on validation by trial 0"},
    )
    with pytest.raises(ValueError, match=r"operating_curve") as raised:
        plot_operating_curve(trial)
    message = str(raised.value)
    assert "(dominated on validation by trial 0)" in message
    assert "test_evaluation='every'" in message
