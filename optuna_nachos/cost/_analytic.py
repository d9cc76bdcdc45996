"""Closed-form MACs and parameters of the MobileNetV3 early-exit networks.

Nothing here builds a torch module: the numbers follow the layer arithmetic of
:mod:`optuna_nachos.models` (convolution output sizes with padding ``k // 2``,
:func:`~optuna_nachos.models.make_divisible` channel rounding, the cost-monotone pooling rule of
:func:`~optuna_nachos.models.build_eenn`) and equal fvcore's conv/linear count MAC for MAC.
Per-layer and per-stage pieces are memoized on plain integers, so that a sampler screening
thousands of candidates pays for each distinct stage once.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

from optuna_nachos.config import EENNConfig
from optuna_nachos.cost._common import check_counts
from optuna_nachos.models import (
    FINAL_EXPAND_CHANNELS,
    FINAL_FEATURE_CHANNELS,
    STAGES,
    STEM_CHANNELS,
    NachosExitHead,
    PoolLinearExitHead,
    get_exit_head,
    make_divisible,
)

_STEM_KERNEL = 3
_STEM_STRIDE = 2
_NACHOS_HEAD_CHANNELS = (32, 64, 128)
_NACHOS_HEAD_KERNEL = 3

# Head designs whose cost the closed form knows, by registered factory (identity, not name:
# a user may re-register a name with another factory).
_KNOWN_HEADS = ((NachosExitHead, "nachos"), (PoolLinearExitHead, "pool_linear"))


class Analysis(NamedTuple):
    """Per-piece MACs and parameters of one configuration.

    Attributes:
        segment_macs: Cumulative MACs of segments ``0..i`` (the stem belongs to segment 0).
        segment_params: Cumulative parameters of segments ``0..i``.
        exit_positions: Segment index read by each early exit.
        head_macs: MACs of each early-exit head, with its chosen pool.
        head_params: Parameters of each early-exit head.
        exit_pools: Max-pool size in front of each early-exit head.
        final_macs: MACs of the final classifier.
        final_params: Parameters of the final classifier.
    """

    segment_macs: tuple[int, ...]
    segment_params: tuple[int, ...]
    exit_positions: tuple[int, ...]
    head_macs: tuple[int, ...]
    head_params: tuple[int, ...]
    exit_pools: tuple[int, ...]
    final_macs: int
    final_params: int


def _conv_side(side: int, kernel: int, stride: int) -> int:
    """Output side of a convolution with padding ``kernel // 2``."""
    return (side + 2 * (kernel // 2) - kernel) // stride + 1


def _conv_bn(
    in_ch: int, out_ch: int, kernel: int, *, groups: int, side_out: int
) -> tuple[int, int]:
    """MACs and parameters of ConvBNAct (bias-free convolution, BatchNorm)."""
    weights = out_ch * (in_ch // groups) * kernel * kernel
    return side_out * side_out * weights, weights + 2 * out_ch


@lru_cache(maxsize=16384)
def _mbconv(
    in_ch: int, out_ch: int, kernel: int, stride: int, expand: int, use_se: bool, side: int
) -> tuple[int, int, int]:
    """MACs, parameters and output side of one MBConv block."""
    hidden = in_ch if expand == 1 else make_divisible(in_ch * expand)
    side_out = _conv_side(side, kernel, stride)
    macs = params = 0
    if expand != 1:
        m, p = _conv_bn(in_ch, hidden, 1, groups=1, side_out=side)
        macs, params = macs + m, params + p
    m, p = _conv_bn(hidden, hidden, kernel, groups=hidden, side_out=side_out)
    macs, params = macs + m, params + p
    if use_se:
        squeezed = make_divisible(hidden / 4)
        # Two 1x1 convolutions with bias on the pooled 1x1 map.
        macs += 2 * hidden * squeezed
        params += 2 * hidden * squeezed + squeezed + hidden
    m, p = _conv_bn(hidden, out_ch, 1, groups=1, side_out=side_out)
    return macs + m, params + p, side_out


@lru_cache(maxsize=1024)
def _stem(in_channels: int, resolution: int) -> tuple[int, int, int]:
    """MACs, parameters and output side of the stem (conv 3x3 s2, then MBConv 3x3 e1)."""
    side = _conv_side(resolution, _STEM_KERNEL, _STEM_STRIDE)
    macs, params = _conv_bn(in_channels, STEM_CHANNELS, _STEM_KERNEL, groups=1, side_out=side)
    m, p, side = _mbconv(STEM_CHANNELS, STEM_CHANNELS, 3, 1, 1, False, side)
    return macs + m, params + p, side


@lru_cache(maxsize=65536)
def _stage(
    stage_index: int,
    in_ch: int,
    kernels: tuple[int, ...],
    expands: tuple[int, ...],
    side: int,
) -> tuple[int, int, int]:
    """MACs, parameters and output side of searchable stage ``stage_index`` (0-based)."""
    spec = STAGES[stage_index]
    macs = params = 0
    for layer, (kernel, expand) in enumerate(zip(kernels, expands, strict=True)):
        m, p, side = _mbconv(
            in_ch if layer == 0 else spec.out_channels,
            spec.out_channels,
            kernel,
            spec.stride if layer == 0 else 1,
            expand,
            spec.use_se,
            side,
        )
        macs, params = macs + m, params + p
    return macs, params, side


@lru_cache(maxsize=4096)
def _final(in_ch: int, side: int, num_classes: int) -> tuple[int, int]:
    """MACs and parameters of the final classifier."""
    macs, params = _conv_bn(in_ch, FINAL_EXPAND_CHANNELS, 1, groups=1, side_out=side)
    features = FINAL_EXPAND_CHANNELS * FINAL_FEATURE_CHANNELS
    macs += features + FINAL_FEATURE_CHANNELS * num_classes
    params += features + FINAL_FEATURE_CHANNELS + (FINAL_FEATURE_CHANNELS + 1) * num_classes
    return macs, params


@lru_cache(maxsize=16384)
def _head(kind: str, in_ch: int, side: int, num_classes: int, pool: int) -> tuple[int, int]:
    """MACs and parameters of an early-exit head of a known design."""
    outputs = num_classes + 1
    if kind == "pool_linear":
        return in_ch * outputs, (in_ch + 1) * outputs
    side = side // pool  # max-pool of kernel and stride ``pool``, no padding
    area = side * side
    area_k = _NACHOS_HEAD_KERNEL * _NACHOS_HEAD_KERNEL
    macs = params = 0
    channels = in_ch
    for out_ch in _NACHOS_HEAD_CHANNELS:
        macs += area * channels * out_ch * area_k
        params += channels * out_ch * area_k + out_ch
        channels = out_ch
    features = channels * area
    return macs + features * outputs, params + (features + 1) * outputs


def analyze(config: EENNConfig, *, num_classes: int, in_channels: int = 3) -> Analysis:
    """Closed-form MACs and parameters of every piece of ``config``'s network.

    Raises:
        TypeError: If ``config`` is not an :class:`~optuna_nachos.EENNConfig`.
        ValueError: If the counts are invalid, or the exit head is a custom design.
        KeyError: If the exit head is not registered.
    """
    if not isinstance(config, EENNConfig):
        raise TypeError(f"config must be an EENNConfig, got {type(config).__name__}.")
    check_counts(num_classes, in_channels)
    macs, params, side = _stem(in_channels, config.resolution)
    cumulative_macs: list[int] = []
    cumulative_params: list[int] = []
    sides: list[int] = []
    channels = STEM_CHANNELS
    for index, spec in enumerate(STAGES):
        m, p, side = _stage(
            index, channels, config.kernel_sizes[index], config.expand_ratios[index], side
        )
        macs, params = macs + m, params + p
        cumulative_macs.append(macs)
        cumulative_params.append(params)
        sides.append(side)
        channels = spec.out_channels
    final_macs, final_params = _final(channels, side, num_classes)

    head_spec = get_exit_head(config.exit_head)  # KeyError on unknown heads, as build_eenn
    positions = tuple(stage - 1 for stage in config.exit_stages)
    head_macs: dict[int, int] = {}
    head_params: dict[int, int] = {}
    pools: dict[int, int] = {}
    if positions:
        kind = next((k for f, k in _KNOWN_HEADS if f is head_spec.factory), None)
        if kind is None:
            raise ValueError(
                f"the analytic cost model does not know the formula of the custom exit head "
                f"{config.exit_head!r}; count it on the built network with method='fvcore'."
            )
        pool_sizes = head_spec.pool_sizes
        next_cost = cumulative_macs[-1] + final_macs
        for position in reversed(positions):
            in_ch, side = STAGES[position].out_channels, sides[position]
            usable = [p for p in pool_sizes if p <= side] or [1]
            for pool in usable:
                m, p = _head(kind, in_ch, side, num_classes, pool)
                cost = cumulative_macs[position] + m
                if cost < next_cost:
                    break
            head_macs[position], head_params[position], pools[position] = m, p, pool
            next_cost = cost
    return Analysis(
        segment_macs=tuple(cumulative_macs),
        segment_params=tuple(cumulative_params),
        exit_positions=positions,
        head_macs=tuple(head_macs[p] for p in positions),
        head_params=tuple(head_params[p] for p in positions),
        exit_pools=tuple(pools[p] for p in positions),
        final_macs=final_macs,
        final_params=final_params,
    )


def exit_pools_analytic(config: EENNConfig, *, num_classes: int, in_channels: int = 3) -> list[int]:
    """Max-pool size in front of each early-exit head, as :func:`~optuna_nachos.build_eenn`
    chooses it, computed without building the network.

    Args:
        config: The network.
        num_classes: Number of classes, at least 2.
        in_channels: Channels of the input images.

    Returns:
        One pool size per early exit (``1`` means no pooling), shallowest first; equal to
        ``build_eenn(config, ...).exit_pools``.

    Raises:
        ValueError: If the exit head is a custom registered design (its cost formula is
            unknown; build the network and read ``exit_pools`` instead).
    """
    return list(analyze(config, num_classes=num_classes, in_channels=in_channels).exit_pools)


def clear_caches() -> None:
    """Empty the memoized per-layer and per-stage pieces (for cold-start timing)."""
    for cached in (_mbconv, _stem, _stage, _final, _head):
        cached.cache_clear()
