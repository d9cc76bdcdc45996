import pytest
import torch
from torch import nn

from optuna_nachos.config import EENNConfig
from optuna_nachos.models import (
    EarlyExitNetwork,
    EarlyExitPrediction,
    EENNOutput,
    build_eenn,
    cumulative_confidence,
)

BATCH = 48


def inputs(channels=3, resolution=32, batch=BATCH, seed=0, dtype=torch.float32):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, channels, resolution, resolution, generator=generator, dtype=dtype)


@pytest.fixture
def network(small_config, spread_confidences):
    torch.manual_seed(0)
    model = build_eenn(small_config, num_classes=10)
    return spread_confidences(model, inputs())


def assert_same_prediction(dynamic, static):
    assert isinstance(dynamic, EarlyExitPrediction)
    assert torch.equal(dynamic.exit_indices, static.exit_indices)
    assert torch.equal(dynamic.predictions, static.predictions)
    assert dynamic.predictions.dtype == dynamic.exit_indices.dtype == torch.long


@pytest.mark.parametrize(("in_channels", "num_classes"), [(1, 2), (3, 10), (3, 100), (1, 100)])
def test_forward_shapes_and_confidences(small_config, in_channels, num_classes):
    torch.manual_seed(0)
    model = build_eenn(small_config, num_classes=num_classes, in_channels=in_channels)
    assert model.training
    assert model.num_classes == num_classes
    assert model.config is small_config
    output = model(inputs(in_channels, batch=4))
    assert isinstance(output, EENNOutput)
    assert len(output.logits) == model.num_exits == 5
    for logits in output.logits:
        assert logits.shape == (4, num_classes)
    assert output.confidences.shape == (4, 5)
    early = output.confidences[:, :-1]
    assert ((early > 0) & (early < 1)).all()
    assert torch.equal(output.confidences[:, -1], torch.ones(4))
    output.logits[-1].sum().backward()  # the all-exits forward is differentiable
    assert model.final_head.classifier.weight.grad is not None


@pytest.mark.parametrize(("exits", "positions"), [((), ()), ((2, 4), (1, 3)), ((1,), (0,))])
def test_exit_positions_follow_the_config(small_config, exits, positions):
    cfg = EENNConfig(**{**small_config.to_dict(), "exit_stages": exits})
    model = build_eenn(cfg, num_classes=3).eval()
    assert model.exit_positions == positions
    assert model.num_exits == len(exits) + 1
    assert len(model.exit_heads) == len(exits)
    assert len(model.exit_pools) == len(exits)
    output = model(inputs(batch=3))
    assert output.confidences.shape == (3, len(exits) + 1)
    thresholds = [0.0] * len(exits)
    assert_same_prediction(
        model.predict(inputs(batch=3), thresholds),
        model.predict_static(inputs(batch=3), thresholds),
    )


def test_forward_backbone_equals_the_final_exit(network):
    x = inputs(batch=5)
    torch.testing.assert_close(network.forward_backbone(x), network(x).logits[-1])


def test_parameter_groups_partition_the_network(network):
    backbone = {id(p) for p in network.backbone_parameters()}
    heads = {id(p) for p in network.exit_head_parameters()}
    assert backbone and heads
    assert not backbone & heads
    assert backbone | heads == {id(p) for p in network.parameters()}


def test_thresholds_zero_send_everything_to_the_first_exit(network):
    x = inputs()
    dynamic = network.predict(x, [0.0] * 4)
    assert dynamic.exit_indices.tolist() == [0] * BATCH
    assert torch.equal(dynamic.predictions, network(x).logits[0].argmax(1))
    assert_same_prediction(dynamic, network.predict_static(x, [0.0] * 4))


@pytest.mark.parametrize("value", [1.0, 1.5])
def test_thresholds_one_send_everything_to_the_final_exit(network, value):
    x = inputs()
    dynamic = network.predict(x, [value] * 4)
    assert dynamic.exit_indices.tolist() == [4] * BATCH
    assert torch.equal(dynamic.predictions, network(x).logits[-1].argmax(1))
    assert_same_prediction(dynamic, network.predict_static(x, torch.full((4,), value)))


def test_threshold_one_disables_an_exit_even_at_full_confidence(network):
    with torch.no_grad():
        for head in network.exit_heads:
            head.classifier.bias[-1] = 100.0  # sigmoid(100) is exactly 1 in float32
    x = inputs(batch=8)
    assert torch.equal(network(x).confidences, torch.ones(8, 5))
    for thresholds, expected in (
        ([1.0] * 4, 4),
        ([1.0, 0.99, 1.0, 1.0], 1),
        ([1.0] * 3 + [0.5], 3),
    ):
        dynamic = network.predict(x, thresholds)
        assert dynamic.exit_indices.tolist() == [expected] * 8
        assert_same_prediction(dynamic, network.predict_static(x, thresholds))


def test_predict_matches_static_for_random_thresholds_float64(network):
    network.double()
    x = inputs(dtype=torch.float64)
    with torch.no_grad():
        cumulative = cumulative_confidence(network(x).confidences[:, :-1])
    low, high = cumulative.min(0).values, cumulative.max(0).values
    generator = torch.Generator().manual_seed(1)
    seen = set()
    for _ in range(6):
        thresholds = low + (high - low) * torch.rand(4, generator=generator, dtype=torch.float64)
        dynamic = network.predict(x, thresholds)
        assert_same_prediction(dynamic, network.predict_static(x, thresholds))
        seen.update(dynamic.exit_indices.tolist())
    # per-exit thresholds inside the range of the cumulative confidences mix the exits
    assert len(seen) >= 3
    for thresholds in ([0.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 1.0, 1.0]):
        assert_same_prediction(
            network.predict(x, thresholds), network.predict_static(x, thresholds)
        )


