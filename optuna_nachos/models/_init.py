"""Weight initialization, as torchvision initializes MobileNetV3."""

from __future__ import annotations

from torch import nn


def init_weights(module: nn.Module) -> nn.Module:
    """Initialize every layer of ``module`` in place and return it.

    Convolutions: Kaiming normal (fan-out), zero bias; BatchNorm: weight 1, bias 0; linear
    layers: normal with standard deviation 0.01, zero bias. PyTorch's default initialization
    leaves exit heads on 1x1 and 2x2 feature maps with near-constant outputs, which makes them
    learn very slowly.
    """
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            nn.init.kaiming_normal_(layer.weight, mode="fan_out")
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(layer.weight)
            nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.Linear):
            nn.init.normal_(layer.weight, 0, 0.01)
            nn.init.zeros_(layer.bias)
    return module
