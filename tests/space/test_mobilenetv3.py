import math
import random
import re

import optuna
import pytest
import torch
from optuna.distributions import CategoricalDistribution

from optuna_nachos.config import ConfigError, EENNConfig
from optuna_nachos.models import build_eenn
from optuna_nachos.space import EDANAS_THRESHOLD_GENES, MobileNetV3Space

LAYER_PARAMS = [
    f"stage{s}_layer{layer}_{kind}"
    for s in range(1, 6)
    for layer in range(1, 5)
    for kind in ("kernel", "expand")
]
DEPTH_PARAMS = [f"stage{s}_depth" for s in range(1, 6)]
EXIT_PARAMS = [f"exit_after_stage{s}" for s in range(1, 5)]
# (sum over depths of (kernels * expands) ** depth) ** stages * 2 ** exit bits
NACHOS_SIZE = (9**2 + 9**3 + 9**4) ** 5 * 2**4


def sample_params(space, seed):
    """A valid parameter set drawn at random from ``space``."""
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed)).ask()
    space.suggest(trial)
    return trial.params


def test_defaults_are_the_nachos_space():
    space = MobileNetV3Space()
    assert space.depths == (2, 3, 4)
    assert space.kernel_sizes == (3, 5, 7)
    assert space.expand_ratios == (3, 4, 6)
    assert space.exit_stages == (1, 2, 3, 4)
    assert space.resolutions == (32,)
    assert space.exit_heads == ("nachos",)
    assert space.min_exits == 1
    assert space.threshold_genes is None
    assert space.settings() == {
        "depths": [2, 3, 4],
        "kernel_sizes": [3, 5, 7],
        "expand_ratios": [3, 4, 6],
        "exit_stages": [1, 2, 3, 4],
        "resolutions": [32],
        "exit_heads": ["nachos"],
        "min_exits": 1,
        "threshold_genes": None,
    }


def test_forty_nine_flat_parameters():
    dists = MobileNetV3Space().distributions()
    assert len(dists) == 49
    assert set(dists) == set(DEPTH_PARAMS + LAYER_PARAMS + EXIT_PARAMS)
    # suggestion order: stage by stage, then the exits
    assert list(dists)[:9] == ["stage1_depth"] + LAYER_PARAMS[:8]
    assert list(dists)[-4:] == EXIT_PARAMS
    assert all(isinstance(d, CategoricalDistribution) for d in dists.values())
    for name in DEPTH_PARAMS:
        assert dists[name].choices == (2, 3, 4)
    for name in LAYER_PARAMS:
        assert dists[name].choices == ((3, 5, 7) if name.endswith("kernel") else (3, 4, 6))
    for name in EXIT_PARAMS:
        assert dists[name].choices == (False, True)
    for dist in dists.values():  # primitive choices only: SQLite would turn tuples into lists
        assert all(type(c) in (int, float, str, bool) for c in dist.choices)


def test_resolution_and_head_parameters_appear_only_when_searched():
    space = MobileNetV3Space(resolutions=(32, 64), exit_heads=("nachos", "pool_linear"))
    dists = space.distributions()
    assert len(dists) == 51
    assert dists["resolution"].choices == (32, 64)
    assert dists["exit_head"].choices == ("nachos", "pool_linear")
    assert space.num_configurations() == NACHOS_SIZE * 4
    params = sample_params(space, seed=3)
    cfg = space.config_from_params({**params, "resolution": 64, "exit_head": "pool_linear"})
    assert (cfg.resolution, cfg.exit_head) == (64, "pool_linear")
    single = MobileNetV3Space(resolutions=(48,), exit_heads=("pool_linear",))
    assert "resolution" not in single.distributions()
    cfg = single.config_from_params(sample_params(single, seed=3))
    assert (cfg.resolution, cfg.exit_head) == (48, "pool_linear")


def test_num_configurations():
    space = MobileNetV3Space()
    assert space.num_configurations() == NACHOS_SIZE == 7371**5 * 16
    assert 3.4e20 < space.num_configurations() < 3.5e20
    assert math.isclose(space.log10_size(), math.log10(NACHOS_SIZE))
    assert MobileNetV3Space(exit_stages=(2,)).num_configurations() == 7371**5 * 2
    small = MobileNetV3Space(depths=(1,), kernel_sizes=(3,), expand_ratios=(3, 6))
    assert small.num_configurations() == 2**5 * 2**4
    assert MobileNetV3Space.edanas().num_configurations() == 7371**5 * 3**4


