"""The analytic cost model: hand-computed pieces, exact agreement with fvcore, the pool rule."""

from __future__ import annotations

import random
from itertools import pairwise

import pytest
from torch import nn

from optuna_nachos.config import EENNConfig
from optuna_nachos.cost import (
    CONVENTIONS,
    _analytic,
    count_exit_macs,
    count_exit_params,
    exit_macs,
    exit_params,
    exit_pools_analytic,
    module_macs,
    total_params,
)
from optuna_nachos.models import (
    MBConvExitHead,
    NachosExitHead,
    PoolLinearExitHead,
    build_eenn,
    get_exit_head,
    linear_cost,
    list_exit_heads,
    make_divisible,
    profile_macs,
    register_exit_head,
)
from optuna_nachos.models import _heads as heads_module
from optuna_nachos.space import MobileNetV3Space

RESOLUTIONS = (32, 28, 64, 33)
HEADS = ("nachos", "pool_linear", "mbconv")
NUM_CLASSES = (2, 10, 100)
NUM_RANDOM_CASES = 40


def _case(index: int) -> dict:
    rng = random.Random(1000 + index)
    if index % 10 == 0:
        exits: tuple[int, ...] | None = ()
    elif index % 10 == 5:
        exits = (1, 2, 3, 4)
    else:
        exits = None
    return {
        "rng": rng,
        "resolution": RESOLUTIONS[index % 4],
        "exit_head": HEADS[(index // 4) % len(HEADS)],
        "in_channels": (3, 1)[(index // 8) % 2],
        "num_classes": NUM_CLASSES[index % 3],
        "convention": CONVENTIONS[(index // 2) % 2],
        "exit_stages": exits,
    }


def _module_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _stage_sides(resolution: int) -> list[int]:
    """Output side of stages 1..5 (odd kernels, padding k // 2: only strides matter)."""
    side = (resolution - 1) // 2 + 1
    sides = []
    for stride in (2, 2, 2, 1, 2):
        side = (side - 1) // stride + 1
        sides.append(side)
    return sides


# --- hand-computed pieces -------------------------------------------------------------------


def test_stem_macs_by_hand() -> None:
    macs, params, side = _analytic._stem(3, 32)
    conv = 16 * 16 * 16 * 3 * 9
    depthwise = 16 * 16 * 16 * 9
    project = 16 * 16 * 16 * 16
    assert side == 16
    assert macs == conv + depthwise + project == 212_992
    # conv 3->16 + BN, depthwise 16x3x3 + BN, project 16->16 + BN
    assert params == (16 * 3 * 9 + 32) + (16 * 9 + 32) + (16 * 16 + 32)


def test_stem_odd_resolution_and_grey_input() -> None:
    macs, _, side = _analytic._stem(1, 33)
    assert side == 17  # (33 + 2 - 3) // 2 + 1
    area = 17 * 17
    assert macs == area * 16 * 1 * 9 + area * 16 * 9 + area * 16 * 16


def test_mbconv_with_squeeze_excitation_by_hand() -> None:
    # First layer of stage 2: 24 -> 40, kernel 5, stride 2, expand 4, SE, on an 8x8 map.
    macs, params, side = _analytic._mbconv(24, 40, 5, 2, 4, True, 8)
    hidden = make_divisible(24 * 4)
    squeezed = make_divisible(hidden / 4)
    assert (hidden, squeezed, side) == (96, 24, 4)
    expected = 8 * 8 * 24 * hidden + 4 * 4 * hidden * 25 + 2 * hidden * squeezed
    expected += 4 * 4 * hidden * 40
    assert macs == expected
    module = build_eenn(
        EENNConfig(
            depths=(1,) * 5,
            kernel_sizes=((3,), (5,), (3,), (3,), (3,)),
            expand_ratios=((3,), (4,), (3,), (3,), (3,)),
        ),
        num_classes=10,
    ).segments[1][0]
    assert params == _module_params(module)


def test_final_classifier_by_hand() -> None:
    macs, params = _analytic._final(160, 1, 10)
    assert macs == 160 * 960 + 960 * 1280 + 1280 * 10
    assert params == 160 * 960 + 2 * 960 + 960 * 1280 + 1280 + 1280 * 10 + 10


def test_head_formulas_by_hand() -> None:
    macs, _ = NachosExitHead.cost(24, 8, 10, pool=2)
    area = 4 * 4
    assert macs == area * 9 * (24 * 32 + 32 * 64 + 64 * 128) + 128 * area * 11
    macs, _ = PoolLinearExitHead.cost(112, 2, 10)
    assert macs == 112 * 11
    # MBConv head on 24 channels: expand to 72, depthwise 3x3, project to 16, linear.
    macs, _ = MBConvExitHead.cost(24, 8, 10, pool=2)
    assert macs == area * (24 * 72 + 72 * 9 + 72 * 16) + 16 * 11


@pytest.mark.parametrize("name", HEADS)
def test_builtin_head_formulas_equal_fvcore_on_the_built_head(name: str) -> None:
    spec = get_exit_head(name)
    for in_channels in (16, 24, 40, 80, 112, 160):
        for side, num_classes in ((1, 2), (2, 10), (3, 100), (7, 10), (8, 2), (14, 10)):
            for pool in (p for p in spec.pool_sizes if p <= side):
                head = spec.factory(in_channels, (side, side), num_classes, pool=pool)
                counted = module_macs(head, (in_channels, side, side))[""]
                expected = (counted, _module_params(head))
                assert spec.cost(in_channels, side, num_classes, pool=pool) == expected, (
                    in_channels,
                    side,
                    num_classes,
                    pool,
                )


# --- exact agreement with fvcore -----------------------------------------------------------


@pytest.mark.parametrize("index", range(NUM_RANDOM_CASES))
def test_analytic_equals_fvcore(index: int, random_config) -> None:
    case = _case(index)
    config = random_config(
        case["rng"],
        resolution=case["resolution"],
        exit_head=case["exit_head"],
        exit_stages=case["exit_stages"],
    )
    counts = {"num_classes": case["num_classes"], "in_channels": case["in_channels"]}
    model = build_eenn(config, **counts)
    shape = (case["in_channels"], config.resolution, config.resolution)

    counted = count_exit_macs(model, shape, convention=case["convention"])
    analytic = exit_macs(config, convention=case["convention"], **counts)
    assert analytic == counted
    assert len(analytic) == config.num_exits
    assert all(isinstance(m, int) for m in analytic)

    assert exit_pools_analytic(config, **counts) == list(model.exit_pools)

    params = exit_params(config, **counts)
    passed = 0
    segments = [_module_params(s) for s in model.segments]
    expected = []
    for position, head in zip(model.exit_positions, model.exit_heads, strict=True):
        expected.append(sum(segments[: position + 1]) + _module_params(head) + passed)
        passed += _module_params(head)
    expected.append(sum(segments) + _module_params(model.final_head) + passed)
    assert params == expected
    assert total_params(config, **counts) == _module_params(model)


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_fvcore_method_matches_analytic(convention: str, small_config) -> None:
    config = small_config(exit_stages=(2, 4), resolution=28)
    kwargs = {"num_classes": 10, "in_channels": 1, "convention": convention}
    assert exit_macs(config, method="fvcore", **kwargs) == exit_macs(config, **kwargs)


def test_final_nachos_cost_equals_hook_count_of_the_whole_network(small_config) -> None:
    """The last exit charges the whole network: an independent hook-based count agrees."""
    import torch

    config = small_config(exit_stages=(1, 3), resolution=33)
    model = build_eenn(config, num_classes=100)
    total, _ = profile_macs(model, torch.zeros(1, 3, 33, 33))
    assert exit_macs(config, num_classes=100)[-1] == total


MBCONV_EXIT_SETS = ((1, 2, 3, 4), (1, 3), (2,), (4,))


def _space_config(resolution: int, exit_stages: tuple[int, ...], rng: random.Random):
    """A random configuration of ``MobileNetV3Space`` with MBConv heads at ``exit_stages``."""
    space = MobileNetV3Space(resolutions=(resolution,), exit_heads=("mbconv",))
    params = {name: rng.choice(d.choices) for name, d in space.distributions().items()}
    params.update({f"exit_after_stage{s}": s in exit_stages for s in (1, 2, 3, 4)})
    return space.config_from_params(params)


def _check_against_fvcore(
    config: EENNConfig, *, num_classes: int, in_channels: int, convention: str = "nachos"
) -> None:
    """Analytic MACs, parameters and pools of ``config`` equal fvcore's on the built network."""
    counts = {"num_classes": num_classes, "in_channels": in_channels}
    model = build_eenn(config, **counts)
    shape = (in_channels, config.resolution, config.resolution)
    parts = _analytic.analyze(config, **counts)
    by_module = module_macs(model, shape)
    assert parts.head_macs == tuple(
        by_module.get(f"exit_heads.{k}", 0) for k in range(len(model.exit_heads))
    )
    assert parts.head_params == tuple(_module_params(h) for h in model.exit_heads)
    assert parts.exit_pools == tuple(model.exit_pools)
    assert exit_pools_analytic(config, **counts) == list(model.exit_pools)
    expected = count_exit_macs(model, shape, convention=convention)
    assert exit_macs(config, convention=convention, **counts) == expected
    assert exit_params(config, **counts) == count_exit_params(model)
    assert total_params(config, **counts) == _module_params(model)


@pytest.mark.parametrize("resolution", [16, 28, 32, 224])
def test_mbconv_head_analytic_equals_fvcore(resolution: int) -> None:
    rng = random.Random(resolution)
    for index, exit_stages in enumerate(MBCONV_EXIT_SETS):
        config = _space_config(resolution, exit_stages, rng)
        assert config.exit_head == "mbconv" and config.exit_stages == exit_stages
        _check_against_fvcore(
            config,
            num_classes=(10, 2, 100)[index % 3],
            in_channels=3,
            convention=CONVENTIONS[index % 2],
        )
    _check_against_fvcore(_space_config(resolution, (1, 2), rng), num_classes=10, in_channels=1)


@pytest.fixture
def own_registry(monkeypatch):
    """A copy of the exit head registry that the test may register into."""
    monkeypatch.setattr(heads_module, "_EXIT_HEADS", heads_module._EXIT_HEADS.copy())
    yield
    _analytic.clear_caches()


@pytest.mark.usefixtures("own_registry")
@pytest.mark.parametrize("resolution", [16, 28, 224])
def test_pooled_mbconv_heads_equal_fvcore(resolution: int) -> None:
    # The rule takes the first pool size that keeps the costs increasing. In this space the
    # MBConv head is cheap next to the backbone and the built-in order (1, 2, 4) never pools
    # it; trying 4 first pools every head whose features allow it.
    register_exit_head(
        "mbconv_pooled", MBConvExitHead, pool_sizes=(4, 2, 1), cost=MBConvExitHead.cost
    )
    rng = random.Random(resolution)
    config = _space_config(resolution, (1, 2, 3, 4), rng)
    config = EENNConfig(**{**config.to_dict(), "exit_head": "mbconv_pooled"})
    pools = exit_pools_analytic(config, num_classes=10)
    assert {2, 4} & set(pools), pools
    _check_against_fvcore(config, num_classes=10, in_channels=3)


# --- structure of the costs -----------------------------------------------------------------


@pytest.mark.parametrize("exit_head", HEADS)
def test_costs_increase_along_exits(exit_head: str, random_config) -> None:
    rng = random.Random(7)
    for _ in range(200):
        config = random_config(
            rng,
            resolution=rng.choice(RESOLUTIONS),
            exit_head=exit_head,
            exit_stages=(1, 2, 3, 4),
        )
        nachos = exit_macs(config, num_classes=10)
        assert all(a < b for a, b in pairwise(nachos)), config
        reference = exit_macs(config, num_classes=10, convention="reference")
        pools = exit_pools_analytic(config, num_classes=10)
        sizes = get_exit_head(exit_head).pool_sizes
        sides = _stage_sides(config.resolution)
        for j, pool in enumerate(pools):
            feasible = reference[j] < reference[j + 1]
            largest = max([p for p in sizes if p <= sides[j]] or [1])
            # Either the rule made exit j cheaper than the next one, or it ran out of pools.
            assert feasible or pool == largest, (config, reference, pools)


def test_pooling_rule_picks_the_first_cheaper_pool(small_config) -> None:
    config = small_config(resolution=32)
    pools = exit_pools_analytic(config, num_classes=10)
    reference = exit_macs(config, num_classes=10, convention="reference")
    assert pools == [4, 2, 1, 1]
    assert all(a < b for a, b in pairwise(reference))
    # pool_linear heads are never pooled
    linear = small_config(resolution=32, exit_head="pool_linear")
    assert exit_pools_analytic(linear, num_classes=10) == [1, 1, 1, 1]


def test_reference_convention_omits_passed_heads(random_config) -> None:
    rng = random.Random(3)
    for _ in range(100):
        config = random_config(rng, resolution=rng.choice(RESOLUTIONS))
        nachos = exit_macs(config, num_classes=10)
        reference = exit_macs(config, num_classes=10, convention="reference")
        assert nachos[0] == reference[0]
        assert all(r <= n for r, n in zip(reference, nachos, strict=True))
        if config.num_early_exits >= 2:
            assert reference[-1] < nachos[-1]


def test_no_early_exit_is_the_single_exit_network(small_config) -> None:
    config = small_config(exit_stages=())
    assert exit_pools_analytic(config, num_classes=10) == []
    costs = exit_macs(config, num_classes=10)
    assert costs == exit_macs(config, num_classes=10, convention="reference")
    assert len(costs) == 1


def test_pieces_are_memoized(small_config) -> None:
    _analytic.clear_caches()
    exit_macs(small_config(), num_classes=10)
    misses = _analytic._stage.cache_info().misses
    exit_macs(small_config(), num_classes=10)
    assert _analytic._stage.cache_info().misses == misses
    assert _analytic._stage.cache_info().hits >= 5


# --- errors ---------------------------------------------------------------------------------


class _TinyHead(nn.Module):
    def __init__(self, in_channels, spatial_size, num_classes, *, pool=1) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(in_channels, num_classes + 1)

    def forward(self, x):
        return self.linear(self.pool(x).flatten(1))


def _tiny_cost(in_channels: int, side: int, num_classes: int, *, pool: int = 1):
    return linear_cost(in_channels, num_classes + 1)


NO_FORMULA = (
    r"exit head 'tiny' was registered without a cost formula, so the analytic cost model "
    r"cannot count it: pass its formula when registering it "
    r"\(register_exit_head\('tiny', factory, cost=\.\.\.\), see ExitHeadSpec\), or count "
    r"the built network with method='fvcore'\."
)


@pytest.mark.usefixtures("own_registry")
def test_custom_head_without_a_formula_needs_fvcore(small_config) -> None:
    register_exit_head("tiny", _TinyHead)
    config = small_config(exit_stages=(2,), exit_head="tiny")
    with pytest.raises(ValueError, match=NO_FORMULA):
        exit_macs(config, num_classes=10)
    with pytest.raises(ValueError, match=NO_FORMULA):
        exit_pools_analytic(config, num_classes=10)
    counted = exit_macs(config, num_classes=10, method="fvcore")
    # Same backbone as the pool_linear head, same head formula.
    linear = small_config(exit_stages=(2,), exit_head="pool_linear")
    assert counted == exit_macs(linear, num_classes=10)
    # Without early exits the head formula is not needed.
    assert exit_macs(small_config(exit_stages=(), exit_head="tiny"), num_classes=10)


@pytest.mark.usefixtures("own_registry")
def test_custom_head_with_a_formula_is_counted_analytically(small_config) -> None:
    register_exit_head("tiny", _TinyHead, cost=_tiny_cost)
    assert "tiny" in list_exit_heads()
    for exit_stages in ((2,), (1, 2, 3, 4)):
        config = small_config(exit_stages=exit_stages, exit_head="tiny")
        _check_against_fvcore(config, num_classes=10, in_channels=3)


@pytest.mark.usefixtures("own_registry")
def test_re_registering_a_head_drops_its_cached_costs(small_config) -> None:
    config = small_config(exit_stages=(2,), exit_head="tiny")
    register_exit_head("tiny", _TinyHead, cost=_tiny_cost)
    first = _analytic.analyze(config, num_classes=10)

    def doubled(in_channels, side, num_classes, *, pool=1):
        macs, params = _tiny_cost(in_channels, side, num_classes, pool=pool)
        return 2 * macs, params + 1

    register_exit_head("tiny", _TinyHead, cost=doubled, overwrite=True)
    second = _analytic.analyze(config, num_classes=10)
    assert second.head_macs == (2 * first.head_macs[0],)
    assert second.head_params == (first.head_params[0] + 1,)
    assert second.segment_macs == first.segment_macs
    register_exit_head("tiny", _TinyHead, overwrite=True)
    with pytest.raises(ValueError, match=NO_FORMULA):
        _analytic.analyze(config, num_classes=10)
    register_exit_head("tiny", _TinyHead, cost=_tiny_cost, overwrite=True)
    assert _analytic.analyze(config, num_classes=10) == first


@pytest.mark.usefixtures("own_registry")
def test_clear_caches_empties_the_head_cache(small_config) -> None:
    exit_macs(small_config(exit_head="mbconv"), num_classes=10)
    assert _analytic._head.cache_info().currsize > 0
    _analytic.clear_caches()
    assert _analytic._head.cache_info().currsize == 0
    assert not _analytic._cached_heads


@pytest.mark.usefixtures("own_registry")
@pytest.mark.parametrize("returned", [(1.5, 2), (1, -1), 7, (1, 2, 3), ("1", 2)])
def test_a_formula_returning_no_counts_is_reported(returned, small_config) -> None:
    register_exit_head("tiny", _TinyHead, cost=lambda *args, **kwargs: returned)
    config = small_config(exit_stages=(2,), exit_head="tiny")
    with pytest.raises(TypeError, match=r"cost formula of exit head 'tiny' must return"):
        exit_macs(config, num_classes=10)


@pytest.mark.usefixtures("own_registry")
def test_renamed_known_head_uses_its_pool_sizes(small_config) -> None:
    register_exit_head("nachos_nopool", NachosExitHead, cost=NachosExitHead.cost)
    config = small_config(exit_head="nachos_nopool")
    assert exit_pools_analytic(config, num_classes=10) == [1, 1, 1, 1]
    assert exit_macs(config, num_classes=10) == exit_macs(config, num_classes=10, method="fvcore")


def test_unknown_head_raises_key_error(small_config) -> None:
    with pytest.raises(KeyError, match="unknown exit head"):
        exit_macs(small_config(exit_head="no_such_head"), num_classes=10)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"num_classes": 1}, ValueError, "num_classes"),
        ({"num_classes": True}, ValueError, "num_classes"),
        ({"num_classes": 10, "in_channels": 0}, ValueError, "in_channels"),
        ({"num_classes": 10, "method": "magic"}, ValueError, "method"),
        ({"num_classes": 10, "convention": "paper"}, ValueError, "convention"),
    ],
)
def test_invalid_arguments(kwargs, error, match, small_config) -> None:
    with pytest.raises(error, match=match):
        exit_macs(small_config(), **kwargs)


def test_config_must_be_an_eenn_config() -> None:
    with pytest.raises(TypeError, match="EENNConfig"):
        exit_macs({"depths": [2] * 5}, num_classes=10)
    with pytest.raises(TypeError, match="EENNConfig"):
        exit_params("config", num_classes=10, method="fvcore")
