import pytest
import torch
from torch import nn

from optuna_nachos.models import (
    ConvBNAct,
    MBConv,
    conv2d_cost,
    conv_bn_cost,
    conv_output_side,
    linear_cost,
    mbconv_cost,
    profile_macs,
)


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(("side", "kernel", "stride"), [(8, 3, 1), (8, 5, 2), (7, 7, 2), (1, 3, 2)])
def test_conv_output_side_matches_a_convolution(side, kernel, stride):
    conv = nn.Conv2d(1, 1, kernel, stride=stride, padding=kernel // 2)
    assert conv(torch.zeros(1, 1, side, side)).shape[-1] == conv_output_side(side, kernel, stride)


def test_conv_and_linear_costs_by_hand():
    assert conv2d_cost(8, 16, 3, side_out=4) == (16 * 16 * 8 * 9, 16 * 8 * 9 + 16)
    assert conv2d_cost(8, 8, 3, side_out=4, groups=8, bias=False) == (16 * 8 * 9, 8 * 9)
    assert linear_cost(10, 3) == (30, 33)
    assert linear_cost(10, 3, bias=False) == (30, 30)


@pytest.mark.parametrize(("kernel", "stride", "groups"), [(1, 1, 1), (3, 2, 1), (5, 1, 24)])
def test_conv_bn_cost_equals_the_module(kernel, stride, groups):
    module = ConvBNAct(24, 24, kernel, stride=stride, groups=groups).eval()
    side_out = conv_output_side(9, kernel, stride)
    macs, _ = profile_macs(module, torch.zeros(1, 24, 9, 9))
    assert conv_bn_cost(24, 24, kernel, side_out=side_out, groups=groups) == (
        macs,
        _params(module),
    )


@pytest.mark.parametrize(
    ("in_ch", "out_ch", "kernel", "stride", "expand", "use_se", "side"),
    [
        (16, 16, 3, 1, 1, False, 16),  # the stem's block: no expansion, residual
        (24, 40, 5, 2, 4, True, 8),
        (40, 40, 7, 1, 6, True, 5),
        (80, 112, 3, 1, 3, False, 3),
    ],
)
def test_mbconv_cost_equals_the_module(in_ch, out_ch, kernel, stride, expand, use_se, side):
    module = MBConv(
        in_ch,
        out_ch,
        kernel_size=kernel,
        stride=stride,
        expand_ratio=expand,
        activation="relu",
        use_se=use_se,
    ).eval()
    macs, _ = profile_macs(module, torch.zeros(1, in_ch, side, side))
    expected = (macs, _params(module))
    assert (
        mbconv_cost(
            in_ch,
            out_ch,
            kernel_size=kernel,
            stride=stride,
            expand_ratio=expand,
            use_se=use_se,
            side=side,
        )
        == expected
    )
