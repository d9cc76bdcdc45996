"""exit_macs / exit_params / cost_profile on built networks, and their errors."""

import pytest
import torch
import torchvision

from optuna_nachos import ExitsConfig, attach_exits, cost_profile, exit_macs
from optuna_nachos.cost import count_exit_macs, exit_params
from optuna_nachos.models import cut_stages


def test_a_built_network_is_counted_with_fvcore():
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=3)
    stages = cut_stages(model, input_shape=(3, 32, 32))
    network = attach_exits(
        stages.segments,
        stages.final_head,
        exit_after=[0, 1],
        num_classes=3,
        input_shape=(3, 32, 32),
    )
    profile = cost_profile(network)
    assert list(profile.exit_macs) == count_exit_macs(network, (3, 32, 32))
    assert exit_macs(network) == list(profile.exit_macs)
    assert exit_params(network)[-1] == sum(p.numel() for p in network.parameters())
    assert profile.exit_pools == network.exit_pools
    # an explicit input shape wins: a bigger input costs more
    assert exit_macs(network, input_shape=(3, 64, 64))[-1] > profile.exit_macs[-1]


def test_errors_say_what_to_pass():
    with pytest.raises(TypeError, match="attach exits first"):
        exit_macs(torchvision.models.resnet18())
    with pytest.raises(TypeError, match="space.cost_profile"):
        cost_profile(ExitsConfig(exit_stages=(1,), exit_heads=("nachos",)))
    from optuna_nachos import EENNConfig

    config = EENNConfig(depths=(2,) * 5, kernel_sizes=((3, 3),) * 5, expand_ratios=((3, 3),) * 5)
    with pytest.raises(TypeError, match="num_classes"):
        exit_macs(config)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Conv2d(4, 4, 3))
    network = attach_exits(
        [model[0], model[1]],
        torch.nn.Sequential(
            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 2)
        ),
        exit_after=[0],
        num_classes=2,
        input_shape=(3, 8, 8),
    )
    network.input_shape = None
    with pytest.raises(ValueError, match="input_shape"):
        exit_macs(network)
    assert len(exit_macs(network, input_shape=(3, 8, 8))) == 2
