"""build_eenn initializes the network as torchvision initializes MobileNetV3."""

from __future__ import annotations

import math

import torch
from torch import nn

from optuna_nachos import EENNConfig, build_eenn

CONFIG = EENNConfig(
    depths=(4, 4, 4, 4, 4),
    kernel_sizes=((7, 7, 7, 7),) * 5,
    expand_ratios=((6, 6, 6, 6),) * 5,
    exit_stages=(1, 2, 3, 4),
    resolution=32,
)


def _network() -> nn.Module:
    torch.manual_seed(0)
    return build_eenn(CONFIG, num_classes=10)


def test_convolutions_are_kaiming_normal_fan_out() -> None:
    model = _network()
    checked = 0
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            weight = module.weight.detach()
            fan_out = weight.shape[0] * weight[0, 0].numel()
            expected = math.sqrt(2.0 / fan_out)
            if module.bias is not None:
                assert torch.all(module.bias == 0)
            if weight.numel() >= 4000:  # enough values for a tight estimate of the spread
                assert abs(float(weight.mean())) < 0.1 * expected
                assert abs(float(weight.std()) / expected - 1.0) < 0.1
                checked += 1
    assert checked >= 20


def test_batchnorm_and_linear_layers() -> None:
    model = _network()
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and all(torch.all(m.weight == 1) and torch.all(m.bias == 0) for m in norms)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert linears
    for linear in linears:
        assert torch.all(linear.bias == 0)
        if linear.weight.numel() >= 4000:
            assert abs(float(linear.weight.detach().std()) / 0.01 - 1.0) < 0.1
    # The final classifier too, not only the exit heads.
    final = [m for m in model.final_head.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    assert final and all(m.bias is None or torch.all(m.bias == 0) for m in final)
