import pytest
import torch
import torchvision
from torch import nn

from optuna_nachos.config import EENNConfig
from optuna_nachos.models import (
    EarlyExitNetwork,
    NachosExitHead,
    PoolLinearExitHead,
    attach_exits,
    build_eenn,
    cumulative_confidence,
    get_exit_head,
    profile_macs,
)


def exit_costs(model, input_shape):
    """MACs of every exit: backbone up to the exit plus its head (the final head last)."""
    x = torch.zeros(1, *input_shape)
    heads = dict(zip(model.exit_positions, model.exit_heads))
    total, costs, features = 0, [], []
    for index, segment in enumerate(model.segments):
        macs, x = profile_macs(segment, x)
        total += macs
        if index in heads:
            head_macs, _ = profile_macs(heads[index], x)
            costs.append(total + head_macs)
            features.append((total, x))
    final_macs, _ = profile_macs(model.final_head, x)
    costs.append(total + final_macs)
    return costs, features


def uniform_config(depth, kernel, expand, **kwargs):
    return EENNConfig(
        depths=(depth,) * 5,
        kernel_sizes=((kernel,) * depth,) * 5,
        expand_ratios=((expand,) * depth,) * 5,
        **kwargs,
    )


CONFIGS = {
    "smallest": uniform_config(2, 3, 3),
    "largest": uniform_config(4, 7, 6),
    "mixed": uniform_config(3, 5, 4, exit_stages=(1, 3)),
    "res64": uniform_config(2, 3, 6, resolution=64),
    "res16": uniform_config(4, 7, 6, resolution=16),
}


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("num_classes", [10, 100])
def test_exit_costs_increase_along_the_exits(name, num_classes):
    cfg = CONFIGS[name]
    model = build_eenn(cfg, num_classes=num_classes)
    costs, features = exit_costs(model, (3, cfg.resolution, cfg.resolution))
    assert all(a < b for a, b in zip(costs, costs[1:])), costs
    spec = get_exit_head("nachos")
    for j, (pool, head) in enumerate(zip(model.exit_pools, model.exit_heads)):
        assert isinstance(head, NachosExitHead)
        if pool == 1:
            assert isinstance(head.pool, nn.Identity)
            continue
        assert isinstance(head.pool, nn.MaxPool2d) and head.pool.kernel_size == pool
        # pooling is used only where the next smaller pool would break monotonicity
        smaller = spec.pool_sizes[spec.pool_sizes.index(pool) - 1]
        backbone, x = features[j]
        unpooled = spec.factory(x.shape[1], tuple(x.shape[2:]), num_classes, pool=smaller)
        assert backbone + profile_macs(unpooled, x)[0] >= costs[j + 1]


def test_shallow_nachos_heads_are_pooled_at_resolution_32():
    for cfg in (CONFIGS["smallest"], CONFIGS["largest"]):
        pools = build_eenn(cfg, num_classes=10).exit_pools
        assert pools[0] > 1, pools
        assert pools[-1] == 1, pools
        assert list(pools) == sorted(pools, reverse=True)


def test_pool_linear_heads_are_never_pooled():
    cfg = uniform_config(2, 3, 3, exit_head="pool_linear")
    model = build_eenn(cfg, num_classes=10)
    assert model.exit_pools == (1, 1, 1, 1)
    assert all(isinstance(head, PoolLinearExitHead) for head in model.exit_heads)
    costs, _ = exit_costs(model, (3, 32, 32))
    assert all(a < b for a, b in zip(costs, costs[1:])), costs
    output = model(torch.randn(2, 3, 32, 32))
    assert [tuple(o.shape) for o in output.logits] == [(2, 10)] * 5


def test_build_returns_a_fresh_training_network(small_config):
    model = build_eenn(small_config, num_classes=10)
    assert isinstance(model, EarlyExitNetwork)
    assert model.training
    assert model.config == small_config
    other = build_eenn(small_config, num_classes=10)
    assert model.segments[0][0][0][0].weight is not other.segments[0][0][0][0].weight


@pytest.mark.parametrize("num_classes", [1, 0, True, 2.0, "10", None])
def test_build_rejects_bad_class_counts(small_config, num_classes):
    with pytest.raises(ValueError, match=r"num_classes must be an integer >= 2, got"):
        build_eenn(small_config, num_classes=num_classes)


@pytest.mark.parametrize("in_channels", [0, -3, True, 3.0])
def test_build_rejects_bad_channel_counts(small_config, in_channels):
    with pytest.raises(ValueError, match=r"in_channels must be a positive integer, got"):
        build_eenn(small_config, num_classes=10, in_channels=in_channels)


def test_build_needs_a_config():
    with pytest.raises(TypeError, match=r"config must be an EENNConfig, got dict"):
        build_eenn(uniform_config(2, 3, 3).to_dict(), num_classes=10)


def test_build_at_other_resolutions():
    for resolution in (8, 48):
        cfg = uniform_config(2, 3, 3, resolution=resolution, exit_stages=(1, 4))
        model = build_eenn(cfg, num_classes=3, in_channels=1).eval()
        output = model(torch.randn(2, 1, resolution, resolution))
        assert [tuple(o.shape) for o in output.logits] == [(2, 3)] * 3


def resnet18_parts(num_classes=10):
    torch.manual_seed(0)
    resnet = torchvision.models.resnet18(weights=None, num_classes=num_classes)
    segments = [
        nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool, resnet.layer1),
        resnet.layer2,
        resnet.layer3,
        resnet.layer4,
    ]
    final = nn.Sequential(resnet.avgpool, nn.Flatten(), resnet.fc)
    return resnet, segments, final


