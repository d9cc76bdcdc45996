"""Early-exit classifier heads and their registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from optuna_nachos.models._blocks import MBConv, make_divisible

ExitHeadFactory = Callable[..., nn.Module]


@dataclass(frozen=True)
class ExitHeadSpec:
    """A registered exit head design.

    Attributes:
        name: Registry name, used in :class:`~optuna_nachos.EENNConfig.exit_head`.
        factory: Called as ``factory(in_channels, spatial_size, num_classes, pool=p)``; returns a
            module mapping features to ``num_classes + 1`` outputs (the last is the confidence
            logit).
        pool_sizes: Max-pool sizes the cost rule may put in front of the head, in the order
            tried; ``(1,)`` for heads whose cost pooling cannot lower.
    """

    name: str
    factory: ExitHeadFactory
    pool_sizes: tuple[int, ...] = (1,)


def _max_pool(spatial_size: tuple[int, int], pool: int) -> nn.Module:
    """The optional max-pool of kernel and stride ``pool`` a head applies first."""
    height, width = spatial_size
    if pool > 1 and (height < pool or width < pool):
        raise ValueError(
            f"cannot max-pool {height}x{width} features with size {pool}; use a smaller pool."
        )
    return nn.MaxPool2d(pool) if pool > 1 else nn.Identity()


class NachosExitHead(nn.Module):
    """The NACHOS exit head: three 3x3 convolutions (32, 64, 128) and a linear layer.

    ReLU precedes every layer; an optional max-pool of kernel and stride ``pool`` goes first.
    The output has ``num_classes + 1`` units: class logits and the confidence logit.
    """

    def __init__(
        self, in_channels: int, spatial_size: tuple[int, int], num_classes: int, *, pool: int = 1
    ) -> None:
        super().__init__()
        self.pool = _max_pool(spatial_size, pool)
        height, width = spatial_size[0] // pool, spatial_size[1] // pool
        self.features = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(in_channels, 32, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(64, 128, 3, padding=1),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(128 * height * width, num_classes + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(self.pool(x)).flatten(1))


class PoolLinearExitHead(nn.Module):
    """A cheap exit head: global average pooling and one linear layer."""

    def __init__(
        self, in_channels: int, spatial_size: tuple[int, int], num_classes: int, *, pool: int = 1
    ) -> None:
        super().__init__()
        del spatial_size, pool  # global pooling makes the head independent of both
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(in_channels, num_classes + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(x).flatten(1))


class MBConvExitHead(nn.Module):
    """A small MBConv exit head: one inverted residual block, global pooling and a linear layer.

    The block expands the features by 3 (1x1 convolution), filters them with a 3x3 depthwise
    convolution and projects them to ``max(16, in_channels // 2)`` channels (BatchNorm and
    ReLU as in MobileNetV3); an optional max-pool of kernel and stride ``pool`` goes first.
    """

    def __init__(
        self, in_channels: int, spatial_size: tuple[int, int], num_classes: int, *, pool: int = 1
    ) -> None:
        super().__init__()
        out_channels = make_divisible(max(16, in_channels // 2))
        self.pool = _max_pool(spatial_size, pool)
        self.block = MBConv(
            in_channels,
            out_channels,
            kernel_size=3,
            stride=1,
            expand_ratio=3,
            activation="relu",
            use_se=False,
        )
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(out_channels, num_classes + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.global_pool(self.block(self.pool(x))).flatten(1))


_EXIT_HEADS: dict[str, ExitHeadSpec] = {}


def register_exit_head(
    name: str,
    factory: ExitHeadFactory,
    *,
    pool_sizes: tuple[int, ...] = (1,),
    overwrite: bool = False,
) -> None:
    """Register an exit head design under ``name``.

    Args:
        name: Name used in configurations.
        factory: See :class:`ExitHeadSpec`.
        pool_sizes: Max-pool sizes the cost-monotone rule may try, smallest first.
        overwrite: Replace an existing registration instead of raising.

    Raises:
        ValueError: If ``name`` is taken and ``overwrite`` is false, or ``pool_sizes`` is empty.
    """
    if name in _EXIT_HEADS and not overwrite:
        raise ValueError(f"exit head {name!r} is already registered; pass overwrite=True.")
    if not pool_sizes or any(p < 1 for p in pool_sizes):
        raise ValueError(f"pool_sizes must be positive integers, got {pool_sizes}.")
    _EXIT_HEADS[name] = ExitHeadSpec(name, factory, tuple(pool_sizes))


def get_exit_head(name: str) -> ExitHeadSpec:
    """The registered exit head ``name``.

    Raises:
        KeyError: If no head of that name is registered; the message lists the known ones.
    """
    try:
        return _EXIT_HEADS[name]
    except KeyError:
        raise KeyError(
            f"unknown exit head {name!r}; registered heads: {sorted(_EXIT_HEADS)}."
        ) from None


def list_exit_heads() -> list[str]:
    """Names of the registered exit heads."""
    return sorted(_EXIT_HEADS)


register_exit_head("nachos", NachosExitHead, pool_sizes=(1, 2, 4))
register_exit_head("pool_linear", PoolLinearExitHead)
register_exit_head("mbconv", MBConvExitHead, pool_sizes=(1, 2, 4))
