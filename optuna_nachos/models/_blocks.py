"""Building blocks of the MobileNetV3 backbone."""

from __future__ import annotations

import torch
from torch import nn


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round ``value`` to the nearest multiple of ``divisor``, never dropping more than 10 %."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def hidden_channels(in_channels: int, expand_ratio: int) -> int:
    """Channels inside an MBConv block: the input's when ``expand_ratio`` is 1 (no expansion)."""
    return in_channels if expand_ratio == 1 else make_divisible(in_channels * expand_ratio)


def squeezed_channels(channels: int) -> int:
    """Channels of the squeeze-excitation bottleneck (reduction 4)."""
    return make_divisible(channels / 4)


def make_activation(name: str | None) -> nn.Module:
    """Activation module by name: ``"relu"``, ``"hswish"`` or ``None`` (identity)."""
    if name is None:
        return nn.Identity()
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "hswish":
        return nn.Hardswish(inplace=True)
    raise ValueError(f"unknown activation {name!r}; expected 'relu', 'hswish' or None.")


class ConvBNAct(nn.Sequential):
    """Convolution without bias, BatchNorm, then an optional activation."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        stride: int = 1,
        groups: int = 1,
        activation: str | None = "relu",
    ) -> None:
        super().__init__(
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride=stride,
                padding=kernel_size // 2,
                groups=groups,
                bias=False,
            ),
            nn.BatchNorm2d(out_channels),
            make_activation(activation),
        )


class SqueezeExcitation(nn.Module):
    """Squeeze-and-excitation with a hard-sigmoid gate, reduction 4 (as in MobileNetV3)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.squeezed_channels = squeezed_channels(channels)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, self.squeezed_channels, 1)
        self.relu = nn.ReLU(inplace=True)
        self.expand = nn.Conv2d(self.squeezed_channels, channels, 1)
        self.gate = nn.Hardsigmoid(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.gate(self.expand(self.relu(self.reduce(self.pool(x)))))
        return x * scale


class MBConv(nn.Module):
    """Inverted residual block: 1x1 expand, depthwise kxk, optional SE, 1x1 project."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        kernel_size: int,
        stride: int,
        expand_ratio: int,
        activation: str,
        use_se: bool,
    ) -> None:
        super().__init__()
        hidden = hidden_channels(in_channels, expand_ratio)
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNAct(in_channels, hidden, 1, activation=activation))
        layers.append(
            ConvBNAct(
                hidden, hidden, kernel_size, stride=stride, groups=hidden, activation=activation
            )
        )
        if use_se:
            layers.append(SqueezeExcitation(hidden))
        layers.append(ConvBNAct(hidden, out_channels, 1, activation=None))
        self.block = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.use_residual else out
