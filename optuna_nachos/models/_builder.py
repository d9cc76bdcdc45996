"""Building early-exit networks: from a configuration, or on a user's own backbone."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from optuna_nachos.config import EENNConfig
from optuna_nachos.models._heads import get_exit_head
from optuna_nachos.models._init import init_weights
from optuna_nachos.models._mobilenetv3 import (
    STAGES,
    STEM_CHANNELS,
    FinalClassifier,
    build_stage,
    build_stem,
)
from optuna_nachos.models._network import EarlyExitNetwork
from optuna_nachos.models._profile import profile_macs


def _check_counts(num_classes: int, in_channels: int) -> None:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}.")
    if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
        raise ValueError(f"in_channels must be a positive integer, got {in_channels!r}.")


def choose_pools(
    cumulative: Sequence[int],
    final_cost: int,
    exits: Sequence[tuple[int, str, tuple[int, int]]],
    head_macs: Callable[[int, str, int], int],
) -> dict[int, int]:
    """The cost-monotone rule: the max-pool in front of each early-exit head.

    Heads are taken from the last exit backwards; a head gets the first of its design's pool
    sizes (that fits the features) for which (backbone to its segment + head) costs less than
    the next deeper exit (backbone to there + its head; the final exit at the end).

    Args:
        cumulative: MACs of the backbone up to and including each segment.
        final_cost: MACs of the whole backbone plus the final head.
        exits: ``(segment index, head design, (height, width) of its features)`` per exit.
        head_macs: ``head_macs(segment index, head design, pool)``: MACs of that head.

    Returns:
        The pool size of each exit, by segment index.
    """
    pools: dict[int, int] = {}
    next_cost = final_cost
    for position, name, spatial in sorted(exits, reverse=True):
        spec = get_exit_head(name)
        usable = [p for p in spec.pool_sizes if p <= min(spatial)] or [1]
        for pool in usable:
            cost = cumulative[position] + head_macs(position, name, pool)
            if cost < next_cost:
                break
        pools[position] = pool
        next_cost = cost
    return pools


def _cost_monotone_heads(
    segments: Sequence[nn.Module],
    final_head: nn.Module,
    exit_positions: Sequence[int],
    *,
    head_name: str | Mapping[int, str],
    num_classes: int,
    example: torch.Tensor,
    pools: Mapping[int, int] | None = None,
) -> tuple[dict[int, nn.Module], list[int]]:
    """Build exit heads from the last exit backwards, pooling in front of head ``j`` while
    (backbone to ``j`` + head ``j``) costs at least (backbone to the next exit + its head).
    ``pools`` given: use those pool sizes instead of the rule."""
    names = (
        {p: head_name for p in exit_positions} if isinstance(head_name, str) else dict(head_name)
    )
    features = []
    cumulative = []
    total = 0
    x = example
    for segment in segments:
        macs, x = profile_macs(segment, x)
        total += macs
        features.append(x)
        cumulative.append(total)
    final_macs, _ = profile_macs(final_head, x)

    def make(position: int, pool: int) -> nn.Module:
        feature = features[position]
        spatial = (feature.shape[2], feature.shape[3])
        spec = get_exit_head(names[position])
        return init_weights(spec.factory(feature.shape[1], spatial, num_classes, pool=pool))

    if pools is None:
        made: dict[tuple[int, int], nn.Module] = {}

        def head_macs(position: int, _name: str, pool: int) -> int:
            made[(position, pool)] = make(position, pool)
            return profile_macs(made[(position, pool)], features[position])[0]

        exits = [(p, names[p], tuple(features[p].shape[2:4])) for p in exit_positions]
        chosen = choose_pools(cumulative, cumulative[-1] + final_macs, exits, head_macs)
        heads = {p: made[(p, chosen[p])] for p in exit_positions}
    else:
        chosen = {p: int(pools[p]) for p in exit_positions}
        heads = {p: make(p, chosen[p]) for p in exit_positions}
    return heads, [chosen[p] for p in sorted(chosen)]


def build_eenn(config: EENNConfig, *, num_classes: int, in_channels: int = 3) -> EarlyExitNetwork:
    """Build the early-exit MobileNetV3 network described by ``config``.

    The backbone is cut after each of the five searchable stages (the stem belongs to the
    first segment); an early exit of ``config.exit_stages`` reads the output of its stage.
    Exit heads are made cost-monotone: a max-pool of size 2, then 4, goes in front of a head
    while the exit would cost at least as much as the next deeper one. Every layer is
    initialized as torchvision initializes MobileNetV3: convolutions Kaiming normal (fan-out)
    with zero bias, BatchNorm weight 1 and bias 0, linear layers normal(0, 0.01) with zero
    bias.

    Args:
        config: The network to build.
        num_classes: Number of classes, at least 2.
        in_channels: Channels of the input images (1 for grey-scale, 3 for RGB).

    Returns:
        The network, in training mode, with ``config`` attached.
    """
    if not isinstance(config, EENNConfig):
        raise TypeError(f"config must be an EENNConfig, got {type(config).__name__}.")
    _check_counts(num_classes, in_channels)
    segments: list[nn.Module] = []
    channels = STEM_CHANNELS
    for stage_index, spec in enumerate(STAGES):
        stage = build_stage(config, stage_index, channels)
        if stage_index == 0:
            stage = nn.Sequential(build_stem(in_channels), *stage)
        segments.append(stage)
        channels = spec.out_channels
    final_head = FinalClassifier(channels, num_classes)
    # torchvision's MobileNetV3 initialization for the backbone and the final classifier
    # (PyTorch's per-layer defaults are tuned for neither); the exit heads get the same.
    for module in (*segments, final_head):
        init_weights(module)
    example = torch.zeros(1, in_channels, config.resolution, config.resolution)
    heads, pools = _cost_monotone_heads(
        segments,
        final_head,
        [stage - 1 for stage in config.exit_stages],
        head_name=config.exit_head,
        num_classes=num_classes,
        example=example,
    )
    return EarlyExitNetwork(
        segments,
        heads,
        final_head,
        num_classes=num_classes,
        config=config,
        exit_pools=pools,
        input_shape=(in_channels, config.resolution, config.resolution),
        exit_head_names=(config.exit_head,) * len(heads),
    )


def attach_exits(
    segments: Sequence[nn.Module],
    final_head: nn.Module,
    *,
    exit_after: Sequence[int],
    num_classes: int,
    input_shape: tuple[int, int, int],
    head: str | Sequence[str] = "pool_linear",
    pools: Sequence[int] | None = None,
) -> EarlyExitNetwork:
    """Attach early exits to a backbone the user already has.

    Args:
        segments: The backbone as an ordered list of stages (for example a torchvision
            ResNet-18 cut into its stem and ``layer1`` .. ``layer4``; see
            :func:`~optuna_nachos.models.cut_stages`).
        final_head: The backbone's own classifier, applied after the last segment.
        exit_after: Indices of the segments followed by an early exit (not the last one).
        num_classes: Number of classes the heads predict.
        input_shape: ``(channels, height, width)`` of one input, used to size the heads.
        head: Registered exit head design, one for every exit or one per entry of
            ``exit_after`` (in the same order).
        pools: Max-pool size in front of each head, in the order of ``exit_after``; by
            default the cost-monotone rule chooses them.

    Returns:
        The early-exit network. Its weights are shared with the modules passed in; only the
        new exit heads are initialized.
    """
    _check_counts(num_classes, input_shape[0])
    positions = sorted(set(exit_after))
    if len(positions) != len(exit_after):
        raise ValueError(f"exit_after must not repeat segments, got {list(exit_after)}.")
    for position in positions:
        if not 0 <= position < len(segments) - 1:
            raise ValueError(
                f"exit_after entries must lie in 0..{len(segments) - 2} (an exit after the last "
                f"segment would duplicate the final head), got {position}."
            )
    if isinstance(head, str):
        names = {p: head for p in positions}
    else:
        if len(head) != len(exit_after):
            raise ValueError(
                f"head needs one design per exit ({len(exit_after)}), got {list(head)}."
            )
        names = dict(zip(exit_after, head))
    for name in names.values():
        get_exit_head(name)
    pool_map = None
    if pools is not None:
        if len(pools) != len(exit_after):
            raise ValueError(
                f"pools needs one size per exit ({len(exit_after)}), got {list(pools)}."
            )
        pool_map = dict(zip(exit_after, pools))
    example = torch.zeros(1, *input_shape)
    heads, chosen = _cost_monotone_heads(
        segments,
        final_head,
        positions,
        head_name=names,
        num_classes=num_classes,
        example=example,
        pools=pool_map,
    )
    return EarlyExitNetwork(
        segments,
        heads,
        final_head,
        num_classes=num_classes,
        exit_pools=chosen,
        input_shape=input_shape,
        exit_head_names=[names[p] for p in positions],
    )
