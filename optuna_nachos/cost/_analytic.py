"""Closed-form MACs and parameters of the MobileNetV3 early-exit networks.

Nothing here builds a torch module: the numbers come from the layer formulas of
:mod:`optuna_nachos.models` (:func:`~optuna_nachos.models.mbconv_cost` and its kin for the
backbone, the cost formula each exit head is registered with) and the cost-monotone pooling
rule of :func:`~optuna_nachos.models.build_eenn`, and equal fvcore's conv/linear count MAC for
MAC. Pieces are memoized on plain values, so that a sampler screening thousands of candidates
pays for each distinct stage and head placement once.
"""

from __future__ import annotations

import operator
from functools import lru_cache
from typing import NamedTuple

from optuna_nachos.config import EENNConfig
from optuna_nachos.cost._common import check_counts
from optuna_nachos.models import (
    FINAL_EXPAND_CHANNELS,
    FINAL_FEATURE_CHANNELS,
    STAGES,
    STEM_CHANNELS,
    ExitHeadSpec,
    conv2d_cost,
    conv_bn_cost,
    conv_output_side,
    get_exit_head,
    linear_cost,
    mbconv_cost,
)

_STEM_KERNEL = 3
_STEM_STRIDE = 2

# Per head name, the registration whose formula gave the values ``_head`` has cached: a name
# registered again (``overwrite=True``) has a new spec object, and the cache is dropped.
_cached_heads: dict[str, ExitHeadSpec] = {}


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


@lru_cache(maxsize=16384)
def _mbconv(
    in_ch: int, out_ch: int, kernel: int, stride: int, expand: int, use_se: bool, side: int
) -> tuple[int, int, int]:
    """MACs, parameters and output side of one MBConv block."""
    macs, params = mbconv_cost(
        in_ch,
        out_ch,
        kernel_size=kernel,
        stride=stride,
        expand_ratio=expand,
        use_se=use_se,
        side=side,
    )
    return macs, params, conv_output_side(side, kernel, stride)


@lru_cache(maxsize=1024)
def _stem(in_channels: int, resolution: int) -> tuple[int, int, int]:
    """MACs, parameters and output side of the stem (conv 3x3 s2, then MBConv 3x3 e1)."""
    side = conv_output_side(resolution, _STEM_KERNEL, _STEM_STRIDE)
    macs, params = conv_bn_cost(in_channels, STEM_CHANNELS, _STEM_KERNEL, side_out=side)
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
    pieces = (
        conv_bn_cost(in_ch, FINAL_EXPAND_CHANNELS, 1, side_out=side),
        # After global pooling: a 1x1 convolution with bias, then the linear classifier.
        conv2d_cost(FINAL_EXPAND_CHANNELS, FINAL_FEATURE_CHANNELS, 1, side_out=1),
        linear_cost(FINAL_FEATURE_CHANNELS, num_classes),
    )
    return sum(m for m, _ in pieces), sum(p for _, p in pieces)


def _check_formula(spec: ExitHeadSpec) -> None:
    """Raise if head ``spec`` has no cost formula; drop the cached head costs if its name has
    been registered again since they were computed."""
    if spec.cost is None:
        raise ValueError(
            f"exit head {spec.name!r} was registered without a cost formula, so the analytic "
            f"cost model cannot count it: pass its formula when registering it "
            f"(register_exit_head({spec.name!r}, factory, cost=...), see ExitHeadSpec), or "
            f"count the built network with method='fvcore'."
        )
    if _cached_heads.get(spec.name) is not spec:
        if spec.name in _cached_heads:
            _head.cache_clear()  # all heads: re-registering is rare
        _cached_heads[spec.name] = spec


@lru_cache(maxsize=16384)
def _head(name: str, in_ch: int, side: int, num_classes: int, pool: int) -> tuple[int, int]:
    """MACs and parameters of an early-exit head, from its registered formula (the caller
    checks the registration with :func:`_check_formula` first)."""
    counts = get_exit_head(name).cost(in_ch, side, num_classes, pool=pool)
    try:
        macs, params = (operator.index(count) for count in counts)
        if macs < 0 or params < 0:
            raise ValueError
    except (TypeError, ValueError):
        raise TypeError(
            f"the cost formula of exit head {name!r} must return (macs, params), two "
            f"non-negative integers, got {counts!r} for in_channels={in_ch}, side={side}, "
            f"num_classes={num_classes}, pool={pool}."
        ) from None
    return macs, params


def analyze(config: EENNConfig, *, num_classes: int, in_channels: int = 3) -> Analysis:
    """Closed-form MACs and parameters of every piece of ``config``'s network.

    Raises:
        TypeError: If ``config`` is not an :class:`~optuna_nachos.EENNConfig`, or the exit
            head's cost formula does not return two non-negative integers.
        ValueError: If the counts are invalid, or the exit head was registered without a cost
            formula.
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
        _check_formula(head_spec)
        pool_sizes = head_spec.pool_sizes
        next_cost = cumulative_macs[-1] + final_macs
        for position in reversed(positions):
            in_ch, side = STAGES[position].out_channels, sides[position]
            usable = [p for p in pool_sizes if p <= side] or [1]
            for pool in usable:
                m, p = _head(config.exit_head, in_ch, side, num_classes, pool)
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
        ValueError: If the exit head was registered without a cost formula (build the
            network and read ``exit_pools`` instead).
    """
    return list(analyze(config, num_classes=num_classes, in_channels=in_channels).exit_pools)


def clear_caches() -> None:
    """Empty the memoized per-layer, per-stage and per-head pieces (for cold-start timing)."""
    for cached in (_mbconv, _stem, _stage, _final, _head):
        cached.cache_clear()
    _cached_heads.clear()
