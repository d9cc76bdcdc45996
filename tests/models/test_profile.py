import torch
from torch import nn

from optuna_nachos.models import profile_macs


def test_conv_macs_by_hand():
    conv = nn.Conv2d(3, 8, 3, padding=1)
    macs, out = profile_macs(conv, torch.zeros(1, 3, 8, 8))
    assert out.shape == (1, 8, 8, 8)
    assert macs == 8 * 8 * 8 * 3 * 9
    strided, _ = profile_macs(nn.Conv2d(3, 8, 3, stride=2, padding=1), torch.zeros(1, 3, 8, 8))
    assert strided == 8 * 4 * 4 * 3 * 9


def test_depthwise_and_grouped_conv_macs():
    depthwise = nn.Conv2d(16, 16, 5, padding=2, groups=16, bias=False)
    macs, _ = profile_macs(depthwise, torch.zeros(1, 16, 6, 6))
    assert macs == 16 * 6 * 6 * 1 * 25
    grouped = nn.Conv2d(8, 12, 1, groups=4)
    macs, _ = profile_macs(grouped, torch.zeros(1, 8, 5, 5))
    assert macs == 12 * 5 * 5 * 2


def test_linear_macs_count_the_batch():
    macs, out = profile_macs(nn.Linear(10, 4), torch.zeros(2, 10))
    assert macs == 2 * 4 * 10
    assert out.shape == (2, 4)


def test_only_conv_and_linear_layers_count():
    model = nn.Sequential(
        nn.Conv2d(2, 4, 1, bias=True),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 3),
    )
    macs, out = profile_macs(model, torch.zeros(1, 2, 4, 4))
    assert macs == 4 * 16 * 2 + 3 * 4
    assert out.shape == (1, 3)


def test_profile_restores_the_mode_and_leaves_statistics_alone():
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4))
    model.train()
    before = model[1].running_mean.clone()
    _, out = profile_macs(model, torch.randn(2, 2, 5, 5) + 3)
    assert model.training and model[1].training
    assert torch.equal(model[1].running_mean, before)  # profiled in eval mode
    assert not out.requires_grad  # no autograd graph
    model.eval()
    profile_macs(model, torch.randn(1, 2, 5, 5))
    assert not model.training


def test_profile_removes_its_hooks():
    conv = nn.Conv2d(1, 1, 1)
    first, _ = profile_macs(conv, torch.zeros(1, 1, 2, 2))
    second, _ = profile_macs(conv, torch.zeros(1, 1, 2, 2))
    assert first == second == 4
    assert not conv._forward_hooks
