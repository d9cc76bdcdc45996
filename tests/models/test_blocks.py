import pytest
import torch
from torch import nn

from optuna_nachos.models import ConvBNAct, MBConv, SqueezeExcitation, make_divisible
from optuna_nachos.models._blocks import make_activation


@pytest.mark.parametrize(
    ("value", "expected"),
    [(72, 72), (48, 48), (10, 16), (3, 8), (20, 24), (100, 104), (16 * 1.0, 16), (24 * 6, 144)],
)
def test_make_divisible(value, expected):
    assert make_divisible(value) == expected
    assert make_divisible(value) % 8 == 0
    assert make_divisible(value) >= 0.9 * value


def test_make_activation():
    assert isinstance(make_activation("relu"), nn.ReLU)
    assert isinstance(make_activation("hswish"), nn.Hardswish)
    assert isinstance(make_activation(None), nn.Identity)
    with pytest.raises(ValueError, match=r"unknown activation 'gelu'; expected 'relu', 'hswish'"):
        make_activation("gelu")


def test_conv_bn_act():
    block = ConvBNAct(4, 8, 5, stride=2, activation="hswish")
    conv, bn, act = block
    assert conv.bias is None
    assert conv.padding == (2, 2) and conv.stride == (2, 2)
    assert isinstance(bn, nn.BatchNorm2d) and isinstance(act, nn.Hardswish)
    assert block(torch.randn(2, 4, 9, 9)).shape == (2, 8, 5, 5)
    assert isinstance(ConvBNAct(4, 8, 1, activation=None)[2], nn.Identity)


def test_squeeze_excitation_scales_channels():
    se = SqueezeExcitation(72).eval()
    assert se.squeezed_channels == 24
    x = torch.rand(2, 72, 4, 4)
    out = se(x)
    assert out.shape == x.shape
    scale = out / x
    # one gate in [0, 1] per sample and channel, constant over space
    assert (scale >= 0).all() and (scale <= 1).all()
    torch.testing.assert_close(scale, scale[:, :, :1, :1].expand_as(scale))


def test_mbconv_layout_and_residual():
    block = MBConv(24, 24, kernel_size=5, stride=1, expand_ratio=3, activation="relu", use_se=True)
    assert block.use_residual
    expand, depthwise, se, project = block.block
    assert expand[0].out_channels == 72
    assert depthwise[0].groups == 72 and depthwise[0].kernel_size == (5, 5)
    assert isinstance(se, SqueezeExcitation)
    assert project[0].out_channels == 24 and isinstance(project[2], nn.Identity)
    block.eval()
    x = torch.randn(2, 24, 6, 6)
    torch.testing.assert_close(block(x), x + block.block(x))


def test_mbconv_without_expansion_or_residual():
    block = MBConv(
        16, 24, kernel_size=3, stride=2, expand_ratio=1, activation="hswish", use_se=False
    )
    assert not block.use_residual
    assert len(block.block) == 2  # no 1x1 expansion, no SE
    assert block.block[0][0].groups == 16
    assert block(torch.randn(1, 16, 8, 8)).shape == (1, 24, 4, 4)
    strided = MBConv(
        24, 24, kernel_size=3, stride=2, expand_ratio=3, activation="relu", use_se=False
    )
    assert not strided.use_residual
