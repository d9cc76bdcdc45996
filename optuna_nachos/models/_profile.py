"""Counting multiply-accumulates of conv and linear layers with forward hooks."""

from __future__ import annotations

import torch
from torch import nn


def _layer_macs(module: nn.Module, output: torch.Tensor) -> int:
    if isinstance(module, nn.Conv2d):
        kernel = module.kernel_size[0] * module.kernel_size[1]
        per_output = module.in_channels // module.groups * kernel
        return output.numel() * per_output
    return output.numel() * module.in_features


@torch.no_grad()
def profile_macs(module: nn.Module, example: torch.Tensor) -> tuple[int, torch.Tensor]:
    """MACs of conv and linear layers for one forward of ``example``, and the output.

    Counts ``batch * output elements * (input channels / groups) * kernel area`` for
    convolutions and ``batch * output elements * input features`` for linear layers, as
    fvcore does; biases, BatchNorm, activations and pooling are not counted.
    """
    total = 0

    def hook(layer: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        total += _layer_macs(layer, output)

    handles = [
        layer.register_forward_hook(hook)
        for layer in module.modules()
        if isinstance(layer, (nn.Conv2d, nn.Linear))
    ]
    was_training = module.training
    module.eval()
    try:
        output = module(example)
    finally:
        module.train(was_training)
        for handle in handles:
            handle.remove()
    return total, output
