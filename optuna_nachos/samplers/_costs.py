"""Exact, training-free facts about candidates of an EENN search space: costs and static limits."""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from optuna_nachos.record import MAX_AVG_MACS, MAX_PARAMS, MAX_PEAK_MACS, MIN_ACCURACY, MIN_EXITS

__all__ = [  # the constraint names are the record's, re-exported for the sampler
    "MAX_AVG_MACS",
    "MAX_PARAMS",
    "MAX_PEAK_MACS",
    "MIN_ACCURACY",
    "MIN_EXITS",
    "CandidateCosts",
    "SpaceCosts",
    "average_anchor",
    "budget_position",
    "exit_position_baseline",
]


@dataclass(frozen=True)
class CandidateCosts:
    """Exact costs of one configuration.

    Attributes:
        config: The configuration (an :class:`~optuna_nachos.EENNConfig`).
        exit_macs: Cost of a sample leaving at each exit, shallowest first: MACs, or
            latencies in ms with a latency table.
        params: Parameters of the whole network.
        exit_deficit: Early exits missing to reach the space's ``min_exits``.
        canonical: The parameters of ``config`` in the space's canonical form (unused layers
            set to the first choice): two parameter sets that build the same network have the
            same canonical form.
    """

    config: Any
    exit_macs: tuple[float, ...]
    params: int
    exit_deficit: int
    canonical: dict[str, Any]

    @property
    def first(self) -> float:
        """Cost of the first exit: the lowest average MACs the network can reach."""
        return float(self.exit_macs[0])

    @property
    def last(self) -> float:
        """Cost of the final exit (peak MACs)."""
        return float(self.exit_macs[-1])


class SpaceCosts:
    """Exact per-exit costs and static constraints of an EENN space's parameter sets.

    Args:
        space: The search space (an :class:`~optuna_nachos.space.EENNSearchSpace`), which
            counts its networks' costs.
        num_classes: Classes of the task (the heads' output size).
        in_channels: Channels of the input images.
        convention: Cost convention of :func:`optuna_nachos.cost.exit_macs`.
        max_avg_macs: Budget of average MACs (its exact lower bound is the first exit's cost).
        max_peak_macs: Limit of the final exit's cost.
        max_params: Limit of the parameter count.
        latency_table: A :class:`~optuna_nachos.cost.LatencyTable`: the exit costs are then
            the table's per-exit latencies in ms (:func:`~optuna_nachos.cost.exit_latency`),
            and ``max_avg_macs`` / ``max_peak_macs`` are read in ms.
        latency_backend: Back end of the table's measurements.
        latency_batch_size: Batch size of the table's measurements.
    """

    def __init__(
        self,
        space: Any,
        *,
        num_classes: int,
        in_channels: int,
        convention: str,
        max_avg_macs: float | None,
        max_peak_macs: float | None,
        max_params: float | None,
        latency_table: Any = None,
        latency_backend: str = "onnxruntime",
        latency_batch_size: int = 1,
    ) -> None:
        self.space = space
        self.latency_table = latency_table
        self.latency_backend = latency_backend
        self.latency_batch_size = latency_batch_size
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.convention = convention
        self.max_avg_macs = max_avg_macs
        self.max_peak_macs = max_peak_macs
        self.max_params = max_params
        self.distributions = dict(space.distributions())
        self._names = tuple(self.distributions)
        self._final_stage = int(space.num_stages)
        self._by_params: dict[Hashable, CandidateCosts] = {}

    def full_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``params`` completed with the single-valued parameters of the space."""
        out = dict(params)
        for name, dist in self.distributions.items():
            if name not in out and dist.single():
                out[name] = dist.choices[0]
        return out

    def costs(self, params: Mapping[str, Any]) -> CandidateCosts:
        """Exact costs of the configuration that ``params`` encode (cached)."""
        full = self.full_params(params)
        raw_key = tuple((full[name].__class__, full[name]) for name in self._names)
        found = self._by_params.get(raw_key)
        if found is not None:
            return found
        config = self.space.config_from_params(full)
        profile = self.space.cost_profile(
            config,
            num_classes=self.num_classes,
            in_channels=self.in_channels,
            convention=self.convention,
        )
        if self.latency_table is None:
            exit_costs: tuple[float, ...] = tuple(int(m) for m in profile.exit_macs)
        else:
            from optuna_nachos.cost import exit_latency

            exit_costs = tuple(
                float(v)
                for v in exit_latency(
                    config,
                    self.latency_table,
                    backend=self.latency_backend,
                    batch_size=self.latency_batch_size,
                    convention=self.convention,
                )
            )
        found = CandidateCosts(
            config=config,
            exit_macs=exit_costs,
            params=int(profile.exit_params[-1]),
            exit_deficit=int(self.space.exit_deficit(config)),
            canonical=dict(self.space.params_from_config(config)),
        )
        if len(self._by_params) > 200_000:
            self._by_params.clear()
        self._by_params[raw_key] = found
        return found

    def canonical_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The parameters of the same configuration in the space's canonical form.

        Two parameter sets that build the same network (differing only in unused layers) have
        the same canonical form.
        """
        return dict(self.costs(params).canonical)

    def static_violations(self, costs: CandidateCosts) -> dict[str, float]:
        """Violations (``> 0``) of the constraints known exactly before training, normalized.

        ``max_avg_macs`` uses the exact lower bound of average MACs: the first exit's cost.
        """
        out = {MIN_EXITS: float(costs.exit_deficit)}
        if self.max_avg_macs is not None:
            out[MAX_AVG_MACS] = (costs.first - self.max_avg_macs) / self.max_avg_macs
        if self.max_peak_macs is not None:
            out[MAX_PEAK_MACS] = (costs.last - self.max_peak_macs) / self.max_peak_macs
        if self.max_params is not None:
            out[MAX_PARAMS] = (costs.params - self.max_params) / self.max_params
        return out

    def static_violation(self, costs: CandidateCosts) -> float:
        """Sum of the positive static violations (0 when every static limit holds)."""
        return float(sum(max(0.0, v) for v in self.static_violations(costs).values()))

    def cost_features(self, costs: CandidateCosts) -> list[float]:
        """Features derived from the exact costs, for the surrogates.

        ``log`` of the first and last exits' MACs and of the parameters, the number of early
        exits, and ``log`` of the cost of the exit after each stage (0 where there is none).
        With a budget also: where the budget falls between the first and last exits, the
        relative cost of each stage's exit, and which exit is the deepest one whose cost fits
        in the budget (its stage and its position between the first and last exits): the
        exits that can take samples decide what the network can reach.
        """
        first, last = costs.first, costs.last
        features = [
            math.log(max(first, 1.0)),
            math.log(max(last, 1.0)),
            math.log(max(costs.params, 1)),
            float(len(costs.exit_macs) - 1),
        ]
        stages = getattr(costs.config, "exit_stages", None)
        per_stage: dict[int, float] = {}
        if stages is not None and len(stages) + 1 == len(costs.exit_macs):
            positions = [*stages, self._final_stage]
            per_stage = dict(zip(positions, (float(c) for c in costs.exit_macs)))
            features += [
                math.log(per_stage[s]) if s in per_stage else 0.0
                for s in range(1, self._final_stage + 1)
            ]
        if self.max_avg_macs is not None:
            budget = self.max_avg_macs
            features.append(budget_position(first, last, budget))
            features.append(exit_position_baseline(costs, budget))
            if per_stage:
                fitting = [s for s, c in per_stage.items() if c <= budget]
                features.append(float(max(fitting)) if fitting else 0.0)
                features += [
                    per_stage[s] / budget if s in per_stage else 0.0
                    for s in range(1, self._final_stage + 1)
                ]
        return features