@pytest.fixture
def resnet_eenn():
    resnet, segments, final = resnet18_parts()
    model = attach_exits(
        segments, final, exit_after=[0, 1, 2], num_classes=10, input_shape=(3, 32, 32)
    )
    return resnet, model


def test_attach_exits_to_resnet18(resnet_eenn, spread_confidences, midpoint_thresholds):
    resnet, model = resnet_eenn
    assert model.exit_positions == (0, 1, 2)
    assert model.num_exits == 4
    assert model.config is None
    assert model.exit_pools == (1, 1, 1)
    assert model.segments[1] is resnet.layer2  # weights are shared, not copied
    assert all(isinstance(head, PoolLinearExitHead) for head in model.exit_heads)
    assert [head.classifier.in_features for head in model.exit_heads] == [64, 128, 256]
    x = torch.randn(32, 3, 32, 32)
    spread_confidences(model, x)
    with torch.no_grad():
        output = model(x)
        torch.testing.assert_close(output.logits[-1], resnet.eval()(x))
    assert [tuple(o.shape) for o in output.logits] == [(32, 10)] * 4
    assert output.confidences.shape == (32, 4)
    assert torch.equal(output.confidences[:, -1], torch.ones(32))
    costs, _ = exit_costs(model, (3, 32, 32))
    assert all(a < b for a, b in zip(costs, costs[1:])), costs

    thresholds, margin = midpoint_thresholds(cumulative_confidence(output.confidences[:, :-1]))
    assert margin > 1e-5
    for eps in ([0.0] * 3, [1.0] * 3, thresholds):
        dynamic = model.predict(x, eps)
        static = model.predict_static(x, eps)
        assert torch.equal(dynamic.exit_indices, static.exit_indices)
        assert torch.equal(dynamic.predictions, static.predictions)
    assert len(set(model.predict(x, thresholds).exit_indices.tolist())) >= 3
    assert model.predict(x, [0.0] * 3).exit_indices.eq(0).all()
    assert model.predict(x, [1.0] * 3).exit_indices.eq(3).all()


def test_attach_exits_to_resnet18_float64_random_thresholds(resnet_eenn, spread_confidences):
    _, model = resnet_eenn
    x = torch.randn(32, 3, 32, 32, dtype=torch.float64)
    spread_confidences(model.double(), x)
    generator = torch.Generator().manual_seed(3)
    seen = set()
    for _ in range(4):
        thresholds = torch.rand(3, generator=generator, dtype=torch.float64)
        dynamic = model.predict(x, thresholds)
        static = model.predict_static(x, thresholds)
        assert torch.equal(dynamic.exit_indices, static.exit_indices)
        assert torch.equal(dynamic.predictions, static.predictions)
        seen.update(dynamic.exit_indices.tolist())
    assert len(seen) >= 2


def test_attach_nachos_heads_to_resnet18():
    _, segments, final = resnet18_parts(num_classes=5)
    model = attach_exits(
        segments, final, exit_after=[1, 0], num_classes=5, input_shape=(3, 32, 32), head="nachos"
    )
    assert model.exit_positions == (0, 1)
    assert all(isinstance(head, NachosExitHead) for head in model.exit_heads)
    costs, _ = exit_costs(model, (3, 32, 32))
    assert all(a < b for a, b in zip(costs, costs[1:])), costs
    output = model.eval()(torch.randn(2, 3, 32, 32))
    assert [tuple(o.shape) for o in output.logits] == [(2, 5)] * 3


def test_attach_exits_validates():
    _, segments, final = resnet18_parts()
    kwargs = {"num_classes": 10, "input_shape": (3, 32, 32)}
    with pytest.raises(ValueError, match=r"exit_after entries must lie in 0\.\.2 .*got 3"):
        attach_exits(segments, final, exit_after=[3], **kwargs)
    with pytest.raises(ValueError, match=r"got -1"):
        attach_exits(segments, final, exit_after=[-1], **kwargs)
    with pytest.raises(ValueError, match=r"exit_after must not repeat segments, got \[1, 1\]"):
        attach_exits(segments, final, exit_after=[1, 1], **kwargs)
    with pytest.raises(ValueError, match=r"num_classes must be an integer >= 2"):
        attach_exits(segments, final, exit_after=[1], num_classes=1, input_shape=(3, 32, 32))
    with pytest.raises(ValueError, match=r"in_channels must be a positive integer"):
        attach_exits(segments, final, exit_after=[1], num_classes=10, input_shape=(0, 32, 32))
    with pytest.raises(KeyError, match=r"unknown exit head 'mlp'; registered exit heads"):
        attach_exits(segments, final, exit_after=[1], head="mlp", **kwargs)
    no_exit = attach_exits(segments, final, exit_after=[], **kwargs)
    assert no_exit.num_exits == 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available on this machine")
def test_predict_on_cuda(small_config, spread_confidences, midpoint_thresholds):
    torch.manual_seed(0)
    x = torch.randn(64, 3, 32, 32)
    model = spread_confidences(build_eenn(small_config, num_classes=10), x).to("cuda")
    x = x.to("cuda")
    output = model(x)
    assert output.confidences.device.type == "cuda"
    middle, margin = midpoint_thresholds(cumulative_confidence(output.confidences[:, :-1]))
    assert margin > 1e-5
    for thresholds in ([0.0] * 4, [1.0] * 4, middle):
        dynamic = model.predict(x, thresholds)
        static = model.predict_static(x, thresholds)
        assert dynamic.predictions.device.type == static.exit_indices.device.type == "cuda"
        assert torch.equal(dynamic.exit_indices, static.exit_indices)
        assert torch.equal(dynamic.predictions, static.predictions)
