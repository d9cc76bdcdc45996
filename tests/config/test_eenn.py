import dataclasses
import json
import math

import pytest

from optuna_nachos.config import EXIT_STAGES, MAX_DEPTH, NUM_STAGES, ConfigError, EENNConfig

DEPTHS = (2, 3, 4, 2, 3)
KERNELS = ((3, 5), (3, 5, 7), (3, 5, 7, 3), (7, 7), (3, 3, 3))
EXPANDS = ((3, 4), (3, 4, 6), (6, 6, 6, 6), (3, 3), (4, 4, 4))


def make(**overrides):
    fields = {"depths": DEPTHS, "kernel_sizes": KERNELS, "expand_ratios": EXPANDS}
    fields.update(overrides)
    return EENNConfig(**fields)


def test_constants_match_the_nachos_space():
    assert NUM_STAGES == 5
    assert MAX_DEPTH == 4
    assert EXIT_STAGES == (1, 2, 3, 4)
    assert issubclass(ConfigError, ValueError)


def test_defaults_and_properties():
    cfg = make()
    assert cfg.exit_stages == (1, 2, 3, 4)
    assert cfg.resolution == 32
    assert cfg.exit_head == "nachos"
    assert cfg.exit_thresholds is None
    assert cfg.num_early_exits == 4
    assert cfg.num_exits == 5
    no_exits = make(exit_stages=())
    assert (no_exits.num_early_exits, no_exits.num_exits) == (0, 1)


def test_sequences_are_normalized_to_int_tuples():
    cfg = make(
        depths=[2.0, 3, 4, 2, 3],
        kernel_sizes=[list(k) for k in KERNELS],
        expand_ratios=[list(e) for e in EXPANDS],
        exit_stages=[1, 3],
        resolution=64.0,
        exit_thresholds=[0, 1],
    )
    assert cfg.depths == DEPTHS
    assert all(type(d) is int for d in cfg.depths)
    assert cfg.kernel_sizes == KERNELS
    assert isinstance(cfg.kernel_sizes[0], tuple)
    assert cfg.expand_ratios == EXPANDS
    assert cfg.exit_stages == (1, 3)
    assert cfg.resolution == 64 and type(cfg.resolution) is int
    assert cfg.exit_thresholds == (0.0, 1.0)
    assert all(type(t) is float for t in cfg.exit_thresholds)
    assert cfg == make(exit_stages=(1, 3), resolution=64, exit_thresholds=(0.0, 1.0))


def test_equal_configs_hash_equal():
    assert make() == make()
    assert hash(make()) == hash(make())
    assert len({make(), make(), make(exit_stages=(2,))}) == 2
    assert make() != make(resolution=64)


def test_frozen():
    cfg = make()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.depths = (2, 2, 2, 2, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.resolution = 64
    assert cfg.depths == DEPTHS


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"depths": (2, 3, 4, 2)},
            r"depths must have 5 entries \(one per stage\), got \(2, 3, 4, 2\)",
        ),
        ({"depths": (2, 3, 4, 2, 3, 2)}, r"depths must have 5 entries"),
        ({"depths": "23423"}, r"depths must be a sequence of integers"),
        ({"depths": 2}, r"depths must be a sequence of integers"),
        ({"depths": (2.5, 3, 4, 2, 3)}, r"depths must hold integers, got 2\.5"),
        ({"depths": (True, 3, 4, 2, 3)}, r"depths must hold integers, got True"),
        ({"depths": ("2", 3, 4, 2, 3)}, r"depths must hold integers, got '2'"),
        ({"depths": (0, 3, 4, 2, 3)}, r"depth of stage 1 must be between 1 and 4, got 0"),
        ({"depths": (2, 3, 5, 2, 3)}, r"depth of stage 3 must be between 1 and 4, got 5"),
    ],
)
def test_malformed_depths(overrides, message):
    with pytest.raises(ConfigError, match=message):
        make(**overrides)


