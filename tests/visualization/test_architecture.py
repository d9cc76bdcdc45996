import optuna
import pytest

from optuna_nachos import EENNConfig, admissible_trials, exit_macs
from optuna_nachos.visualization import plot_architecture

CONFIG = EENNConfig(
    depths=(2, 3, 4, 2, 1),
    kernel_sizes=((3, 5), (7, 3, 5), (3, 3, 5, 7), (5, 5), (3,)),
    expand_ratios=((3, 4), (6, 3, 4), (3, 3, 4, 6), (4, 4), (6,)),
    exit_stages=(1, 3),
    resolution=32,
)


def _check(fig, config, costs, parts):
    text = parts.text(fig)
    for stage in config.exit_stages:
        assert f"after stage {stage}" in text
    assert "final exit" in text
    for cost in costs:
        assert f"{cost / 1e6:.3f} M MACs" in text
    assert list(parts.traces(fig)["exits"].customdata) == list(costs)
    layers = parts.traces(fig)["layers"].text
    assert len(layers) == sum(config.depths)
    for stage, (kernels, expands) in enumerate(zip(config.kernel_sizes, config.expand_ratios)):
        for layer, (k, e) in enumerate(zip(kernels, expands)):
            assert f"k{k}<br>e{e}" in text
            assert any(
                f"stage {stage + 1}, layer {layer + 1}</b><br>MBConv, depthwise {k}×{k}"
                f"<br>expand ratio {e}" in hover
                for hover in layers
            )


def test_configuration_with_class_count(parts):
    fig = plot_architecture(CONFIG, num_classes=10)
    _check(fig, CONFIG, exit_macs(CONFIG, num_classes=10, in_channels=3), parts)
    assert CONFIG.short_name() in fig.layout.title.text
    one_channel = plot_architecture(CONFIG, num_classes=10, in_channels=1)
    costs = exit_macs(CONFIG, num_classes=10, in_channels=1)
    assert list(parts.traces(one_channel)["exits"].customdata) == list(costs)


def test_trial_uses_its_recorded_costs_and_ratios(digits_study, parts):
    for trial in admissible_trials(digits_study.study):
        fig = plot_architecture(trial)
        config = EENNConfig.from_dict(trial.user_attrs["config"])
        _check(fig, config, trial.user_attrs["exit_macs"], parts)
        for ratio in trial.user_attrs["exit_ratios"]:
            assert f"{ratio:.0%} leave" in parts.text(fig)
        assert f"trial {trial.number}" in fig.layout.title.text


def test_untrained_trial_still_has_its_costs(digits_study, parts):
    skipped = next(t for t in digits_study.study.trials if "skipped_training" in t.user_attrs)
    fig = plot_architecture(skipped)
    assert list(parts.traces(fig)["exits"].customdata) == skipped.user_attrs["exit_macs"]
    assert "leave" not in parts.text(fig)


def test_misuse_raises():
    with pytest.raises(ValueError, match="num_classes"):
        plot_architecture(CONFIG)
    with pytest.raises(TypeError, match="EENNConfig or a FrozenTrial"):
        plot_architecture(CONFIG.to_dict())
    bare = optuna.trial.create_trial(values=[0.5, 10.0])
    with pytest.raises(ValueError, match=r"'config'.*NachosObjective"):
        plot_architecture(bare)
