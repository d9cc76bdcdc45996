"""Per-exit MACs and parameters of a configuration, analytic or counted by fvcore."""

from __future__ import annotations

from collections.abc import Sequence

from optuna_nachos.config import EENNConfig, ExitsConfig
from optuna_nachos.cost._analytic import analyze
from optuna_nachos.cost._common import check_convention, check_counts, check_method, compose_exits
from optuna_nachos.cost._fvcore import count_exit_macs, count_exit_params
from optuna_nachos.models import EarlyExitNetwork, build_eenn


def _check_config(config: object) -> None:
    if isinstance(config, EENNConfig):
        return
    if isinstance(config, ExitsConfig):
        raise TypeError(
            "an ExitsConfig describes exits on your own backbone: count it with "
            "space.cost_profile(config) of its BackboneExitSpace, or pass the built network "
            "(space.build(config))."
        )
    raise TypeError(
        f"config must be an EENNConfig or a built EarlyExitNetwork (from build_eenn, "
        f"attach_exits or BackboneExitSpace.build), got {type(config).__name__}; for a plain "
        "torch model, attach exits first (optuna_nachos.attach_exits) or count it with "
        "optuna_nachos.cost.count_exit_macs."
    )


def _build(config: EENNConfig, num_classes: int | None, in_channels: int) -> EarlyExitNetwork:
    _check_config(config)
    if num_classes is None:
        raise TypeError("counting a configuration needs num_classes=<number of classes>.")
    check_counts(num_classes, in_channels)
    return build_eenn(config, num_classes=num_classes, in_channels=in_channels)


def _build_check(config: object, num_classes: int | None, in_channels: int) -> None:
    _check_config(config)
    if num_classes is None:
        raise TypeError("counting a configuration needs num_classes=<number of classes>.")
    check_counts(num_classes, in_channels)


def network_shape(model: EarlyExitNetwork, input_shape: Sequence[int] | None) -> tuple[int, ...]:
    """The input shape to count ``model`` with: ``input_shape`` or the network's own."""
    shape = input_shape if input_shape is not None else model.input_shape
    if shape is None:
        raise ValueError(
            "this network does not record its input shape: pass input_shape=(channels, height, "
            "width) of one sample."
        )
    return tuple(shape)


def exit_macs(
    config: EENNConfig | EarlyExitNetwork,
    *,
    num_classes: int | None = None,
    in_channels: int = 3,
    method: str = "analytic",
    convention: str = "nachos",
    input_shape: Sequence[int] | None = None,
) -> list[int]:
    """MACs of one sample that leaves at each exit of ``config``'s network.

    ``config`` may also be a built :class:`~optuna_nachos.EarlyExitNetwork` (any, also one
    with exits on your own backbone): it is counted with fvcore, at ``input_shape`` or at the
    input shape the network records; ``num_classes``, ``in_channels`` and ``method`` are then
    not used.

    MACs are multiply-accumulates of convolutions and linear layers at inference (eval mode);
    BatchNorm, activations, pooling, biases, the squeeze-excitation multiply and residual adds
    are not counted. ``cost_j`` is the backbone up to exit ``j`` plus head ``j``, plus (with
    the ``"nachos"`` convention) the heads of the earlier exits the sample passed.

    Args:
        config: The network's configuration, or the built network.
        num_classes: Number of classes, at least 2 (needed with a configuration).
        in_channels: Channels of the input images (1 grey-scale, 3 RGB).
        method: ``"analytic"`` (closed form, no module built, thousands of times faster) or
            ``"fvcore"`` (builds the network and counts its all-exits forward with fvcore).
            Both give the same numbers; an exit head registered without a cost formula
            needs ``"fvcore"``.
        convention: ``"nachos"`` (default) or ``"reference"``, which leaves out the passed
            heads as the NACHOS reference repository does (for comparing with the paper).

    Returns:
        One cost per exit: early exits shallowest first, then the final exit.

    Raises:
        TypeError: If ``config`` is not an :class:`~optuna_nachos.EENNConfig`.
        ValueError: On an invalid count, method or convention, or an exit head without a cost
            formula with ``method="analytic"``.
        KeyError: If the exit head is not registered.

    Example:
        >>> from optuna_nachos import EENNConfig
        >>> config = EENNConfig(
        ...     depths=(2,) * 5, kernel_sizes=((3, 3),) * 5, expand_ratios=((3, 3),) * 5
        ... )
        >>> costs = exit_macs(config, num_classes=10)
        >>> len(costs) == config.num_exits and costs == sorted(costs)
        True
    """
    check_method(method)
    check_convention(convention)
    if isinstance(config, EarlyExitNetwork):
        return count_exit_macs(config, network_shape(config, input_shape), convention=convention)
    if method == "fvcore":
        model = _build(config, num_classes, in_channels)
        shape = (in_channels, config.resolution, config.resolution)
        return count_exit_macs(model, shape, convention=convention)
    _build_check(config, num_classes, in_channels)
    parts = analyze(config, num_classes=num_classes, in_channels=in_channels)
    return compose_exits(
        parts.segment_macs,
        parts.exit_positions,
        parts.head_macs,
        parts.final_macs,
        passed_heads=convention == "nachos",
    )


def exit_params(
    config: EENNConfig | EarlyExitNetwork,
    *,
    num_classes: int | None = None,
    in_channels: int = 3,
    method: str = "analytic",
) -> list[int]:
    """Parameters needed to reach each exit of ``config``'s network.

    An exit needs the backbone up to it, its own head and the heads of the earlier exits, so
    the final entry is the whole network (:func:`total_params`). BatchNorm running statistics
    are buffers, not parameters, and are not counted.

    Args:
        config: The network.
        num_classes: Number of classes, at least 2.
        in_channels: Channels of the input images.
        method: ``"analytic"`` (closed form) or ``"fvcore"`` (builds the network and counts
            with ``fvcore.nn.parameter_count``); both give the same numbers.

    Returns:
        One count per exit: early exits shallowest first, then the final exit.

    Raises:
        TypeError: If ``config`` is not an :class:`~optuna_nachos.EENNConfig`.
        ValueError: On an invalid count or method, or an exit head without a cost formula
            with ``method="analytic"``.
    """
    check_method(method)
    if isinstance(config, EarlyExitNetwork):
        return count_exit_params(config)
    if method == "fvcore":
        return count_exit_params(_build(config, num_classes, in_channels))
    _build_check(config, num_classes, in_channels)
    parts = analyze(config, num_classes=num_classes, in_channels=in_channels)
    return compose_exits(
        parts.segment_params,
        parts.exit_positions,
        parts.head_params,
        parts.final_params,
        passed_heads=True,
    )


def total_params(
    config: EENNConfig, *, num_classes: int, in_channels: int = 3, method: str = "analytic"
) -> int:
    """Parameters of the whole network of ``config`` (backbone, all heads).

    Args:
        config: The network.
        num_classes: Number of classes, at least 2.
        in_channels: Channels of the input images.
        method: ``"analytic"`` or ``"fvcore"``, as in :func:`exit_params`.

    Returns:
        The number of parameters, equal to ``sum(p.numel() for p in model.parameters())``.
    """
    return exit_params(config, num_classes=num_classes, in_channels=in_channels, method=method)[-1]
