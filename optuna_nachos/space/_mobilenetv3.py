"""The NACHOS search space over MobileNetV3 early-exit networks, as flat Optuna parameters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution

from optuna_nachos.config import EXIT_STAGES, MAX_DEPTH, NUM_STAGES, ConfigError, EENNConfig
from optuna_nachos.cost import CostProfile, cost_profile
from optuna_nachos.models import EarlyExitNetwork, build_eenn, list_exit_heads
from optuna_nachos.space._base import EENNSearchSpace

EDANAS_THRESHOLD_GENES = (0.1, 0.2, 1.0)
"""Threshold genes of the EDANAS encoding; 1.0 means "no exit here"."""


def _check_exit_options(
    exit_heads: tuple[str, ...], exit_stages: tuple[int, ...], min_exits: Any
) -> None:
    """Raise ``ConfigError`` on an unregistered head or a ``min_exits`` the stages cannot meet."""
    known_heads = list_exit_heads()
    for head in exit_heads:
        if head not in known_heads:
            raise ConfigError(f"unknown exit head {head!r}; registered exit heads: {known_heads}.")
    if isinstance(min_exits, bool) or not isinstance(min_exits, int) or min_exits < 0:
        raise ConfigError(f"min_exits must be a non-negative integer, got {min_exits!r}.")
    if min_exits > len(exit_stages):
        raise ConfigError(
            f"min_exits={min_exits} cannot be met with exits allowed after stages "
            f"{exit_stages} only."
        )


def exit_placements(stages: Sequence[int], min_exits: int) -> list[tuple[int, ...]]:
    """Every set of early-exit stages among ``stages`` with at least ``max(min_exits, 1)``."""
    return [
        tuple(s for i, s in enumerate(stages) if mask >> i & 1)
        for mask in range(1, 2 ** len(stages))
        if mask.bit_count() >= max(min_exits, 1)
    ]


def _suggest_categoricals(
    trial: optuna.trial.BaseTrial, distributions: Mapping[str, BaseDistribution]
) -> dict[str, Any]:
    """Suggest every categorical parameter on ``trial``; ``ConfigError`` on a value outside."""
    params: dict[str, Any] = {}
    for name, dist in distributions.items():
        try:
            params[name] = trial.suggest_categorical(name, dist.choices)
        except ValueError as error:  # FixedTrial: "'5' not in (2, 3, 4)."
            raise ConfigError(
                f"cannot suggest parameter {name!r} with choices {dist.choices}: {error}"
            ) from error
    return params


def _choices(values: Any, *, name: str, kind: type) -> tuple:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ConfigError(f"{name} must be a sequence of choices, got {values!r}.")
    out = tuple(values)
    if not out:
        raise ConfigError(f"{name} must offer at least one choice.")
    if len(set(out)) != len(out):
        raise ConfigError(f"{name} must not repeat choices, got {out}.")
    for value in out:
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise ConfigError(f"{name} must hold integers, got {value!r}.")
        if kind is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ConfigError(f"{name} must hold numbers, got {value!r}.")
    return tuple(float(v) for v in out) if kind is float else out


def _index_of(value: Any, choices: Sequence[Any]) -> int | None:
    """Position of ``value`` among ``choices``; booleans match booleans only, not 0 or 1."""
    if isinstance(value, np.generic):  # rows of trials_dataframe() hold numpy scalars
        value = value.item()
    for index, choice in enumerate(choices):
        if isinstance(choice, bool) or isinstance(value, bool):
            if type(choice) is type(value) and choice == value:
                return index
        elif isinstance(choice, str) or isinstance(value, str):
            if choice == value:
                return index
        elif value == choice:
            return index
    return None


class MobileNetV3Space(EENNSearchSpace):
    """The NACHOS search space: OFA-style MobileNetV3 backbones with early exits.

    Every configuration is encoded as the same flat set of categorical parameters, so that
    samplers which model only parameters present in every trial (NSGA-II, GP) see all of them:

    * ``stage{s}_depth`` for ``s`` in 1..5;
    * ``stage{s}_layer{l}_kernel`` and ``stage{s}_layer{l}_expand`` for ``l`` in 1..4; all four
      layers are always suggested and only the first ``depth`` are used;
    * ``exit_after_stage{s}`` (bool) for each allowed exit stage, or, with the EDANAS encoding,
      ``exit{s}_threshold`` in ``threshold_genes`` where 1.0 means no exit;
    * ``resolution`` and ``exit_head`` only when more than one choice is offered.

    A configuration with fewer early exits than ``min_exits`` is a valid point of this space
    but violates the static constraint reported by :meth:`exit_deficit`; the packaged objective
    records it as infeasible without training it.

    Args:
        depths: Depth choices of every stage (within 1..4).
        kernel_sizes: Depthwise kernel size choices (odd).
        expand_ratios: Expand ratio choices.
        exit_stages: Stages after which an early exit may be placed (among 1..4).
        resolutions: Input resolution choices.
        exit_heads: Exit head designs to choose from (registered names).
        min_exits: Fewest early exits an admissible network has (the reference requires 1).
        threshold_genes: If given, use the EDANAS encoding: each early exit carries a threshold
            gene from these values and a gene of 1.0 means no exit.

    Raises:
        ConfigError: If a setting is empty, out of range or unknown.
    """

    def __init__(
        self,
        *,
        depths: Sequence[int] = (2, 3, 4),
        kernel_sizes: Sequence[int] = (3, 5, 7),
        expand_ratios: Sequence[int] = (3, 4, 6),
        exit_stages: Sequence[int] = EXIT_STAGES,
        resolutions: Sequence[int] = (32,),
        exit_heads: Sequence[str] = ("nachos",),
        min_exits: int = 1,
        threshold_genes: Sequence[float] | None = None,
    ) -> None:
        self.depths = _choices(depths, name="depths", kind=int)
        for depth in self.depths:
            if not 1 <= depth <= MAX_DEPTH:
                raise ConfigError(f"a stage holds 1 to {MAX_DEPTH} layers; depth {depth} is out.")
        self.kernel_sizes = _choices(kernel_sizes, name="kernel_sizes", kind=int)
        for kernel in self.kernel_sizes:
            if kernel < 1 or kernel % 2 == 0:
                raise ConfigError(f"kernel sizes must be odd positive integers, got {kernel}.")
        self.expand_ratios = _choices(expand_ratios, name="expand_ratios", kind=int)
        if min(self.expand_ratios) < 1:
            raise ConfigError(f"expand ratios must be >= 1, got {self.expand_ratios}.")
        self.exit_stages = tuple(sorted(_choices(exit_stages, name="exit_stages", kind=int)))
        for stage in self.exit_stages:
            if stage not in EXIT_STAGES:
                raise ConfigError(f"early exits can follow stages {EXIT_STAGES}, not {stage}.")
        self.resolutions = _choices(resolutions, name="resolutions", kind=int)
        if min(self.resolutions) < 8:
            raise ConfigError(f"resolutions must be at least 8 pixels, got {self.resolutions}.")
        self.exit_heads = _choices(exit_heads, name="exit_heads", kind=str)
        _check_exit_options(self.exit_heads, self.exit_stages, min_exits)
        self.min_exits = min_exits
        self.threshold_genes: tuple[float, ...] | None = None
        if threshold_genes is not None:
            genes = _choices(threshold_genes, name="threshold_genes", kind=float)
            if any(not 0.0 < g <= 1.0 for g in genes):
                raise ConfigError(f"threshold genes must lie in (0, 1], got {genes}.")
            self.threshold_genes = genes

    @classmethod
    def edanas(cls, **kwargs: Any) -> MobileNetV3Space:
        """The EDANAS variant: threshold genes {0.1, 0.2, 1.0} per early exit."""
        kwargs.setdefault("threshold_genes", EDANAS_THRESHOLD_GENES)
        return cls(**kwargs)

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in self.settings().items())
        return f"{type(self).__name__}({settings})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.settings() == other.settings()

    def __hash__(self) -> int:
        return hash(tuple(sorted((k, str(v)) for k, v in self.settings().items())))

    def settings(self) -> dict[str, Any]:
        """The constructor settings, as plain JSON types."""
        return {
            "depths": list(self.depths),
            "kernel_sizes": list(self.kernel_sizes),
            "expand_ratios": list(self.expand_ratios),
            "exit_stages": list(self.exit_stages),
            "resolutions": list(self.resolutions),
            "exit_heads": list(self.exit_heads),
            "min_exits": self.min_exits,
            "threshold_genes": None if self.threshold_genes is None else list(self.threshold_genes),
        }

    def distributions(self) -> dict[str, BaseDistribution]:
        """Every parameter of the space and its distribution, in suggestion order."""
        key = tuple(sorted((k, str(v)) for k, v in self.settings().items()))
        if getattr(self, "_distributions_key", None) != key:
            self._distributions = self._build_distributions()
            self._distributions_key = key
        return dict(self._distributions)

    def _build_distributions(self) -> dict[str, BaseDistribution]:
        dists: dict[str, BaseDistribution] = {}
        for stage in range(1, NUM_STAGES + 1):
            dists[f"stage{stage}_depth"] = CategoricalDistribution(self.depths)
            for layer in range(1, MAX_DEPTH + 1):
                dists[f"stage{stage}_layer{layer}_kernel"] = CategoricalDistribution(
                    self.kernel_sizes
                )
                dists[f"stage{stage}_layer{layer}_expand"] = CategoricalDistribution(
                    self.expand_ratios
                )
        for stage in self.exit_stages:
            if self.threshold_genes is None:
                dists[f"exit_after_stage{stage}"] = CategoricalDistribution((False, True))
            else:
                dists[f"exit{stage}_threshold"] = CategoricalDistribution(self.threshold_genes)
        if len(self.resolutions) > 1:
            dists["resolution"] = CategoricalDistribution(self.resolutions)
        if len(self.exit_heads) > 1:
            dists["exit_head"] = CategoricalDistribution(self.exit_heads)
        return dists

    def num_configurations(self) -> int:
        """Number of distinct networks in the space (unused layer parameters not counted)."""
        per_stage = sum(
            (len(self.kernel_sizes) * len(self.expand_ratios)) ** d for d in self.depths
        )
        exits = (len(self.threshold_genes) if self.threshold_genes else 2) ** len(self.exit_stages)
        return per_stage**NUM_STAGES * exits * len(self.resolutions) * len(self.exit_heads)

    def suggest(self, trial: optuna.trial.BaseTrial) -> EENNConfig:
        """Suggest a whole configuration on ``trial`` and return it, validated.

        Raises:
            ConfigError: If a value is outside its choices (a ``FixedTrial`` can hold one).
        """
        return self.config_from_params(_suggest_categoricals(trial, self.distributions()))

    def config_from_params(self, params: Mapping[str, Any]) -> EENNConfig:
        """Rebuild the configuration from trial parameters, validating every value.

        Parameters that do not belong to the space (a user's own) are ignored.

        Raises:
            ConfigError: If a parameter is missing or holds a value outside its choices.
        """
        dists = self.distributions()
        values: dict[str, Any] = {}
        for name, dist in dists.items():
            if name not in params:
                raise ConfigError(
                    f"parameter {name!r} is missing; the space expects {len(dists)} parameters "
                    f"(see MobileNetV3Space.distributions())."
                )
            index = _index_of(params[name], dist.choices)
            if index is None:
                raise ConfigError(
                    f"parameter {name!r} = {params[name]!r} is not among its choices "
                    f"{dist.choices}."
                )
            values[name] = dist.choices[index]
        depths = tuple(values[f"stage{s}_depth"] for s in range(1, NUM_STAGES + 1))
        kernels = tuple(
            tuple(values[f"stage{s}_layer{layer}_kernel"] for layer in range(1, depth + 1))
            for s, depth in enumerate(depths, start=1)
        )
        expands = tuple(
            tuple(values[f"stage{s}_layer{layer}_expand"] for layer in range(1, depth + 1))
            for s, depth in enumerate(depths, start=1)
        )
        if self.threshold_genes is None:
            exits = tuple(s for s in self.exit_stages if values[f"exit_after_stage{s}"])
            thresholds = None
        else:
            genes = {s: values[f"exit{s}_threshold"] for s in self.exit_stages}
            exits = tuple(s for s in self.exit_stages if genes[s] < 1.0)
            thresholds = tuple(genes[s] for s in exits)
        return EENNConfig(
            depths=depths,
            kernel_sizes=kernels,
            expand_ratios=expands,
            exit_stages=exits,
            resolution=values.get("resolution", self.resolutions[0]),
            exit_head=values.get("exit_head", self.exit_heads[0]),
            exit_thresholds=thresholds,
        )

    def params_from_config(self, config: EENNConfig) -> dict[str, Any]:
        """Trial parameters that encode ``config`` (for ``study.enqueue_trial``).

        Unused layers get the first kernel and expand choice.

        Raises:
            ConfigError: If ``config`` is not a member of this space.
        """
        params: dict[str, Any] = {}
        for s in range(1, NUM_STAGES + 1):
            params[f"stage{s}_depth"] = config.depths[s - 1]
            for layer in range(1, MAX_DEPTH + 1):
                used = layer <= config.depths[s - 1]
                params[f"stage{s}_layer{layer}_kernel"] = (
                    config.kernel_sizes[s - 1][layer - 1] if used else self.kernel_sizes[0]
                )
                params[f"stage{s}_layer{layer}_expand"] = (
                    config.expand_ratios[s - 1][layer - 1] if used else self.expand_ratios[0]
                )
        for s in self.exit_stages:
            if self.threshold_genes is None:
                params[f"exit_after_stage{s}"] = s in config.exit_stages
            elif s in config.exit_stages:
                if config.exit_thresholds is None:
                    raise ConfigError("an EDANAS space needs configurations with exit_thresholds.")
                params[f"exit{s}_threshold"] = config.exit_thresholds[config.exit_stages.index(s)]
            else:
                params[f"exit{s}_threshold"] = 1.0
        extra = set(config.exit_stages) - set(self.exit_stages)
        if extra:
            raise ConfigError(f"exits after stages {sorted(extra)} are not allowed in this space.")
        if len(self.resolutions) > 1:
            params["resolution"] = config.resolution
        if len(self.exit_heads) > 1:
            params["exit_head"] = config.exit_head
        rebuilt = self.config_from_params(params)
        if rebuilt != config:
            raise ConfigError(f"configuration {config.short_name()} is not a member of {self!r}.")
        return params

    def exit_deficit(self, config: EENNConfig) -> int:
        """How many early exits ``config`` lacks to reach ``min_exits`` (0 when it has enough).

        Used as the value of the static constraint ``min_exits`` (<= 0 is feasible).
        """
        return max(0, self.min_exits - config.num_early_exits)

    def cost_profile(
        self,
        config: EENNConfig,
        *,
        num_classes: int | None = None,
        in_channels: int | None = None,
        convention: str = "nachos",
    ) -> CostProfile:
        """Exact per-exit MACs and parameters of ``config``'s network, in closed form.

        Args:
            config: A configuration of the space.
            num_classes: Classes of the task (required: the heads' output size).
            in_channels: Channels of the input images (3 when ``None``).
            convention: ``"nachos"`` or ``"reference"``, as in
                :func:`~optuna_nachos.cost.exit_macs`.

        Raises:
            TypeError: If ``num_classes`` is missing.
        """
        return cost_profile(config, **_task(num_classes, in_channels), convention=convention)

    def smallest_average_macs(
        self,
        *,
        num_classes: int | None = None,
        in_channels: int | None = None,
        convention: str = "nachos",
    ) -> int:
        """The lowest average MACs an admissible network of the space can reach.

        That is the cheapest first exit over the space: the smallest choices everywhere, over
        every placement of at least ``min_exits`` exits (more exits can make the first head
        pool more), every resolution and head design.

        Raises:
            TypeError: If ``num_classes`` is missing.
            ConfigError: If no configuration has an early exit.
        """
        depth = min(self.depths)
        configs = (
            EENNConfig(
                depths=(depth,) * NUM_STAGES,
                kernel_sizes=((min(self.kernel_sizes),) * depth,) * NUM_STAGES,
                expand_ratios=((min(self.expand_ratios),) * depth,) * NUM_STAGES,
                exit_stages=exits,
                resolution=resolution,
                exit_head=head,
                exit_thresholds=None if self.threshold_genes is None else (0.0,) * len(exits),
            )
            for exits in exit_placements(self.exit_stages, self.min_exits)
            for resolution in self.resolutions
            for head in self.exit_heads
        )
        return self._cheapest_first_exit(
            configs, num_classes=num_classes, in_channels=in_channels, convention=convention
        )

    def build(
        self,
        config: EENNConfig,
        *,
        num_classes: int | None = None,
        in_channels: int | None = None,
    ) -> EarlyExitNetwork:
        """The MobileNetV3 early-exit network of ``config``
        (:func:`~optuna_nachos.models.build_eenn`).

        Raises:
            TypeError: If ``num_classes`` is missing.
        """
        return build_eenn(config, **_task(num_classes, in_channels))


def _task(num_classes: int | None, in_channels: int | None) -> dict[str, int]:
    """The task's shape for the builder and the cost model: ``num_classes`` is required."""
    if num_classes is None:
        raise TypeError(
            "MobileNetV3Space serves any task: pass num_classes (the dataset's number of classes)."
        )
    return {"num_classes": num_classes, "in_channels": 3 if in_channels is None else in_channels}
