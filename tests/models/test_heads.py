import pytest
import torch
from torch import nn

from optuna_nachos.config import EENNConfig
from optuna_nachos.models import (
    ExitHeadSpec,
    MBConvExitHead,
    NachosExitHead,
    PoolLinearExitHead,
    _heads,
    build_eenn,
    get_exit_head,
    list_exit_heads,
    profile_macs,
    register_exit_head,
)


@pytest.fixture
def restore_heads():
    saved = dict(_heads._EXIT_HEADS)
    yield
    _heads._EXIT_HEADS.clear()
    _heads._EXIT_HEADS.update(saved)


def test_builtin_heads_are_registered():
    assert {"nachos", "pool_linear", "mbconv"} <= set(list_exit_heads())
    assert list_exit_heads() == sorted(list_exit_heads())
    nachos = get_exit_head("nachos")
    assert isinstance(nachos, ExitHeadSpec)
    assert nachos.name == "nachos"
    assert nachos.factory is NachosExitHead
    assert nachos.pool_sizes == (1, 2, 4)
    assert get_exit_head("pool_linear").factory is PoolLinearExitHead
    assert get_exit_head("pool_linear").pool_sizes == (1,)
    assert get_exit_head("mbconv").factory is MBConvExitHead
    assert get_exit_head("mbconv").pool_sizes == (1, 2, 4)


@pytest.mark.parametrize(
    ("name", "head"),
    [("nachos", NachosExitHead), ("pool_linear", PoolLinearExitHead), ("mbconv", MBConvExitHead)],
)
def test_builtin_heads_carry_their_cost_formula(name, head):
    assert get_exit_head(name).cost is head.cost
    for pool in get_exit_head(name).pool_sizes:
        module = head(40, (8, 8), 10, pool=pool)
        macs, params = head.cost(40, 8, 10, pool=pool)
        assert macs == profile_macs(module, torch.zeros(1, 40, 8, 8))[0]
        assert params == sum(p.numel() for p in module.parameters())


def test_unknown_head_lists_the_known_ones():
    with pytest.raises(
        KeyError, match=r"unknown exit head 'no_such_head'; registered exit heads: \[.*'nachos'"
    ):
        get_exit_head("no_such_head")
    with pytest.raises(KeyError, match=r"'pool_linear'"):
        get_exit_head("no_such_head")


@pytest.mark.usefixtures("restore_heads")
def test_register_rejects_duplicates_and_bad_pools():
    with pytest.raises(
        ValueError, match=r"exit head 'nachos' is already registered; pass overwrite"
    ):
        register_exit_head("nachos", PoolLinearExitHead)
    assert get_exit_head("nachos").factory is NachosExitHead  # unchanged
    with pytest.raises(ValueError, match=r"pool_sizes must be positive integers"):
        register_exit_head("empty_pools", PoolLinearExitHead, pool_sizes=())
    with pytest.raises(ValueError, match=r"pool_sizes must be positive integers"):
        register_exit_head("zero_pool", PoolLinearExitHead, pool_sizes=(1, 0))
    assert "empty_pools" not in list_exit_heads()
    assert "zero_pool" not in list_exit_heads()
    register_exit_head("nachos", PoolLinearExitHead, overwrite=True)
    assert get_exit_head("nachos").factory is PoolLinearExitHead
    assert get_exit_head("nachos").cost is None  # the old formula does not stay behind


@pytest.mark.usefixtures("restore_heads")
def test_register_takes_the_cost_formula_by_keyword():
    register_exit_head("linear", PoolLinearExitHead, cost=PoolLinearExitHead.cost)
    assert get_exit_head("linear") == ExitHeadSpec(
        "linear", PoolLinearExitHead, (1,), PoolLinearExitHead.cost
    )
    with pytest.raises(TypeError):
        register_exit_head("positional", PoolLinearExitHead, (1,), PoolLinearExitHead.cost)
    with pytest.raises(TypeError, match=r"cost of exit head 'bad' must be a function"):
        register_exit_head("bad", PoolLinearExitHead, cost=(10, 20))
    assert "bad" not in list_exit_heads()


