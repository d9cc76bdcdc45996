"""Average, peak and lower-bound MACs, and the cost profile of a configuration."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from optuna_nachos.config import EENNConfig
from optuna_nachos.cost._analytic import analyze
from optuna_nachos.cost._common import check_convention, check_method, compose_exits
from optuna_nachos.cost._exits import _build, _build_check, network_shape
from optuna_nachos.cost._fvcore import count_exit_macs, count_exit_params
from optuna_nachos.models import EarlyExitNetwork

RATIO_TOLERANCE = 1e-6
"""How far the exit ratios may sum from 1."""


def _as_floats(values: Any, *, what: str) -> list[float]:
    if isinstance(values, (str, bytes, Mapping)):
        raise TypeError(f"{what} must be a sequence of numbers, got {type(values).__name__}.")
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be a sequence of numbers, got {values!r}.") from None
    if not out:
        raise ValueError(f"{what} is empty: a network has at least one (the final) exit.")
    if any(not math.isfinite(v) for v in out):
        raise ValueError(f"{what} must be finite, got {out}.")
    return out


def _costs(exit_costs: Sequence[float]) -> list[float]:
    costs = _as_floats(exit_costs, what="exit_costs")
    if any(c < 0 for c in costs):
        raise ValueError(f"exit_costs must be non-negative, got {costs}.")
    return costs


def _to_int(value: Any) -> int:
    return int(value) if isinstance(value, numbers.Integral) else round(float(value))


def average_macs(exit_costs: Sequence[float], exit_ratios: Sequence[float]) -> float:
    """Average MACs per sample, ``sum_j r_j * cost_j``.

    Args:
        exit_costs: Cost of each exit, final exit last (e.g. from :func:`exit_macs`).
        exit_ratios: Fraction of the samples leaving at each exit: non-negative, summing to 1
            (within ``1e-6``).

    Returns:
        The average cost of one sample.

    Raises:
        TypeError: If an argument is not a sequence of numbers.
        ValueError: If the lengths differ, a value is negative or not finite, or the ratios
            do not sum to 1.

    Example:
        >>> average_macs([100, 300], [0.75, 0.25])
        150.0
    """
    costs = _costs(exit_costs)
    ratios = _as_floats(exit_ratios, what="exit_ratios")
    if len(costs) != len(ratios):
        raise ValueError(
            f"need one exit ratio per exit: {len(costs)} costs but {len(ratios)} ratios."
        )
    if any(r < 0 for r in ratios):
        raise ValueError(f"exit_ratios must be non-negative, got {ratios}.")
    total = math.fsum(ratios)
    if abs(total - 1.0) > RATIO_TOLERANCE:
        raise ValueError(
            f"exit_ratios must sum to 1 (fractions of the samples leaving at each exit), "
            f"got {ratios} summing to {total}."
        )
    return math.fsum(r * c for r, c in zip(ratios, costs, strict=True))


def peak_macs(exit_costs: Sequence[int]) -> int:
    """Worst-case MACs of one sample: the cost of the last (final) exit.

    Raises:
        ValueError: If ``exit_costs`` is empty or holds negative or non-finite values.
    """
    values = list(exit_costs) if not isinstance(exit_costs, (str, bytes)) else exit_costs
    _costs(values)
    return _to_int(values[-1])


def min_average_macs(exit_costs: Sequence[int]) -> int:
    """Lower bound of the average MACs, known before training.

    Whatever the thresholds, every sample pays at least the cheapest exit. With the
    ``"nachos"`` convention, and with the ``"reference"`` one whenever the cost-monotone rule
    succeeds, the costs increase along the exits and this is the first exit's cost.

    Raises:
        ValueError: If ``exit_costs`` is empty or holds negative or non-finite values.
    """
    values = list(exit_costs) if not isinstance(exit_costs, (str, bytes)) else exit_costs
    costs = _costs(values)
    return _to_int(values[costs.index(min(costs))])


@dataclass(frozen=True)
class CostProfile:
    """The static costs of one early-exit network.

    Attributes:
        exit_macs: MACs of a sample leaving at each exit, final exit last.
        exit_params: Parameters needed to reach each exit (the heads passed included).
        peak_macs: Cost of the last exit.
        min_average_macs: Lower bound of the average MACs (the cheapest exit).
        convention: How passed heads are charged in ``exit_macs``: ``"nachos"`` or
            ``"reference"``.
        exit_pools: Max-pool size in front of each early-exit head.
    """

    exit_macs: tuple[int, ...]
    exit_params: tuple[int, ...]
    peak_macs: int
    min_average_macs: int
    convention: str = "nachos"
    exit_pools: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        check_convention(self.convention)
        object.__setattr__(self, "exit_macs", tuple(int(m) for m in self.exit_macs))
        object.__setattr__(self, "exit_params", tuple(int(p) for p in self.exit_params))
        object.__setattr__(self, "exit_pools", tuple(int(p) for p in self.exit_pools))
        object.__setattr__(self, "peak_macs", int(self.peak_macs))
        object.__setattr__(self, "min_average_macs", int(self.min_average_macs))
        if not self.exit_macs or len(self.exit_params) != len(self.exit_macs):
            raise ValueError(
                f"exit_macs and exit_params need one entry per exit, got {len(self.exit_macs)} "
                f"and {len(self.exit_params)}."
            )

    @property
    def num_exits(self) -> int:
        """Number of exits, the final one included."""
        return len(self.exit_macs)

    @property
    def total_params(self) -> int:
        """Parameters of the whole network."""
        return self.exit_params[-1]

    def average_macs(self, exit_ratios: Sequence[float]) -> float:
        """Average MACs for the given fractions of samples leaving at each exit."""
        return average_macs(self.exit_macs, exit_ratios)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serializable dictionary (ints, lists, a string)."""
        return {
            "exit_macs": list(self.exit_macs),
            "exit_params": list(self.exit_params),
            "peak_macs": self.peak_macs,
            "min_average_macs": self.min_average_macs,
            "total_params": self.total_params,
            "convention": self.convention,
            "exit_pools": list(self.exit_pools),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CostProfile:
        """Rebuild a profile from :meth:`to_dict` output (derived keys are ignored)."""
        fields = (
            "exit_macs",
            "exit_params",
            "peak_macs",
            "min_average_macs",
            "convention",
            "exit_pools",
        )
        return cls(**{key: data[key] for key in fields if key in data})


def cost_profile(
    config: EENNConfig | EarlyExitNetwork,
    *,
    num_classes: int | None = None,
    in_channels: int = 3,
    convention: str = "nachos",
    method: str = "analytic",
    input_shape: Sequence[int] | None = None,
) -> CostProfile:
    """Per-exit MACs and parameters, peak and lower-bound MACs of ``config``'s network.

    ``config`` may also be a built :class:`~optuna_nachos.EarlyExitNetwork` (any, also one
    with exits on your own backbone): it is counted with fvcore at ``input_shape`` or at the
    input shape the network records.

    Args:
        config: The network's configuration, or the built network.
        num_classes: Number of classes, at least 2 (needed with a configuration).
        in_channels: Channels of the input images.
        convention: ``"nachos"`` or ``"reference"``, as in :func:`exit_macs`.
        method: ``"analytic"`` (default; no module built) or ``"fvcore"`` (builds the network
            once and counts it; needed for an exit head registered without a cost formula).
        input_shape: ``(channels, height, width)`` of one sample, for a built network that
            does not record it.

    Returns:
        The :class:`CostProfile`.

    Raises:
        TypeError: If ``config`` is neither an :class:`~optuna_nachos.EENNConfig` nor an
            :class:`~optuna_nachos.EarlyExitNetwork`, or ``num_classes`` is missing; the
            message says what to pass.
        ValueError: On an invalid count, method or convention, or an exit head without a cost
            formula with ``method="analytic"``.
    """
    check_method(method)
    check_convention(convention)
    if isinstance(config, EarlyExitNetwork):
        macs = count_exit_macs(config, network_shape(config, input_shape), convention=convention)
        params = count_exit_params(config)
        pools = config.exit_pools or ()
    elif method == "fvcore":
        model = _build(config, num_classes, in_channels)
        shape = (in_channels, config.resolution, config.resolution)
        macs = count_exit_macs(model, shape, convention=convention)
        params = count_exit_params(model)
        pools = model.exit_pools or ()
    else:
        _build_check(config, num_classes, in_channels)
        parts = analyze(config, num_classes=num_classes, in_channels=in_channels)
        macs = compose_exits(
            parts.segment_macs,
            parts.exit_positions,
            parts.head_macs,
            parts.final_macs,
            passed_heads=convention == "nachos",
        )
        params = compose_exits(
            parts.segment_params,
            parts.exit_positions,
            parts.head_params,
            parts.final_params,
            passed_heads=True,
        )
        pools = parts.exit_pools
    return CostProfile(
        exit_macs=tuple(macs),
        exit_params=tuple(params),
        peak_macs=peak_macs(macs),
        min_average_macs=min_average_macs(macs),
        convention=convention,
        exit_pools=tuple(pools),
    )
