"""Inheritance: an extracted candidate is build_eenn's network with the supernet's weights."""

import dataclasses

import pytest
import torch
from torch import nn

from optuna_nachos import ConfigError, EENNConfig, build_eenn
from optuna_nachos.cost import count_exit_macs
from optuna_nachos.supernet import Supernet, random_config, recalibrate_batchnorm


@pytest.fixture(scope="module")
def supernet() -> Supernet:
    torch.manual_seed(0)
    net = Supernet(
        num_classes=10, in_channels=1, resolution=16, exit_heads=("nachos", "pool_linear")
    )
    # Non-trivial BatchNorm statistics and head weights, so that a wrong copy shows.
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    return net.eval()


def _configs(count: int, seed: int) -> list[EENNConfig]:
    generator = torch.Generator().manual_seed(seed)
    configs = []
    for index in range(count):
        config = random_config(generator, resolution=16)
        exits = [(1, 2, 3, 4), (1,), (2, 4), (3,), (1, 3)][index % 5]
        head = ("nachos", "pool_linear")[index % 2]
        configs.append(dataclasses.replace(config, exit_stages=exits, exit_head=head))
    return configs


@pytest.mark.parametrize(
    "config",
    _configs(6, seed=3),
    ids=lambda c: c.short_name() if hasattr(c, "short_name") else None,
)
def test_extracted_network_equals_the_active_subnet(supernet, config):
    model = supernet.extract(config).eval()
    x = torch.randn(5, 1, 16, 16)
    with torch.no_grad():
        supernet.set_active(config)
        features, final = supernet.forward_stages(x)
        out = model(x)
    torch.testing.assert_close(out.logits[-1], final, atol=1e-5, rtol=1e-5)
    pools = model.exit_pools
    for index, (position, pool) in enumerate(zip(model.exit_positions, pools)):
        head = supernet.heads[f"{config.exit_head}-{position}-{pool}"]
        with torch.no_grad():
            expected = head(features[position])
        torch.testing.assert_close(out.logits[index], expected[:, :-1], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(
            out.confidences[:, index], torch.sigmoid(expected[:, -1]), atol=1e-5, rtol=1e-5
        )


def test_extracted_network_has_the_modules_and_macs_of_build_eenn(supernet):
    for config in _configs(3, seed=7):
        model = supernet.extract(config)
        built = build_eenn(config, num_classes=10, in_channels=1)
        assert [type(m) for m in model.modules()] == [type(m) for m in built.modules()]
        assert model.config == config
        assert count_exit_macs(model, (1, 16, 16)) == count_exit_macs(built, (1, 16, 16))


def test_recalibration_changes_batchnorm_statistics_only(supernet, digits16):
    config = _configs(1, seed=11)[0]
    model = supernet.extract(config)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    recalibrate_batchnorm(model, digits16.train, batches=2, batch_size=32)
    after = model.state_dict()
    stats = ("running_mean", "running_var", "num_batches_tracked")
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed, "recalibration changed nothing"
    assert all(k.endswith(stats) for k in changed), changed
    assert any(k.endswith("running_mean") for k in changed)
    assert model.training  # the mode is restored


def test_unserved_configuration_is_refused(supernet):
    config = EENNConfig(
        depths=(1, 2, 2, 2, 2),
        kernel_sizes=((9,), (3, 3), (3, 3), (3, 3), (3, 3)),
        expand_ratios=((3,), (3, 3), (3, 3), (3, 3), (3, 3)),
        resolution=16,
    )
    with pytest.raises(ConfigError, match="does not hold this configuration.*depths.*kernel"):
        supernet.extract(config)


def test_recalibration_skips_exit_heads_without_batchnorm(supernet, digits16):
    def count_head_calls(model):
        calls = []
        for head in model.exit_heads:
            head.register_forward_hook(lambda *args: calls.append(1))
        return calls

    config = dataclasses.replace(_configs(1, seed=5)[0], exit_stages=(1, 2), exit_head="nachos")
    model = supernet.extract(config)
    calls = count_head_calls(model)
    recalibrate_batchnorm(model, digits16.train, batches=2, batch_size=32)
    assert calls == []
    # Heads that hold BatchNorm run: their statistics are recalibrated too.
    with_norm = supernet.extract(dataclasses.replace(config, exit_head="mbconv"))
    calls = count_head_calls(with_norm)
    before = {k: v.clone() for k, v in with_norm.exit_heads.state_dict().items()}
    recalibrate_batchnorm(with_norm, digits16.train, batches=2, batch_size=32)
    assert len(calls) == 2 * len(with_norm.exit_heads)
    after = with_norm.exit_heads.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if k.endswith("running_mean"))