def test_num_configurations_counts_distinct_networks():
    # a tiny space: one layer per stage with two kernels, and one exit bit: 2**5 * 2 networks
    space = MobileNetV3Space(
        depths=(1,), kernel_sizes=(3, 5), expand_ratios=(3,), exit_stages=(4,), min_exits=0
    )
    rng = random.Random(0)
    dists = space.distributions()
    configs = {
        space.config_from_params({n: rng.choice(d.choices) for n, d in dists.items()})
        for _ in range(2000)
    }
    assert len(configs) == space.num_configurations() == 2**5 * 2


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"depths": ()}, r"depths must offer at least one choice"),
        ({"kernel_sizes": []}, r"kernel_sizes must offer at least one choice"),
        ({"expand_ratios": ()}, r"expand_ratios must offer at least one choice"),
        ({"exit_stages": ()}, r"exit_stages must offer at least one choice"),
        ({"resolutions": ()}, r"resolutions must offer at least one choice"),
        ({"exit_heads": ()}, r"exit_heads must offer at least one choice"),
        ({"depths": (2, 5)}, r"a stage holds 1 to 4 layers; depth 5 is out"),
        ({"depths": (0, 2)}, r"a stage holds 1 to 4 layers; depth 0 is out"),
        ({"depths": (2, 2)}, r"depths must not repeat choices"),
        ({"depths": 3}, r"depths must be a sequence of choices"),
        ({"depths": (2, 3.0)}, r"depths must hold integers, got 3\.0"),
        ({"depths": (True, 2)}, r"depths must hold integers, got True"),
        ({"kernel_sizes": (3, 4)}, r"kernel sizes must be odd positive integers, got 4"),
        ({"kernel_sizes": "357"}, r"kernel_sizes must be a sequence of choices"),
        ({"expand_ratios": (0, 3)}, r"expand ratios must be >= 1"),
        ({"exit_stages": (1, 5)}, r"early exits can follow stages \(1, 2, 3, 4\), not 5"),
        ({"resolutions": (4, 32)}, r"resolutions must be at least 8 pixels"),
        ({"exit_heads": ("nachos", "mlp")}, r"unknown exit head 'mlp'; registered exit heads: \["),
        ({"exit_heads": (1,)}, r"unknown exit head 1; registered exit heads"),
        ({"min_exits": 5}, r"min_exits=5 cannot be met with exits allowed after stages"),
        ({"min_exits": 2, "exit_stages": (3,)}, r"min_exits=2 cannot be met"),
        ({"min_exits": -1}, r"min_exits must be a non-negative integer, got -1"),
        ({"min_exits": True}, r"min_exits must be a non-negative integer, got True"),
        ({"min_exits": 1.0}, r"min_exits must be a non-negative integer, got 1\.0"),
        ({"threshold_genes": ()}, r"threshold_genes must offer at least one choice"),
        ({"threshold_genes": (0.0, 1.0)}, r"threshold genes must lie in \(0, 1\]"),
        ({"threshold_genes": (0.5, 1.5)}, r"threshold genes must lie in \(0, 1\]"),
        ({"threshold_genes": ("a",)}, r"threshold_genes must hold numbers"),
    ],
)
def test_invalid_settings_are_rejected(settings, message):
    with pytest.raises(ConfigError, match=message):
        MobileNetV3Space(**settings)


def test_settings_are_keyword_only():
    with pytest.raises(TypeError):
        MobileNetV3Space((2, 3))


def test_exit_stages_are_sorted_and_unused_stages_are_never_exits():
    space = MobileNetV3Space(exit_stages=(3, 1))
    assert space.exit_stages == (1, 3)
    assert [n for n in space.distributions() if n.startswith("exit")] == [
        "exit_after_stage1",
        "exit_after_stage3",
    ]
    params = sample_params(space, seed=0)
    params.update(exit_after_stage1=True, exit_after_stage3=True, exit_after_stage2=True)
    assert space.config_from_params(params).exit_stages == (1, 3)


def test_equality_hash_and_repr():
    assert MobileNetV3Space() == MobileNetV3Space(depths=[2, 3, 4])
    assert hash(MobileNetV3Space()) == hash(MobileNetV3Space(depths=[2, 3, 4]))
    assert MobileNetV3Space() != MobileNetV3Space(min_exits=0)
    assert MobileNetV3Space() != MobileNetV3Space.edanas()
    assert MobileNetV3Space() != "MobileNetV3Space()"
    text = repr(MobileNetV3Space(min_exits=0))
    assert text.startswith("MobileNetV3Space(depths=[2, 3, 4], ")
    assert "min_exits=0" in text