@pytest.mark.parametrize("field", ["kernel_sizes", "expand_ratios"])
def test_per_layer_fields_need_one_entry_per_layer(field):
    values = list(KERNELS if field == "kernel_sizes" else EXPANDS)
    values[2] = values[2][:3]  # stage 3 has depth 4
    with pytest.raises(
        ConfigError, match=rf"{field} of stage 3 must have one entry per layer \(4\), got 3"
    ):
        make(**{field: tuple(values)})
    with pytest.raises(ConfigError, match=rf"{field} must have 5 entries \(one per stage\)"):
        make(**{field: tuple(values[:4])})
    with pytest.raises(ConfigError, match=rf"{field} must be one sequence per stage"):
        make(**{field: 3})
    values = list(KERNELS if field == "kernel_sizes" else EXPANDS)
    values[1] = (3, "x", 3)
    with pytest.raises(ConfigError, match=rf"{field} of stage 2 must hold integers, got 'x'"):
        make(**{field: tuple(values)})


@pytest.mark.parametrize(("kernel", "stage"), [(4, 2), (2, 1), (0, 5), (-3, 4)])
def test_kernel_sizes_must_be_odd_and_positive(kernel, stage):
    kernels = [list(k) for k in KERNELS]
    kernels[stage - 1][-1] = kernel
    with pytest.raises(
        ConfigError,
        match=rf"kernel sizes must be odd positive integers, got {kernel} in stage {stage}",
    ):
        make(kernel_sizes=kernels)


def test_expand_ratios_must_be_at_least_one():
    expands = [list(e) for e in EXPANDS]
    expands[3][0] = 0
    with pytest.raises(ConfigError, match=r"expand ratios must be integers >= 1, got 0 in stage 4"):
        make(expand_ratios=expands)
    expands[3][0] = 1
    assert make(expand_ratios=expands).expand_ratios[3] == (1, 3)


@pytest.mark.parametrize(
    ("exits", "message"),
    [
        ((2, 1), r"exit_stages must be sorted and without repeats, got \(2, 1\)"),
        ((1, 1, 2), r"exit_stages must be sorted and without repeats, got \(1, 1, 2\)"),
        ((1, 5), r"an early exit can follow stages \(1, 2, 3, 4\) only, got stage 5"),
        ((0, 1), r"an early exit can follow stages \(1, 2, 3, 4\) only, got stage 0"),
        ("12", r"exit_stages must be a sequence of integers"),
        ((1.5,), r"exit_stages must hold integers"),
    ],
)
def test_malformed_exit_stages(exits, message):
    with pytest.raises(ConfigError, match=message):
        make(exit_stages=exits)


@pytest.mark.parametrize(
    ("resolution", "message"),
    [
        (7, r"resolution must be at least 8 pixels, got 7"),
        (0, r"resolution must be at least 8 pixels, got 0"),
        (32.5, r"resolution must be an integer, got 32\.5"),
        ("32", r"resolution must be an integer, got '32'"),
        (True, r"resolution must be an integer, got True"),
        (None, r"resolution must be an integer, got None"),
    ],
)
def test_malformed_resolution(resolution, message):
    with pytest.raises(ConfigError, match=message):
        make(resolution=resolution)


def test_smallest_resolution_is_accepted():
    assert make(resolution=8).resolution == 8


@pytest.mark.parametrize("head", ["", None, 3])
def test_exit_head_must_be_a_name(head):
    with pytest.raises(ConfigError, match=r"exit_head must be a head name"):
        make(exit_head=head)


@pytest.mark.parametrize(
    ("exits", "thresholds", "message"),
    [
        (
            (1, 2, 3, 4),
            (0.5, 0.5, 0.5),
            r"exit_thresholds must have one entry per early exit \(4\), got 3",
        ),
        ((2,), (0.5, 0.5), r"exit_thresholds must have one entry per early exit \(1\), got 2"),
        ((), (0.5,), r"exit_thresholds must have one entry per early exit \(0\), got 1"),
        ((1, 2), (0.5, 1.5), r"exit thresholds must lie in \[0, 1\], got \(0\.5, 1\.5\)"),
        ((1, 2), (-0.1, 0.5), r"exit thresholds must lie in \[0, 1\]"),
        ((1, 2), (math.nan, 0.5), r"exit thresholds must lie in \[0, 1\]"),
    ],
)
def test_malformed_thresholds(exits, thresholds, message):
    with pytest.raises(ConfigError, match=message):
        make(exit_stages=exits, exit_thresholds=thresholds)


