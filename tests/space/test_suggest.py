import warnings

import optuna
import pytest

from optuna_nachos.config import ConfigError, EENNConfig
from optuna_nachos.space import MobileNetV3Space, config_from_params, suggest_eenn

CONFIG = EENNConfig(
    depths=(2, 3, 4, 2, 3),
    kernel_sizes=((3, 5), (3, 5, 7), (3, 5, 7, 3), (7, 7), (3, 3, 3)),
    expand_ratios=((3, 4), (3, 4, 6), (6, 6, 6, 6), (3, 3), (4, 4, 4)),
    exit_stages=(1, 3),
)


def fixed_params(space=None, config=CONFIG):
    return (space or MobileNetV3Space()).params_from_config(config)


def test_suggest_eenn_on_a_fixed_trial():
    trial = optuna.trial.FixedTrial(fixed_params())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every value lies within its choices
        cfg = suggest_eenn(trial)
    assert cfg == CONFIG
    assert len(trial.params) == 49
    assert trial.params == fixed_params()


def test_suggest_eenn_with_a_space():
    space = MobileNetV3Space(resolutions=(32, 64), exit_heads=("nachos", "pool_linear"))
    config = EENNConfig(**{**CONFIG.to_dict(), "resolution": 64, "exit_head": "pool_linear"})
    params = space.params_from_config(config)
    assert suggest_eenn(optuna.trial.FixedTrial(params), space) == config
    assert config_from_params(params, space) == config
    with pytest.raises(ConfigError, match=r"parameter 'resolution' is missing"):
        config_from_params(fixed_params(), space)


@pytest.mark.parametrize(
    ("name", "value"),
    [("stage1_depth", 5), ("stage3_layer4_kernel", 9), ("exit_after_stage2", "yes")],
)
def test_out_of_range_fixed_values_raise_config_error(name, value):
    params = {**fixed_params(), name: value}
    with pytest.raises(ConfigError, match=name), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # FixedTrial itself only warns
        suggest_eenn(optuna.trial.FixedTrial(params))


def test_fixed_trial_integer_for_a_boolean_raises_config_error():
    # FixedTrial accepts 1 for True (1 == True); the space does not
    params = {**fixed_params(), "exit_after_stage2": 1}
    with pytest.raises(ConfigError, match=r"'exit_after_stage2' = 1 is not among its choices"):
        suggest_eenn(optuna.trial.FixedTrial(params))


def test_fixed_trial_missing_parameter_raises():
    params = fixed_params()
    del params["stage5_layer4_expand"]
    with pytest.raises(ConfigError, match=r"stage5_layer4_expand"):
        suggest_eenn(optuna.trial.FixedTrial(params))


def test_suggest_eenn_on_a_live_trial():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    cfg = suggest_eenn(trial)
    assert isinstance(cfg, EENNConfig)
    assert set(trial.params) == set(MobileNetV3Space().distributions())
    assert trial.distributions == MobileNetV3Space().distributions()
    assert config_from_params(trial.params) == cfg


def test_enqueued_config_is_suggested_back():
    space = MobileNetV3Space()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.enqueue_trial(space.params_from_config(CONFIG))
    assert suggest_eenn(study.ask(), space) == CONFIG


def test_config_from_params_defaults_to_the_nachos_space():
    params = fixed_params()
    assert config_from_params(params) == CONFIG
    assert config_from_params(params, None) == MobileNetV3Space().config_from_params(params)
    edanas = MobileNetV3Space.edanas()
    with pytest.raises(ConfigError, match=r"parameter 'exit1_threshold' is missing"):
        config_from_params(params, edanas)
