import math

import pytest

from optuna_nachos import EENNConfig, admissible_trials
from optuna_nachos.visualization import plot_exit_metrics, plot_exit_ratios


def _trained(study):
    return [t for t in study.trials if "accuracy_per_exit" in t.user_attrs]


def _skipped(study):
    return next(t for t in study.trials if "skipped_training" in t.user_attrs)


def test_exit_ratios_one_stacked_bar_per_admissible_trial(digits_study):
    study = digits_study.study
    front = admissible_trials(study)
    fig = plot_exit_ratios(study)
    assert fig.layout.barmode == "stack"
    stages_used = set()
    for trial in front:
        config = EENNConfig.from_dict(trial.user_attrs["config"])
        stages_used.update([*config.exit_stages, 5])
    assert len(fig.data) == len(stages_used)
    for trace in fig.data:
        assert list(trace.customdata) == [t.number for t in front]
    for column, trial in enumerate(front):
        config = EENNConfig.from_dict(trial.user_attrs["config"])
        stages = [*config.exit_stages, 5]
        ratios = dict(zip(stages, trial.user_attrs["exit_ratios"]))
        segments = {}
        for trace in fig.data:
            stage = 5 if trace.name == "final exit" else int(trace.name.rsplit(" ", 1)[1])
            if trace.y[column] is not None:
                segments[stage] = trace.y[column]
        assert segments == pytest.approx(ratios)
        assert math.isclose(sum(segments.values()), 1.0, abs_tol=1e-9)
        assert f"trial {trial.number}" in fig.data[0].x[column]


def test_exit_ratios_without_admissible_trial(settings_study, add_trial, parts):
    add_trial(settings_study, 0.3, 50.0)  # below the floor
    fig = plot_exit_ratios(settings_study)
    assert len(fig.data) == 0
    assert "No admissible trial" in parts.text(fig)


def test_exit_ratios_needs_the_objective_attributes(settings_study, add_trial):
    add_trial(settings_study, 0.9, 50.0)
    with pytest.raises(ValueError, match=r"exit_ratios.*NachosObjective"):
        plot_exit_ratios(settings_study)


def test_exit_metrics_accuracy_and_cost_per_exit(digits_study, parts):
    for trial in _trained(digits_study.study):
        fig = plot_exit_metrics(trial)
        traces = parts.traces(fig)
        accuracy = traces["accuracy of the exit"]
        cost = traces["MACs when leaving at the exit"]
        assert list(accuracy.y) == trial.user_attrs["accuracy_per_exit"]
        assert [c * 1e6 for c in cost.y] == pytest.approx(trial.user_attrs["exit_macs"])
        assert list(cost.customdata) == trial.user_attrs["exit_ratios"]
        config = EENNConfig.from_dict(trial.user_attrs["config"])
        assert list(cost.x) == [f"after stage {s}" for s in config.exit_stages] + ["final"]
        for ratio, text in zip(trial.user_attrs["exit_ratios"], cost.hovertext):
            assert f"{ratio:.1%} of the samples leave here" in text
        # Test figures, as the bars: not the objective values (validation).
        test_accuracy = trial.user_attrs["test_accuracy"]
        test_macs = trial.user_attrs["test_avg_macs"]
        assert parts.horizontal(fig) == pytest.approx([test_accuracy, test_macs / 1e6])
        notes = [a.text for a in fig.layout.annotations]
        assert f"average {test_macs / 1e6:.3f} M (test)" in notes, notes
        assert any(n.startswith("with early exiting") and n.endswith("(test)") for n in notes)


def test_exit_metrics_of_an_untrained_trial_says_why(digits_study):
    with pytest.raises(ValueError, match=r"accuracy_per_exit.*NachosObjective.*not trained"):
        plot_exit_metrics(_skipped(digits_study.study))


def test_exit_metrics_rejects_a_study():
    with pytest.raises(TypeError, match="FrozenTrial"):
        plot_exit_metrics("trial")
