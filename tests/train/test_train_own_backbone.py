"""fit and calibrate_and_evaluate on exits attached to a user's (already trained) backbone."""

from types import SimpleNamespace

import torch
import torchvision

import optuna_nachos as nachos
from optuna_nachos.train import TrainConfig, calibrate_and_evaluate, fit


def test_exit_phase_only_on_a_frozen_torchvision_backbone(make_dataset):
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=3)
    model.conv1 = torch.nn.Conv2d(1, 64, 3, padding=1, bias=False)
    space = nachos.BackboneExitSpace(
        nachos.cut_stages(model, input_shape=(1, 8, 8), cut_after=["layer1", "layer2", "layer3"]),
        num_classes=3,
        exit_heads=("mbconv",),
    )
    config = nachos.ExitsConfig(exit_stages=(1, 2), exit_heads=("mbconv", "mbconv"))
    network = space.build(config)
    backbone = {k: v.clone() for k, v in model.state_dict().items()}
    heads = [p.detach().clone() for p in network.exit_head_parameters()]
    data = SimpleNamespace(
        train=make_dataset(48), val=make_dataset(24, seed=1), test=make_dataset(24, seed=2)
    )
    costs = list(space.cost_profile(config).exit_macs)
    result = fit(
        network,
        data,
        config=TrainConfig(
            backbone_epochs=0, warmup_epochs=1, exit_epochs=1, batch_size=16, progress=False
        ),
        exit_costs=costs,
        max_avg_macs=costs[1],
    )
    assert [r.phase for r in result.records] == ["warmup", "exits"]  # no backbone phase
    # the backbone (weights and BatchNorm statistics) did not move; the heads did
    for key, value in model.state_dict().items():
        assert torch.equal(value, backbone[key]), key
    assert any(not torch.equal(a, b) for a, b in zip(heads, network.exit_head_parameters()))
    evaluation = calibrate_and_evaluate(network, data, costs, max_avg_macs=costs[1])
    assert len(evaluation.thresholds) == 2
    assert evaluation.validation.avg_macs <= costs[1] * (1 + 1e-9)
    assert abs(sum(evaluation.test.exit_ratios) - 1.0) < 1e-9