@pytest.mark.parametrize("thresholds", [("high", 0.5), 0.5, (None, 0.5), "05"])
def test_non_numeric_thresholds_raise_config_error(thresholds):
    with pytest.raises(ConfigError, match=r"exit_thresholds must be a sequence of numbers"):
        make(exit_stages=(1, 2), exit_thresholds=thresholds)


def test_thresholds_at_the_bounds_are_valid():
    cfg = make(exit_stages=(1, 4), exit_thresholds=(0.0, 1.0))
    assert cfg.exit_thresholds == (0.0, 1.0)
    assert make(exit_stages=(), exit_thresholds=()).exit_thresholds == ()


def test_to_dict_is_plain_json_data():
    cfg = make(exit_stages=(2, 4), exit_thresholds=(0.25, 0.75), resolution=40)
    assert cfg.to_dict() == {
        "depths": [2, 3, 4, 2, 3],
        "kernel_sizes": [[3, 5], [3, 5, 7], [3, 5, 7, 3], [7, 7], [3, 3, 3]],
        "expand_ratios": [[3, 4], [3, 4, 6], [6, 6, 6, 6], [3, 3], [4, 4, 4]],
        "exit_stages": [2, 4],
        "resolution": 40,
        "exit_head": "nachos",
        "exit_thresholds": [0.25, 0.75],
    }
    assert make().to_dict()["exit_thresholds"] is None


@pytest.mark.parametrize(
    "cfg",
    [
        make(),
        make(exit_stages=()),
        make(exit_stages=(1, 3), exit_thresholds=(0.1, 0.2), exit_head="pool_linear"),
        make(depths=(1, 1, 1, 1, 1), kernel_sizes=((3,),) * 5, expand_ratios=((1,),) * 5),
    ],
)
def test_round_trips(cfg):
    assert EENNConfig.from_dict(cfg.to_dict()) == cfg
    assert EENNConfig.from_json(cfg.to_json()) == cfg
    # tuples become lists through JSON; the configuration still compares equal
    data = json.loads(json.dumps(cfg.to_dict()))
    assert isinstance(data["depths"], list)
    rebuilt = EENNConfig.from_dict(data)
    assert rebuilt == cfg
    assert isinstance(rebuilt.kernel_sizes[0], tuple)
    assert hash(rebuilt) == hash(cfg)
    assert json.loads(cfg.to_json()) == cfg.to_dict()


def test_from_dict_fills_defaults_for_optional_keys():
    data = {"depths": DEPTHS, "kernel_sizes": KERNELS, "expand_ratios": EXPANDS}
    assert EENNConfig.from_dict(data) == make()


def test_from_dict_rejects_unknown_keys():
    data = make().to_dict()
    data["width"] = 1.2
    data["zeta"] = 0
    with pytest.raises(ConfigError, match=r"unknown configuration keys \['width', 'zeta'\]; known"):
        EENNConfig.from_dict(data)


@pytest.mark.parametrize("key", ["depths", "kernel_sizes", "expand_ratios"])
def test_from_dict_rejects_missing_keys(key):
    data = make().to_dict()
    del data[key]
    with pytest.raises(ConfigError, match=rf"configuration lacks the keys \['{key}'\]"):
        EENNConfig.from_dict(data)


def test_from_dict_rejects_non_mappings_and_invalid_values():
    with pytest.raises(ConfigError, match=r"expected a mapping, got list"):
        EENNConfig.from_dict([("depths", DEPTHS)])
    data = make().to_dict()
    data["depths"][0] = 9
    with pytest.raises(ConfigError, match=r"depth of stage 1 must be between 1 and 4, got 9"):
        EENNConfig.from_dict(data)
    with pytest.raises(json.JSONDecodeError):
        EENNConfig.from_json("{not json")


def test_short_name_summarizes_the_network():
    name = make(exit_stages=(1, 3)).short_name()
    assert name.startswith("d23423 ")
    assert "[33,54|33,54,76|36,56,76,36|73,73|34,34,34]" in name
    assert "exits@1,3" in name
    assert name.endswith("r32")
    assert "exits@none" in make(exit_stages=()).short_name()
    assert make().short_name() != make(exit_stages=(1,)).short_name()