def test_config_from_params_uses_only_the_first_depth_layers():
    space = MobileNetV3Space()
    params = {name: dist.choices[0] for name, dist in space.distributions().items()}
    params.update(stage1_depth=3, stage1_layer1_kernel=7, stage1_layer3_expand=6)
    params.update(stage1_layer4_kernel=5, exit_after_stage2=True, exit_after_stage4=True)
    cfg = space.config_from_params(params)
    assert cfg.depths == (3, 2, 2, 2, 2)
    assert cfg.kernel_sizes[0] == (7, 3, 3)  # layer 4 of stage 1 is unused
    assert cfg.expand_ratios[0] == (3, 3, 6)
    assert cfg.kernel_sizes[1:] == ((3, 3),) * 4
    assert cfg.exit_stages == (2, 4)
    assert cfg.exit_thresholds is None
    assert (cfg.resolution, cfg.exit_head) == (32, "nachos")
    # changing an unused layer does not change the network
    assert space.config_from_params({**params, "stage2_layer4_kernel": 7}) == cfg


def test_config_from_params_errors():
    space = MobileNetV3Space()
    params = sample_params(space, seed=1)
    missing = dict(params)
    del missing["stage3_layer2_expand"]
    with pytest.raises(ConfigError, match=r"parameter 'stage3_layer2_expand' is missing; .* 49"):
        space.config_from_params(missing)
    with pytest.raises(
        ConfigError, match=r"'stage2_depth' = 5 is not among its choices \(2, 3, 4\)"
    ):
        space.config_from_params({**params, "stage2_depth": 5})
    with pytest.raises(ConfigError, match=r"'stage1_layer1_kernel' = '3' is not among its choices"):
        space.config_from_params({**params, "stage1_layer1_kernel": "3"})
    with pytest.raises(ConfigError, match=r"'stage1_layer4_kernel' = 9"):
        space.config_from_params({**params, "stage1_layer4_kernel": 9})  # even if unused


def test_booleans_and_integers_do_not_match():
    space = MobileNetV3Space()
    params = sample_params(space, seed=2)
    with pytest.raises(ConfigError, match=r"'exit_after_stage1' = 1 is not among its choices"):
        space.config_from_params({**params, "exit_after_stage1": 1})
    with pytest.raises(ConfigError, match=r"'exit_after_stage2' = 0 is not among its choices"):
        space.config_from_params({**params, "exit_after_stage2": 0})
    with pytest.raises(ConfigError, match=r"'exit_after_stage1' = 'True' is not among"):
        space.config_from_params({**params, "exit_after_stage1": "True"})
    with pytest.raises(ConfigError, match=r"'stage1_depth' = True is not among its choices"):
        space.config_from_params({**params, "stage1_depth": True})
    cfg = space.config_from_params({**params, "exit_after_stage1": True})
    assert 1 in cfg.exit_stages
    # integral floats do match integer choices and come back as the choice itself
    cfg = space.config_from_params({**params, "stage1_depth": 4.0})
    assert cfg.depths[0] == 4 and type(cfg.depths[0]) is int


def test_parameters_outside_the_space_are_ignored():
    space = MobileNetV3Space()
    params = sample_params(space, seed=4)
    extra = {**params, "lr": 0.1, "optimizer": "sgd", "resolution": 999, "exit_head": "x"}
    assert space.config_from_params(extra) == space.config_from_params(params)


@pytest.mark.parametrize("seed", range(5))
def test_params_from_config_round_trip(seed):
    space = MobileNetV3Space(resolutions=(32, 40), exit_heads=("nachos", "pool_linear"))
    params = sample_params(space, seed)
    cfg = space.config_from_params(params)
    encoded = space.params_from_config(cfg)
    assert set(encoded) == set(space.distributions())
    assert space.config_from_params(encoded) == cfg
    for s in range(1, 6):  # unused layers get the first choices
        for layer in range(cfg.depths[s - 1] + 1, 5):
            assert encoded[f"stage{s}_layer{layer}_kernel"] == 3
            assert encoded[f"stage{s}_layer{layer}_expand"] == 3
    for name, value in encoded.items():  # the used parameters are the trial's own
        layer = re.fullmatch(r"stage(\d)_layer(\d)_\w+", name)
        if layer and int(layer[2]) > cfg.depths[int(layer[1]) - 1]:
            continue
        assert value == params[name] and type(value) is type(params[name]), name


def test_params_from_config_rejects_configs_outside_the_space():
    space = MobileNetV3Space(exit_stages=(2, 3))
    cfg = space.config_from_params(sample_params(space, seed=0))
    outside = [
        EENNConfig(**{**cfg.to_dict(), "exit_stages": (1, 2)}),
        EENNConfig(**{**cfg.to_dict(), "resolution": 64}),
        EENNConfig(**{**cfg.to_dict(), "exit_head": "pool_linear"}),
        EENNConfig(**{**cfg.to_dict(), "exit_thresholds": [0.5] * cfg.num_early_exits}),
    ]
    for config in outside:
        with pytest.raises(ConfigError):
            space.params_from_config(config)
    kernels = [list(k) for k in cfg.kernel_sizes]
    kernels[0][0] = 9
    with pytest.raises(ConfigError, match=r"'stage1_layer1_kernel' = 9 is not among"):
        space.params_from_config(EENNConfig(**{**cfg.to_dict(), "kernel_sizes": kernels}))
    with pytest.raises(ConfigError, match=r"exits after stages \[1\] are not allowed"):
        space.params_from_config(EENNConfig(**{**cfg.to_dict(), "exit_stages": (1, 2)}))


