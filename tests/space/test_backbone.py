"""BackboneExitSpace: flat parameters, exact costs equal to fvcore, guard, build."""

import optuna
import pytest
import torch
import torchvision

from optuna_nachos import ConfigError, ExitsConfig
from optuna_nachos.cost import count_exit_macs, count_exit_params, exit_macs
from optuna_nachos.models import cut_stages
from optuna_nachos.space import BackboneExitSpace


@pytest.fixture(scope="module")
def resnet_space() -> BackboneExitSpace:
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=4)
    return BackboneExitSpace(cut_stages(model, input_shape=(3, 32, 32)), num_classes=4)


def test_parameters_are_flat_and_stable(resnet_space):
    dists = resnet_space.distributions()
    assert list(dists) == [
        "exit_after_stage1",
        "exit_after_stage2",
        "exit_after_stage3",
        "exit1_head",
        "exit2_head",
        "exit3_head",
    ]
    assert dists["exit1_head"].choices == ("nachos", "pool_linear", "mbconv")
    assert resnet_space.num_configurations() == 4**3
    single = BackboneExitSpace(resnet_space.stages, num_classes=4, exit_heads=("pool_linear",))
    assert list(single.distributions()) == [f"exit_after_stage{s}" for s in (1, 2, 3)]


def test_params_config_round_trip(resnet_space):
    config = ExitsConfig(exit_stages=(1, 3), exit_heads=("mbconv", "nachos"))
    params = resnet_space.params_from_config(config)
    assert params["exit_after_stage2"] is False and params["exit2_head"] == "nachos"
    assert resnet_space.config_from_params(params) == config
    trial = optuna.trial.FixedTrial(params)
    assert resnet_space.suggest(trial) == config
    assert ExitsConfig.from_json(config.to_json()) == config
    with pytest.raises(ConfigError, match="not allowed"):
        resnet_space.params_from_config(ExitsConfig(exit_stages=(4,), exit_heads=("nachos",)))
    with pytest.raises(ConfigError, match="missing"):
        resnet_space.config_from_params({"exit_after_stage1": True})


@pytest.mark.parametrize(
    "heads", [("nachos", "nachos", "nachos"), ("mbconv", "pool_linear", "nachos")]
)
def test_exact_costs_equal_fvcore_on_the_built_network(resnet_space, heads):
    config = ExitsConfig(exit_stages=(1, 2, 3), exit_heads=heads)
    profile = resnet_space.cost_profile(config)
    network = resnet_space.build(config)
    assert list(profile.exit_macs) == count_exit_macs(network, (3, 32, 32))
    assert list(profile.exit_params) == count_exit_params(network)
    assert profile.exit_pools == network.exit_pools
    assert list(profile.exit_macs) == sorted(profile.exit_macs)  # cost-monotone
    reference = resnet_space.cost_profile(config, convention="reference")
    assert reference.exit_macs[0] == profile.exit_macs[0]
    assert reference.exit_macs[-1] < profile.exit_macs[-1]
    # exit_macs accepts the built network and reads its recorded input shape
    assert exit_macs(network) == list(profile.exit_macs)


def test_head_placements_are_counted_once(resnet_space, monkeypatch):
    import optuna_nachos.space._backbone as backbone

    space = BackboneExitSpace(resnet_space.stages, num_classes=4)
    calls = []
    original = backbone.module_macs

    def counting(module, shape):
        calls.append(type(module).__name__)
        return original(module, shape)

    monkeypatch.setattr(backbone, "module_macs", counting)
    first = ExitsConfig(exit_stages=(1, 2), exit_heads=("nachos", "pool_linear"))
    space.cost_profile(first)
    counted = len(calls)
    space.cost_profile(ExitsConfig(exit_stages=(1, 2, 3), exit_heads=("nachos",) * 3))
    space.cost_profile(first, convention="reference")
    assert len(calls) > counted  # the new placements only
    again = len(calls)
    space.cost_profile(ExitsConfig(exit_stages=(2, 3), exit_heads=("pool_linear", "nachos")))
    assert calls[again:] == []  # every placement already known


