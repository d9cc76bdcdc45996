"""Early-exit classifier heads and their registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from optuna_nachos._registry import Registry
from optuna_nachos.models._blocks import MBConv, make_divisible
from optuna_nachos.models._layer_costs import conv2d_cost, linear_cost, mbconv_cost

ExitHeadFactory = Callable[..., nn.Module]
ExitHeadCost = Callable[..., tuple[int, int]]


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
        cost: The head's closed-form cost, called as
            ``cost(in_channels, side, num_classes, pool=p)`` for ``side`` x ``side`` features;
            returns ``(macs, params)`` of the module ``factory`` builds with the same
            arguments, counted as fvcore counts them (see :func:`conv2d_cost`). ``None``: the
            head is counted on built networks only (``method="fvcore"``).
    """

    name: str
    factory: ExitHeadFactory
    pool_sizes: tuple[int, ...] = (1,)
    cost: ExitHeadCost | None = None


def _max_pool(spatial_size: tuple[int, int], pool: int) -> nn.Module:
    """The optional max-pool of kernel and stride ``pool`` a head applies first."""
    height, width = spatial_size
    if pool > 1 and (height < pool or width < pool):
        raise ValueError(
            f"cannot max-pool {height}x{width} features with size {pool}; use a smaller pool."
        )
    return nn.MaxPool2d(pool) if pool > 1 else nn.Identity()


_NACHOS_CHANNELS = (32, 64, 128)
_NACHOS_KERNEL = 3


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
        layers: list[nn.Module] = []
        channels = in_channels
        for index, out_channels in enumerate(_NACHOS_CHANNELS):
            # The first ReLU must not act in place: the backbone goes on with these features.
            layers.append(nn.ReLU(inplace=index > 0))
            layers.append(
                nn.Conv2d(channels, out_channels, _NACHOS_KERNEL, padding=_NACHOS_KERNEL // 2)
            )
            channels = out_channels
        layers.append(nn.ReLU(inplace=True))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels * height * width, num_classes + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(self.pool(x)).flatten(1))

    @staticmethod
    def cost(in_channels: int, side: int, num_classes: int, *, pool: int = 1) -> tuple[int, int]:
        """``(macs, params)`` of the head on ``side`` x ``side`` features, as fvcore counts
        them: its cost formula (:class:`ExitHeadSpec`)."""
        side //= pool  # max-pool of kernel and stride ``pool``, no padding
        macs = params = 0
        channels = in_channels
        for out_channels in _NACHOS_CHANNELS:
            # Stride 1 and padding ``kernel // 2`` keep the side.
            m, p = conv2d_cost(channels, out_channels, _NACHOS_KERNEL, side_out=side)
            macs, params, channels = macs + m, params + p, out_channels
        m, p = linear_cost(channels * side * side, num_classes + 1)
        return macs + m, params + p


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

    @staticmethod
    def cost(in_channels: int, side: int, num_classes: int, *, pool: int = 1) -> tuple[int, int]:
        """``(macs, params)`` of the head, as fvcore counts them: its cost formula
        (:class:`ExitHeadSpec`). Global pooling makes them independent of ``side`` and
        ``pool``."""
        del side, pool
        return linear_cost(in_channels, num_classes + 1)


_MBCONV_KERNEL = 3
_MBCONV_EXPAND = 3


def _mbconv_head_channels(in_channels: int) -> int:
    """Output channels of the MBConv head's block."""
    return make_divisible(max(16, in_channels // 2))


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
        out_channels = _mbconv_head_channels(in_channels)
        self.pool = _max_pool(spatial_size, pool)
        self.block = MBConv(
            in_channels,
            out_channels,
            kernel_size=_MBCONV_KERNEL,
            stride=1,
            expand_ratio=_MBCONV_EXPAND,
            activation="relu",
            use_se=False,
        )
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(out_channels, num_classes + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.global_pool(self.block(self.pool(x))).flatten(1))

    @staticmethod
    def cost(in_channels: int, side: int, num_classes: int, *, pool: int = 1) -> tuple[int, int]:
        """``(macs, params)`` of the head on ``side`` x ``side`` features, as fvcore counts
        them: its cost formula (:class:`ExitHeadSpec`)."""
        out_channels = _mbconv_head_channels(in_channels)
        block_macs, block_params = mbconv_cost(
            in_channels,
            out_channels,
            kernel_size=_MBCONV_KERNEL,
            stride=1,
            expand_ratio=_MBCONV_EXPAND,
            use_se=False,
            side=side // pool,  # max-pool of kernel and stride ``pool``, no padding
        )
        macs, params = linear_cost(out_channels, num_classes + 1)
        return block_macs + macs, block_params + params


_EXIT_HEADS: Registry[ExitHeadSpec] = Registry("exit head")


def register_exit_head(
    name: str,
    factory: ExitHeadFactory,
    *,
    pool_sizes: tuple[int, ...] = (1,),
    cost: ExitHeadCost | None = None,
    overwrite: bool = False,
) -> None:
    """Register an exit head design under ``name``.

    Args:
        name: Name used in configurations.
        factory: See :class:`ExitHeadSpec`.
        pool_sizes: Max-pool sizes the cost-monotone rule may try, smallest first.
        cost: The head's closed-form ``(macs, params)``, see :class:`ExitHeadSpec`. It lets
            the analytic cost model (the default of :func:`~optuna_nachos.exit_macs`, and what
            the NACHOS sampler screens candidates with) count networks with this head without
            building them; without it they are counted with ``method="fvcore"`` only.
        overwrite: Replace an existing registration instead of raising.

    Raises:
        ValueError: If ``name`` is taken and ``overwrite`` is false, or ``pool_sizes`` is empty.
        TypeError: If ``cost`` is neither callable nor ``None``.
    """
    if not pool_sizes or any(p < 1 for p in pool_sizes):
        raise ValueError(f"pool_sizes must be positive integers, got {pool_sizes}.")
    if cost is not None and not callable(cost):
        raise TypeError(
            f"cost of exit head {name!r} must be a function "
            f"cost(in_channels, side, num_classes, pool=p) -> (macs, params) or None, "
            f"got {cost!r}."
        )
    spec = ExitHeadSpec(name, factory, tuple(pool_sizes), cost)
    _EXIT_HEADS.add(name, spec, overwrite=overwrite)


def get_exit_head(name: str) -> ExitHeadSpec:
    """The registered exit head ``name``.

    Raises:
        KeyError: If no head of that name is registered; the message lists the known ones.
    """
    return _EXIT_HEADS.entry(name)


def list_exit_heads() -> list[str]:
    """Names of the registered exit heads."""
    return _EXIT_HEADS.names()


register_exit_head("nachos", NachosExitHead, pool_sizes=(1, 2, 4), cost=NachosExitHead.cost)
register_exit_head("pool_linear", PoolLinearExitHead, cost=PoolLinearExitHead.cost)
register_exit_head("mbconv", MBConvExitHead, pool_sizes=(1, 2, 4), cost=MBConvExitHead.cost)