def test_exit_deficit_and_min_exits():
    default = MobileNetV3Space()
    params = sample_params(default, seed=5)
    no_exit = {**params, **dict.fromkeys(EXIT_PARAMS, False)}
    cfg = default.config_from_params(no_exit)
    assert cfg.exit_stages == ()
    assert default.exit_deficit(cfg) == 1
    assert MobileNetV3Space(min_exits=0).exit_deficit(cfg) == 0
    two = MobileNetV3Space(min_exits=2)
    assert two.exit_deficit(cfg) == 2
    one_exit = default.config_from_params({**no_exit, "exit_after_stage3": True})
    assert default.exit_deficit(one_exit) == 0
    assert two.exit_deficit(one_exit) == 1
    all_exits = default.config_from_params({**params, **dict.fromkeys(EXIT_PARAMS, True)})
    assert two.exit_deficit(all_exits) == 0
    assert MobileNetV3Space(min_exits=4).exit_deficit(all_exits) == 0


def test_edanas_encoding():
    space = MobileNetV3Space.edanas()
    assert EDANAS_THRESHOLD_GENES == (0.1, 0.2, 1.0)
    assert space.threshold_genes == (0.1, 0.2, 1.0)
    assert space.min_exits == 1
    dists = space.distributions()
    assert len(dists) == 49
    names = [f"exit{s}_threshold" for s in range(1, 5)]
    assert list(dists)[-4:] == names
    assert not any(n.startswith("exit_after") for n in dists)
    for name in names:
        assert dists[name].choices == (0.1, 0.2, 1.0)
    params = sample_params(space, seed=0)
    params.update(exit1_threshold=0.1, exit2_threshold=1.0, exit3_threshold=0.2)
    params.update(exit4_threshold=1.0)
    cfg = space.config_from_params(params)
    assert cfg.exit_stages == (1, 3)
    assert cfg.exit_thresholds == (0.1, 0.2)
    encoded = space.params_from_config(cfg)
    assert {n: encoded[n] for n in names} == dict(zip(names, (0.1, 1.0, 0.2, 1.0)))
    assert space.config_from_params(encoded) == cfg
    none = space.config_from_params({**params, **dict.fromkeys(names, 1.0)})
    assert none.exit_stages == () and none.exit_thresholds == ()
    assert space.exit_deficit(none) == 1
    with pytest.raises(ConfigError, match=r"'exit1_threshold' = 0\.5 is not among"):
        space.config_from_params({**params, "exit1_threshold": 0.5})
    with pytest.raises(ConfigError, match=r"needs configurations with exit_thresholds"):
        space.params_from_config(EENNConfig(**{**cfg.to_dict(), "exit_thresholds": None}))


def test_edanas_networks_predict_with_their_genes():
    space = MobileNetV3Space.edanas(min_exits=0)
    params = sample_params(space, seed=0)
    params.update(exit1_threshold=0.2, exit2_threshold=1.0, exit3_threshold=0.1)
    params.update(exit4_threshold=1.0)
    cfg = space.config_from_params(params)
    torch.manual_seed(0)
    model = build_eenn(cfg, num_classes=10).eval()
    x = torch.randn(4, 3, 32, 32)
    prediction = model.predict(x)  # no explicit thresholds: the genes are used
    assert prediction.predictions.shape == prediction.exit_indices.shape == (4,)
    static = model.predict_static(x)
    assert torch.equal(prediction.exit_indices, static.exit_indices)
    # the genes behave exactly like explicit thresholds
    explicit = model.predict(x, [0.2, 0.1])
    assert torch.equal(prediction.exit_indices, explicit.exit_indices)
    assert torch.equal(prediction.predictions, explicit.predictions)


def test_edanas_accepts_other_genes_and_settings():
    space = MobileNetV3Space.edanas(threshold_genes=(0.5, 1.0), exit_stages=(2, 3))
    assert space.threshold_genes == (0.5, 1.0)
    assert list(space.distributions())[-2:] == ["exit2_threshold", "exit3_threshold"]
    assert space.num_configurations() == 7371**5 * 2**2
    integral = MobileNetV3Space(threshold_genes=(1,))
    assert integral.threshold_genes == (1.0,)