class TinyHead(nn.Module):
    def __init__(self, in_channels, spatial_size, num_classes, *, pool=1):
        super().__init__()
        self.pool = pool
        self.body = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten())
        self.linear = nn.Linear(in_channels, num_classes + 1)

    def forward(self, x):
        return self.linear(self.body(x))


@pytest.mark.usefixtures("restore_heads")
def test_a_registered_head_can_be_built(small_config):
    register_exit_head("tiny", TinyHead, pool_sizes=(1, 2))
    assert "tiny" in list_exit_heads()
    assert get_exit_head("tiny").pool_sizes == (1, 2)
    cfg = EENNConfig(**{**small_config.to_dict(), "exit_head": "tiny"})
    model = build_eenn(cfg, num_classes=4).eval()
    assert all(isinstance(head, TinyHead) for head in model.exit_heads)
    assert [head.pool for head in model.exit_heads] == list(model.exit_pools)
    output = model(torch.randn(2, 3, 32, 32))
    assert [tuple(o.shape) for o in output.logits] == [(2, 4)] * 5


def test_build_with_an_unknown_head_names_the_registered_ones(small_config):
    cfg = EENNConfig(**{**small_config.to_dict(), "exit_head": "nope"})
    with pytest.raises(KeyError, match=r"unknown exit head 'nope'; registered exit heads"):
        build_eenn(cfg, num_classes=10)


def test_nachos_head_layers():
    head = NachosExitHead(24, (8, 8), 10)
    assert isinstance(head.pool, nn.Identity)
    layers = list(head.features)
    assert [type(m) for m in layers] == [nn.ReLU, nn.Conv2d] * 3 + [nn.ReLU]
    convs = [m for m in layers if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(24, 32), (32, 64), (64, 128)]
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) for c in convs)
    assert head.classifier.in_features == 128 * 8 * 8
    assert head.classifier.out_features == 11  # classes + confidence
    assert head(torch.randn(3, 24, 8, 8)).shape == (3, 11)


@pytest.mark.parametrize(("pool", "side"), [(2, 4), (4, 2)])
def test_nachos_head_pooling(pool, side):
    head = NachosExitHead(40, (8, 8), 5, pool=pool)
    assert isinstance(head.pool, nn.MaxPool2d)
    assert head.pool.kernel_size == pool and head.pool.stride == pool
    assert head.classifier.in_features == 128 * side * side
    assert head(torch.randn(2, 40, 8, 8)).shape == (2, 6)


def test_nachos_head_rejects_a_pool_larger_than_the_features():
    with pytest.raises(ValueError, match=r"cannot max-pool 2x2 features with size 4"):
        NachosExitHead(80, (2, 2), 10, pool=4)


def test_nachos_head_does_not_modify_the_backbone_features():
    # the first ReLU must not act in place: the features go on through the backbone
    head = NachosExitHead(8, (4, 4), 3)
    features = torch.randn(2, 8, 4, 4)
    before = features.clone()
    head(features)
    assert torch.equal(features, before)
    assert (features < 0).any()


def test_nachos_head_macs_by_hand():
    head = NachosExitHead(24, (8, 8), 10)
    macs, out = profile_macs(head, torch.zeros(1, 24, 8, 8))
    expected = 64 * (32 * 24 * 9 + 64 * 32 * 9 + 128 * 64 * 9) + 11 * 128 * 64
    assert macs == expected
    assert out.shape == (1, 11)
    pooled, _ = profile_macs(NachosExitHead(24, (8, 8), 10, pool=2), torch.zeros(1, 24, 8, 8))
    assert pooled == expected // 4


def test_pool_linear_head():
    head = PoolLinearExitHead(112, (2, 2), 100, pool=4)  # pool is ignored
    assert isinstance(head.pool, nn.AdaptiveAvgPool2d)
    assert (head.classifier.in_features, head.classifier.out_features) == (112, 101)
    for side in (1, 2, 7):  # global pooling: any spatial size
        assert head(torch.randn(3, 112, side, side)).shape == (3, 101)
    macs, _ = profile_macs(head, torch.zeros(1, 112, 2, 2))
    assert macs == 112 * 101
    features = torch.randn(2, 112, 2, 2)
    expected = head.classifier(features.mean((2, 3)))
    torch.testing.assert_close(head(features), expected)