def test_predict_matches_static_float32(network, midpoint_thresholds):
    x = inputs()
    with torch.no_grad():
        cumulative = cumulative_confidence(network(x).confidences[:, :-1])
    for position in (0.2, 0.5, 0.8):
        thresholds, margin = midpoint_thresholds(cumulative, position)
        assert margin > 1e-5  # far from float32 rounding of a smaller batch
        dynamic = network.predict(x, thresholds)
        assert_same_prediction(dynamic, network.predict_static(x, thresholds))
        assert 0 < (dynamic.exit_indices == 0).sum() < BATCH


def count_batch_sizes(module, sizes, key):
    def hook(_module, args):
        sizes.setdefault(key, []).append(args[0].shape[0])

    return module.register_forward_pre_hook(hook)


def test_predict_drops_samples_that_left(network, midpoint_thresholds):
    x = inputs()
    with torch.no_grad():
        cumulative = cumulative_confidence(network(x).confidences[:, :-1])
    thresholds, _ = midpoint_thresholds(cumulative, 0.6)
    sizes: dict = {}
    handles = [count_batch_sizes(s, sizes, ("segment", i)) for i, s in enumerate(network.segments)]
    handles += [count_batch_sizes(h, sizes, ("head", j)) for j, h in enumerate(network.exit_heads)]
    handles.append(count_batch_sizes(network.final_head, sizes, ("final", 0)))
    try:
        exits = network.predict(x, thresholds).exit_indices
    finally:
        for handle in handles:
            handle.remove()
    counts = torch.bincount(exits, minlength=network.num_exits).tolist()
    assert sum(c > 0 for c in counts) >= 3, counts  # samples leave at different exits
    for index in range(len(network.segments)):
        passed_exits = sum(p < index for p in network.exit_positions)
        expected = int((exits >= passed_exits).sum())
        assert sizes[("segment", index)] == [expected], (index, sizes)
    for j in range(network.num_exits - 1):
        assert sizes[("head", j)] == [int((exits >= j).sum())]
    assert sizes[("final", 0)] == [counts[-1]]
    segment_sizes = [sizes[("segment", i)][0] for i in range(len(network.segments))]
    assert segment_sizes == sorted(segment_sizes, reverse=True)
    assert segment_sizes[-1] < segment_sizes[0] == BATCH


def test_predict_stops_once_every_sample_has_left(network):
    sizes: dict = {}
    handles = [count_batch_sizes(s, sizes, i) for i, s in enumerate(network.segments)]
    handles.append(count_batch_sizes(network.final_head, sizes, "final"))
    try:
        exits = network.predict(inputs(), [0.0, 0.0, 0.0, 0.0]).exit_indices
    finally:
        for handle in handles:
            handle.remove()
    assert exits.eq(0).all()
    assert set(sizes) == {0}  # only the first segment ran


def test_predict_on_an_empty_batch(network):
    x = inputs(batch=0)
    for predict in (network.predict, network.predict_static):
        prediction = predict(x, [0.5] * 4)
        assert prediction.predictions.shape == prediction.exit_indices.shape == (0,)


def test_predict_uses_the_config_thresholds(small_config):
    cfg = EENNConfig(**{**small_config.to_dict(), "exit_thresholds": [0.0, 1.0, 1.0, 1.0]})
    model = build_eenn(cfg, num_classes=10).eval()
    x = inputs(batch=6)
    assert model.predict(x).exit_indices.tolist() == [0] * 6
    assert model.predict_static(x).exit_indices.tolist() == [0] * 6
    # explicit thresholds win over the configuration's
    assert model.predict(x, [1.0] * 4).exit_indices.tolist() == [4] * 6


def test_predict_without_thresholds_explains_what_is_missing(network):
    with pytest.raises(ValueError, match=r"predict needs thresholds \(one per early exit\)"):
        network.predict(inputs(batch=2))
    with pytest.raises(ValueError, match=r"predict needs thresholds"):
        network.predict_static(inputs(batch=2))
    with pytest.raises(ValueError, match=r"expected 4 thresholds"):
        network.predict(inputs(batch=2), [0.5, 0.5])
    with pytest.raises(ValueError, match=r"finite and >= 0"):
        network.predict(inputs(batch=2), [0.5, 0.5, -1.0, 0.5])


def toy_network(positions=(0, 2)):
    segments = [nn.Conv2d(2, 2, 1) for _ in range(4)]
    heads = {p: nn.Sequential(nn.Flatten(), nn.LazyLinear(4)) for p in positions}
    final = nn.Sequential(nn.Flatten(), nn.LazyLinear(3))
    return EarlyExitNetwork(segments, heads, final, num_classes=3)


def test_direct_construction_sorts_exits_and_validates_positions():
    model = toy_network(positions=(2, 0))
    assert model.exit_positions == (0, 2)
    assert model.num_exits == 3
    assert model.config is None and model.exit_pools is None
    output = model(torch.randn(5, 2, 3, 3))
    assert [o.shape for o in output.logits] == [(5, 3)] * 3
    with pytest.raises(ValueError, match=r"an early exit can follow segments 0\.\.2, got 3"):
        toy_network(positions=(3,))
    with pytest.raises(ValueError, match=r"got -1"):
        toy_network(positions=(-1,))
    with pytest.raises(ValueError, match=r"at least one backbone segment"):
        EarlyExitNetwork([], {}, nn.Identity(), num_classes=3)