def average_anchor(costs: CandidateCosts, budget: float | None) -> tuple[float, float]:
    """Computed part of the average MACs: ``avg = anchor + t * scale``, only ``t`` predicted.

    With a budget, the anchor is the deepest exit whose cost fits in it (every sample leaving
    there is always possible and, when deeper exits are more accurate, the natural operating
    point) and the scale is the headroom left up to the budget, so ``t`` is about 0 when the
    samples leave at that exit and about 1 when the thresholds spend the whole budget. Without a
    budget (or when the whole network fits in it), the anchor is the first exit (the last one)
    and the scale the spread between the first and the last exits.
    """
    first, last = costs.first, costs.last
    spread = max(last - first, 1.0)
    if budget is None or last <= first:
        return first, spread
    affordable = [float(c) for c in costs.exit_macs if c <= budget]
    if not affordable:
        return first, spread
    deepest = max(affordable)
    if deepest >= last:
        return last, spread
    return deepest, max(budget - deepest, 0.05 * spread)


def exit_position_baseline(costs: CandidateCosts, budget: float | None) -> float:
    """Where the anchor of :func:`average_anchor` lies between the first and last exits."""
    first, last = costs.first, costs.last
    if last <= first:
        return 0.0
    anchor, _ = average_anchor(costs, budget)
    return float(np.clip((anchor - first) / (last - first), 0.0, 1.0))


def budget_position(first: float, last: float, budget: float) -> float:
    """Where ``budget`` falls between the first and last exits' costs, clipped to [0, 1]."""
    if last <= first:
        return 1.0 if budget >= last else 0.0
    return float(np.clip((budget - first) / (last - first), 0.0, 1.0))