def test_static_guard_min_exits_and_budget(resnet_space):
    space = BackboneExitSpace(resnet_space.stages, num_classes=4, min_exits=2)
    one = ExitsConfig(exit_stages=(3,), exit_heads=("pool_linear",))
    cheap = ExitsConfig(exit_stages=(1, 2), exit_heads=("pool_linear",) * 2)
    assert space.exit_deficit(one) == 1 and space.exit_deficit(cheap) == 0
    first = space.cost_profile(cheap).exit_macs[0]
    static = space.static_constraints(cheap, max_avg_macs=first, max_peak_macs=1.0)
    assert static["max_avg_macs"] == 0.0
    assert static["min_exits"] == 0.0
    assert static["max_peak_macs"] > 0
    assert space.static_constraints(one, max_avg_macs=first)["min_exits"] == 1.0
    assert space.smallest_average_macs() <= first
    with pytest.raises(ConfigError, match="min_exits=4"):
        BackboneExitSpace(resnet_space.stages, num_classes=4, min_exits=4)
    with pytest.raises(ConfigError, match="stages 1..3"):
        BackboneExitSpace(resnet_space.stages, num_classes=4, exit_stages=(4,))
    with pytest.raises(ConfigError, match="unknown exit head"):
        BackboneExitSpace(resnet_space.stages, num_classes=4, exit_heads=("nope",))
    with pytest.raises(ConfigError, match="cut_stages"):
        BackboneExitSpace([torch.nn.Identity()], num_classes=4)


def test_build_shares_or_copies_the_backbone(resnet_space):
    config = ExitsConfig(exit_stages=(2,), exit_heads=("mbconv",))
    shared = resnet_space.build(config)
    copied = resnet_space.build(config, copy_backbone=True)
    assert shared.segments[0] is resnet_space.stages.segments[0]
    assert copied.segments[0] is not resnet_space.stages.segments[0]
    assert shared.exits_config == config
    x = torch.randn(2, 3, 32, 32)
    shared.eval()
    copied.eval()
    with torch.no_grad():
        assert torch.allclose(shared.forward_backbone(x), copied.forward_backbone(x))


def test_mobilenetv3_and_timm_costs_equal_fvcore():
    torch.manual_seed(0)
    models = [torchvision.models.mobilenet_v3_small(num_classes=3)]
    timm = pytest.importorskip("timm")
    models.append(timm.create_model("efficientnet_b0", num_classes=3, pretrained=False))
    for model in models:
        space = BackboneExitSpace(cut_stages(model, input_shape=(3, 64, 64)), num_classes=3)
        config = ExitsConfig(exit_stages=(1, 2, 3), exit_heads=("nachos", "mbconv", "pool_linear"))
        network = space.build(config)
        assert list(space.cost_profile(config).exit_macs) == count_exit_macs(network, (3, 64, 64))


def test_the_task_is_the_backbones(resnet_space):
    config = ExitsConfig(exit_stages=(1, 2), exit_heads=("pool_linear", "nachos"))
    profile = resnet_space.cost_profile(config)
    assert resnet_space.cost_profile(config, num_classes=4, in_channels=3) == profile
    assert resnet_space.smallest_average_macs(num_classes=4) == resnet_space.smallest_average_macs()
    with pytest.raises(ConfigError, match="num_classes=4, not 10"):
        resnet_space.cost_profile(config, num_classes=10)
    with pytest.raises(ConfigError, match="in_channels=3, not 1"):
        resnet_space.build(config, in_channels=1)


def test_static_constraints_are_the_contracts(resnet_space):
    config = ExitsConfig(exit_stages=(2,), exit_heads=("nachos",))
    profile = resnet_space.cost_profile(config)
    values = resnet_space.static_constraints(config, max_avg_macs=1e6, max_params=1e5)
    assert values == {
        "min_exits": 0.0,
        "max_avg_macs": profile.min_average_macs - 1e6,
        "max_params": profile.total_params - 1e5,
    }
