"""The OFA-style MobileNetV3 backbone of the NACHOS search space (width 1.0)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from optuna_nachos.config import EENNConfig
from optuna_nachos.models._blocks import ConvBNAct, MBConv


@dataclass(frozen=True)
class StageSpec:
    """Fixed properties of one searchable stage."""

    out_channels: int
    stride: int
    activation: str
    use_se: bool


STEM_CHANNELS = 16
STAGES: tuple[StageSpec, ...] = (
    StageSpec(24, 2, "relu", False),
    StageSpec(40, 2, "relu", True),
    StageSpec(80, 2, "hswish", False),
    StageSpec(112, 1, "hswish", True),
    StageSpec(160, 2, "hswish", True),
)
FINAL_EXPAND_CHANNELS = 960
FINAL_FEATURE_CHANNELS = 1280


def build_stem(in_channels: int) -> nn.Sequential:
    """3x3 stride-2 convolution to 16 channels, then the fixed first MBConv (3x3, expand 1)."""
    return nn.Sequential(
        ConvBNAct(in_channels, STEM_CHANNELS, 3, stride=2, activation="hswish"),
        MBConv(
            STEM_CHANNELS,
            STEM_CHANNELS,
            kernel_size=3,
            stride=1,
            expand_ratio=1,
            activation="relu",
            use_se=False,
        ),
    )


def build_stage(config: EENNConfig, stage_index: int, in_channels: int) -> nn.Sequential:
    """The layers of searchable stage ``stage_index`` (0-based) of ``config``."""
    spec = STAGES[stage_index]
    layers = []
    for layer, (kernel, expand) in enumerate(
        zip(config.kernel_sizes[stage_index], config.expand_ratios[stage_index])
    ):
        layers.append(
            MBConv(
                in_channels if layer == 0 else spec.out_channels,
                spec.out_channels,
                kernel_size=kernel,
                stride=spec.stride if layer == 0 else 1,
                expand_ratio=expand,
                activation=spec.activation,
                use_se=spec.use_se,
            )
        )
    return nn.Sequential(*layers)


class FinalClassifier(nn.Module):
    """1x1 conv 160->960 (BN, hard-swish), global pool, 1x1 960->1280 (hard-swish), linear."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.expand = ConvBNAct(in_channels, FINAL_EXPAND_CHANNELS, 1, activation="hswish")
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.features = nn.Conv2d(FINAL_EXPAND_CHANNELS, FINAL_FEATURE_CHANNELS, 1)
        self.activation = nn.Hardswish(inplace=True)
        self.classifier = nn.Linear(FINAL_FEATURE_CHANNELS, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.activation(self.features(self.pool(self.expand(x))))
        return self.classifier(x.flatten(1))
