"""Counting per-exit costs of any early-exit network with fvcore."""

from __future__ import annotations

import subprocess
import sys
import warnings
from itertools import pairwise

import pytest
import torch
from torch import nn

from optuna_nachos.cost import _fvcore, count_exit_macs, count_exit_params, exit_macs
from optuna_nachos.models import attach_exits, build_eenn, profile_macs


def _restricted_fvcore_total(model: nn.Module, example: torch.Tensor) -> int:
    """fvcore's conv/linear/matmul count of a plain module, set up independently."""
    from fvcore.nn import FlopCountAnalysis
    from fvcore.nn import jit_handles as handles

    analysis = FlopCountAnalysis(model, example).clear_op_handles()
    analysis.set_op_handle(
        "aten::_convolution",
        handles.conv_flop_jit,
        "aten::addmm",
        handles.addmm_flop_jit,
        "aten::linear",
        handles.linear_flop_jit,
        "aten::matmul",
        handles.matmul_flop_jit,
        "aten::mm",
        handles.matmul_flop_jit,
        "aten::bmm",
        handles.bmm_flop_jit,
        "aten::einsum",
        handles.einsum_flop_jit,
    )
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    return int(analysis.total())


def _resnet18_segments(num_classes: int) -> tuple[nn.Module, list[nn.Module], nn.Module]:
    from torchvision import models

    resnet = models.resnet18(weights=None, num_classes=num_classes)
    segments = [
        nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool, resnet.layer1),
        resnet.layer2,
        resnet.layer3,
        resnet.layer4,
    ]
    final = nn.Sequential(resnet.avgpool, nn.Flatten(1), resnet.fc)
    return resnet, segments, final


def test_resnet18_with_attached_exits() -> None:
    resnet, segments, final = _resnet18_segments(10)
    shape = (3, 64, 64)
    model = attach_exits(segments, final, exit_after=[0, 1, 2], num_classes=10, input_shape=shape)
    reference = count_exit_macs(model, shape, convention="reference")
    assert len(reference) == 4
    assert all(a < b for a, b in pairwise(reference))

    resnet.eval()
    full = _restricted_fvcore_total(resnet, torch.zeros(1, *shape))
    assert reference[-1] == full
    # independent hook-based count of the full ResNet-18 agrees with fvcore
    assert profile_macs(resnet, torch.zeros(1, *shape))[0] == full

    params = count_exit_params(model)
    assert params[-1] == sum(p.numel() for p in model.parameters())
    assert params[-1] == sum(p.numel() for p in resnet.parameters()) + sum(
        (c + 1) * 11 for c in (64, 128, 256)
    )
    assert all(a < b for a, b in pairwise(params))


def test_batchnorm_pooling_and_activations_are_not_counted() -> None:
    model = attach_exits(
        [
            nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU()),
            nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(4, 8, 1, bias=True), nn.Hardswish()),
        ],
        nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(8, 3)),
        exit_after=[0],
        num_classes=3,
        input_shape=(2, 6, 6),
    )
    first = 6 * 6 * 4 * 2 * 9
    head = 4 * 4  # pool_linear: 4 channels -> 3 classes + 1 confidence
    final = first + 3 * 3 * 8 * 4 + 8 * 3
    assert count_exit_macs(model, (2, 6, 6), convention="reference") == [first + head, final]
    assert count_exit_macs(model, (2, 6, 6)) == [first + head, final + head]


def test_counts_in_eval_mode_and_restores_training_mode(small_config) -> None:
    model = build_eenn(small_config(exit_stages=(2,)), num_classes=10)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    count_exit_macs(model, (3, 32, 32))
    assert model.training
    # eval mode: BatchNorm running statistics were not updated by the trace
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    model.eval()
    count_exit_macs(model, (3, 32, 32))
    assert not model.training


def test_count_is_quiet(small_config) -> None:
    model = build_eenn(small_config(exit_stages=(1, 4)), num_classes=10)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        count_exit_macs(model, (3, 32, 32))
        count_exit_params(model)
    assert [str(w.message) for w in caught] == []


def test_fvcore_import_is_quiet() -> None:
    """fvcore/iopath warn about deprecated torch.jit APIs at import; the cost layer hides it."""
    code = (
        "import sys, warnings\n"
        "import optuna_nachos.cost._fvcore as f\n"
        "if 'fvcore' in sys.modules:\n"
        "    print('preloaded')\n"
        "    sys.exit()\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    f._fvcore()\n"
        "print(len(caught))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    if result.stdout.strip() == "preloaded":
        pytest.skip("another module of the package imports fvcore eagerly")
    assert result.stdout.strip() == "0", result.stderr


def test_only_conv_linear_matmul_handles_are_installed() -> None:
    assert set(_fvcore._COUNTED_OPS) == {
        "aten::_convolution",
        "aten::addmm",
        "aten::linear",
        "aten::matmul",
        "aten::mm",
        "aten::bmm",
        "aten::einsum",
    }


def test_matches_exit_macs_of_the_config(small_config) -> None:
    config = small_config(exit_stages=(1, 2, 3, 4), resolution=33, exit_head="pool_linear")
    model = build_eenn(config, num_classes=2, in_channels=1)
    assert count_exit_macs(model, (1, 33, 33)) == exit_macs(config, num_classes=2, in_channels=1)


def test_errors(small_config) -> None:
    model = build_eenn(small_config(exit_stages=(1,)), num_classes=10)
    with pytest.raises(TypeError, match="EarlyExitNetwork"):
        count_exit_macs(nn.Linear(2, 2), (2,))
    with pytest.raises(TypeError, match="EarlyExitNetwork"):
        count_exit_params(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="input_shape"):
        count_exit_macs(model, (1, 3, 32, 32, 0))
    with pytest.raises(ValueError, match="input_shape"):
        count_exit_macs(model, ())
    with pytest.raises(ValueError, match="convention"):
        count_exit_macs(model, (3, 32, 32), convention="both")
