"""The backbone built from a configuration follows DESIGN 2.1."""

import pytest
import torch
from torch import nn

from optuna_nachos.config import EENNConfig
from optuna_nachos.models import STAGES, FinalClassifier, MBConv, SqueezeExcitation, build_eenn


def mbconvs(module):
    return [m for m in module.modules() if isinstance(m, MBConv)]


def depthwise(block):
    return next(m for m in block.modules() if isinstance(m, nn.Conv2d) and m.groups > 1)


def test_stage_specs():
    assert [s.out_channels for s in STAGES] == [24, 40, 80, 112, 160]
    assert [s.stride for s in STAGES] == [2, 2, 2, 1, 2]
    assert [s.activation for s in STAGES] == ["relu", "relu", "hswish", "hswish", "hswish"]
    assert [s.use_se for s in STAGES] == [False, True, False, True, True]


@pytest.fixture
def model():
    cfg = EENNConfig(
        depths=(2, 3, 4, 2, 3),
        kernel_sizes=((3, 5), (7, 5, 3), (3, 5, 7, 3), (7, 7), (3, 3, 5)),
        expand_ratios=((3, 4), (6, 4, 3), (6, 6, 4, 3), (3, 6), (4, 3, 6)),
        exit_stages=(2,),
    )
    return build_eenn(cfg, num_classes=10, in_channels=1)


def test_stem(model):
    stem = model.segments[0][0]
    conv = stem[0][0]
    assert (conv.in_channels, conv.out_channels) == (1, 16)
    assert conv.kernel_size == (3, 3) and conv.stride == (2, 2)
    assert isinstance(stem[0][2], nn.Hardswish)
    fixed = stem[1]
    assert isinstance(fixed, MBConv) and fixed.use_residual
    assert depthwise(fixed).kernel_size == (3, 3)
    assert depthwise(fixed).in_channels == 16  # expand ratio 1


def test_stages_follow_the_config(model):
    cfg = model.config
    assert len(model.segments) == 5
    for index, (segment, spec) in enumerate(zip(model.segments, STAGES)):
        blocks = mbconvs(segment)[1:] if index == 0 else mbconvs(segment)
        assert len(blocks) == cfg.depths[index]
        for layer, block in enumerate(blocks):
            conv = depthwise(block)
            assert conv.kernel_size[0] == cfg.kernel_sizes[index][layer]
            assert conv.stride[0] == (spec.stride if layer == 0 else 1)
            in_channels = block.block[0][0].in_channels
            assert conv.in_channels == in_channels * cfg.expand_ratios[index][layer]
            assert block.block[-1][0].out_channels == spec.out_channels
            has_se = any(isinstance(m, SqueezeExcitation) for m in block.modules())
            assert has_se == spec.use_se
            activation = nn.ReLU if spec.activation == "relu" else nn.Hardswish
            assert isinstance(block.block[0][2], activation)


def test_feature_sizes_at_resolution_32(model):
    x = torch.zeros(2, 1, 32, 32)
    shapes = []
    model.eval()
    with torch.no_grad():
        for segment in model.segments:
            x = segment(x)
            shapes.append(tuple(x.shape[1:]))
    assert shapes == [(24, 8, 8), (40, 4, 4), (80, 2, 2), (112, 2, 2), (160, 1, 1)]


def test_final_classifier(model):
    head = model.final_head
    assert isinstance(head, FinalClassifier)
    assert (head.expand[0].in_channels, head.expand[0].out_channels) == (160, 960)
    assert isinstance(head.expand[2], nn.Hardswish)
    assert (head.features.in_channels, head.features.out_channels) == (960, 1280)
    assert (head.classifier.in_features, head.classifier.out_features) == (1280, 10)
    assert head.eval()(torch.randn(3, 160, 1, 1)).shape == (3, 10)
