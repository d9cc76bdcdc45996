"""A search space of early exits on a user's own backbone, as flat Optuna parameters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import optuna
import torch
from optuna.distributions import BaseDistribution, CategoricalDistribution
from torch import nn

from optuna_nachos.config import ConfigError, ExitsConfig
from optuna_nachos.cost import (
    CostProfile,
    check_convention,
    compose_exits,
    module_macs,
    peak_macs,
)
from optuna_nachos.models import (
    BackboneStages,
    EarlyExitNetwork,
    attach_exits,
    choose_pools,
    get_exit_head,
)
from optuna_nachos.space._base import EENNSearchSpace
from optuna_nachos.space._mobilenetv3 import (
    _check_exit_options,
    _index_of,
    _suggest_categoricals,
    exit_placements,
)

DEFAULT_EXIT_HEADS = ("nachos", "pool_linear", "mbconv")
"""Head designs searched by default: the NACHOS head, pooling + linear, a small MBConv."""


class BackboneExitSpace(EENNSearchSpace):
    """Early exits on your own backbone: where they sit and which head each one uses.

    The backbone (cut into stages, e.g. by :func:`~optuna_nachos.models.cut_stages`) is
    fixed; the space searches the exits. Every configuration is the same flat set of
    categorical parameters with stable names, so that NSGA-II, GP and the NACHOS sampler see
    all of them in every trial:

    * ``exit_after_stage{s}`` (bool) for each stage ``s`` that may carry an exit;
    * ``exit{s}_head`` (a head design name) for each such stage, always suggested and used
      only when the exit exists; absent when a single design is offered.

    Costs are exact: fvcore counts each backbone stage once and each distinct head placement
    (stage, design, max-pool) once, and the cost-monotone pooling rule (DESIGN 2.2) is applied
    on those counts, so :meth:`cost_profile` equals fvcore on the built network, MAC for MAC.

    The networks :meth:`build` returns share the backbone's modules (and weights) with
    ``stages``: train them with the backbone frozen (``TrainConfig(freeze_backbone=True)``,
    the default), or pass ``copy_backbone=True``.

    Args:
        stages: The backbone cut into stages, with its final head and input shape.
        num_classes: Number of classes the exit heads predict.
        exit_stages: Stages (1-based) that may carry an early exit; by default every stage
            but the last.
        exit_heads: Registered head designs to choose from.
        min_exits: Fewest early exits an admissible network has (the reference requires 1).

    Raises:
        ConfigError: If a setting is empty, out of range or unknown.
    """

    def __init__(
        self,
        stages: BackboneStages,
        *,
        num_classes: int,
        exit_stages: Sequence[int] | None = None,
        exit_heads: Sequence[str] = DEFAULT_EXIT_HEADS,
        min_exits: int = 1,
    ) -> None:
        if not isinstance(stages, BackboneStages):
            raise ConfigError(
                f"stages must be BackboneStages (see optuna_nachos.models.cut_stages), got "
                f"{type(stages).__name__}."
            )
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ConfigError(f"num_classes must be an integer >= 2, got {num_classes!r}.")
        self.stages = stages
        self.num_classes = num_classes
        last = stages.num_stages - 1
        allowed = tuple(range(1, last + 1)) if exit_stages is None else tuple(exit_stages)
        if not allowed or len(set(allowed)) != len(allowed):
            raise ConfigError(f"exit_stages must be distinct stage numbers, got {allowed}.")
        for stage in allowed:
            if isinstance(stage, bool) or not isinstance(stage, int) or not 1 <= stage <= last:
                raise ConfigError(
                    f"an early exit can follow stages 1..{last} (the final head follows stage "
                    f"{last + 1}), got {stage!r}."
                )
        self.exit_stages = tuple(sorted(allowed))
        if isinstance(exit_heads, str) or not exit_heads:
            raise ConfigError(
                f"exit_heads must be a non-empty sequence of names, got {exit_heads!r}."
            )
        self.exit_heads = tuple(exit_heads)
        if len(set(self.exit_heads)) != len(self.exit_heads):
            raise ConfigError(f"exit_heads must not repeat names, got {self.exit_heads}.")
        _check_exit_options(self.exit_heads, self.exit_stages, min_exits)
        self.min_exits = min_exits
        self._backbone: tuple[list[int], int, list[int], int] | None = None
        self._shapes: list[tuple[int, ...]] | None = None
        self._heads: dict[tuple[int, str, int], tuple[int, int]] = {}
        self._profiles: dict[tuple[ExitsConfig, str], CostProfile] = {}

    # ------------------------------------------------------------------- description
    @property
    def num_stages(self) -> int:
        """Number of backbone stages (the final head follows the last)."""
        return self.stages.num_stages

    def settings(self) -> dict[str, Any]:
        """The space's settings as plain JSON values."""
        return {
            "stage_names": list(self.stages.names),
            "input_shape": list(self.stages.input_shape),
            "num_classes": self.num_classes,
            "exit_stages": list(self.exit_stages),
            "exit_heads": list(self.exit_heads),
            "min_exits": self.min_exits,
        }

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in self.settings().items())
        return f"{type(self).__name__}({settings})"

    def distributions(self) -> dict[str, BaseDistribution]:
        """Every parameter of the space and its distribution, in suggestion order."""
        dists: dict[str, BaseDistribution] = {}
        for stage in self.exit_stages:
            dists[f"exit_after_stage{stage}"] = CategoricalDistribution((False, True))
        if len(self.exit_heads) > 1:
            for stage in self.exit_stages:
                dists[f"exit{stage}_head"] = CategoricalDistribution(self.exit_heads)
        return dists

    def num_configurations(self) -> int:
        """Number of distinct exit configurations (unused head parameters not counted)."""
        return (1 + len(self.exit_heads)) ** len(self.exit_stages)

    # ------------------------------------------------------------ params <-> config
    def suggest(self, trial: optuna.trial.BaseTrial) -> ExitsConfig:
        """Suggest an exit configuration on ``trial`` and return it, validated.

        Raises:
            ConfigError: If a value is outside its choices (a ``FixedTrial`` can hold one).
        """
        return self.config_from_params(_suggest_categoricals(trial, self.distributions()))

    def config_from_params(self, params: Mapping[str, Any]) -> ExitsConfig:
        """Rebuild the configuration from trial parameters, validating every value.

        Raises:
            ConfigError: If a parameter is missing or holds a value outside its choices.
        """
        values: dict[str, Any] = {}
        dists = self.distributions()
        for name, dist in dists.items():
            if name not in params:
                raise ConfigError(
                    f"parameter {name!r} is missing; the space expects {sorted(dists)}."
                )
            index = _index_of(params[name], dist.choices)
            if index is None:
                raise ConfigError(
                    f"parameter {name!r} = {params[name]!r} is not among {dist.choices}."
                )
            values[name] = dist.choices[index]
        stages = tuple(s for s in self.exit_stages if values[f"exit_after_stage{s}"])
        heads = tuple(values.get(f"exit{s}_head", self.exit_heads[0]) for s in stages)
        return ExitsConfig(exit_stages=stages, exit_heads=heads)

    def params_from_config(self, config: ExitsConfig) -> dict[str, Any]:
        """Trial parameters that encode ``config`` (for ``study.enqueue_trial``); unused head
        parameters get the first design.

        Raises:
            ConfigError: If ``config`` is not a member of this space.
        """
        extra = set(config.exit_stages) - set(self.exit_stages)
        if extra:
            raise ConfigError(f"exits after stages {sorted(extra)} are not allowed in this space.")
        unknown = set(config.exit_heads) - set(self.exit_heads)
        if unknown:
            raise ConfigError(f"head designs {sorted(unknown)} are not offered by this space.")
        heads = dict(zip(config.exit_stages, config.exit_heads))
        params: dict[str, Any] = {f"exit_after_stage{s}": s in heads for s in self.exit_stages}
        if len(self.exit_heads) > 1:
            for s in self.exit_stages:
                params[f"exit{s}_head"] = heads.get(s, self.exit_heads[0])
        return params

    def exit_deficit(self, config: ExitsConfig) -> int:
        """How many early exits ``config`` lacks to reach ``min_exits`` (0 when enough)."""
        return max(0, self.min_exits - config.num_early_exits)

    # ------------------------------------------------------------------------ costs
    def _backbone_counts(self) -> tuple[list[int], int, list[int], int]:
        """fvcore MACs and parameters of the stages (cumulative) and of the final head."""
        if self._backbone is None:
            network = EarlyExitNetwork(
                list(self.stages.segments), {}, self.stages.final_head, num_classes=2
            )
            counts = module_macs(network, self.stages.input_shape)
            macs, params, total_macs, total_params = [], [], 0, 0
            for index, segment in enumerate(self.stages.segments):
                total_macs += counts.get(f"segments.{index}", 0)
                total_params += sum(p.numel() for p in segment.parameters())
                macs.append(total_macs)
                params.append(total_params)
            final_macs = counts.get("final_head", 0)
            final_params = sum(p.numel() for p in self.stages.final_head.parameters())
            self._backbone = (macs, final_macs, params, final_params)
            self._shapes = self.stages.feature_shapes()
        return self._backbone

    def _feature_shape(self, stage: int) -> tuple[int, ...]:
        self._backbone_counts()
        assert self._shapes is not None
        return self._shapes[stage - 1]

    def _head(self, stage: int, head: str, pool: int) -> tuple[int, int]:
        """fvcore MACs and parameters of one head placement, counted once and cached."""
        key = (stage, head, pool)
        found = self._heads.get(key)
        if found is None:
            shape = self._feature_shape(stage)
            if len(shape) != 3:
                raise ConfigError(
                    f"stage {stage} outputs features of shape {shape}; exit heads read "
                    "(channels, height, width) feature maps."
                )
            with torch.random.fork_rng(devices=[]):
                module = get_exit_head(head).factory(
                    shape[0], (shape[1], shape[2]), self.num_classes, pool=pool
                )
            macs = module_macs(module, shape).get("", 0)
            found = (int(macs), sum(p.numel() for p in module.parameters()))
            self._heads[key] = found
        return found

    def exit_pools(self, config: ExitsConfig) -> tuple[int, ...]:
        """Max-pool size in front of each early-exit head (the cost-monotone rule)."""
        cumulative, final_macs, _, _ = self._backbone_counts()
        exits = [
            (s - 1, h, tuple(self._feature_shape(s)[1:3]))
            for s, h in zip(config.exit_stages, config.exit_heads)
        ]
        pools = choose_pools(
            cumulative,
            cumulative[-1] + final_macs,
            exits,
            lambda position, name, pool: self._head(position + 1, name, pool)[0],
        )
        return tuple(pools[s - 1] for s in config.exit_stages)

    def _check_member(self, config: ExitsConfig) -> None:
        if not isinstance(config, ExitsConfig):
            raise ConfigError(
                f"config must be an ExitsConfig (from space.suggest(trial)), got "
                f"{type(config).__name__}."
            )
        self.params_from_config(config)

    def _check_task(self, num_classes: int | None, in_channels: int | None) -> None:
        """Refuse a task other than the one the backbone and its classifier were made for."""
        channels = int(self.stages.input_shape[0])
        for name, given, own in (
            ("num_classes", num_classes, self.num_classes),
            ("in_channels", in_channels, channels),
        ):
            if given is not None and given != own:
                raise ConfigError(
                    f"this BackboneExitSpace serves {name}={own}, not {given}: its backbone and "
                    f"classifier were made for that task; build the space for this data."
                )

    def cost_profile(
        self,
        config: ExitsConfig,
        *,
        num_classes: int | None = None,
        in_channels: int | None = None,
        convention: str = "nachos",
    ) -> CostProfile:
        """Exact per-exit MACs and parameters of ``config``'s network, without building it.

        Args:
            config: The exits.
            num_classes: The task's classes; the space's own when ``None`` (checked if given).
            in_channels: The input's channels; the backbone's when ``None`` (checked if given).
            convention: ``"nachos"`` charges an exit with the heads the sample passed;
                ``"reference"`` does not.

        Returns:
            The :class:`~optuna_nachos.cost.CostProfile`, equal to fvcore's count of the
            built network.

        Raises:
            ConfigError: If ``num_classes`` or ``in_channels`` differ from the space's.
        """
        check_convention(convention)
        self._check_task(num_classes, in_channels)
        self._check_member(config)
        key = (config, convention)
        found = self._profiles.get(key)
        if found is not None:
            return found
        cumulative, final_macs, cumulative_params, final_params = self._backbone_counts()
        pools = self.exit_pools(config)
        heads = [
            self._head(s, h, p) for s, h, p in zip(config.exit_stages, config.exit_heads, pools)
        ]
        positions = [s - 1 for s in config.exit_stages]
        macs = compose_exits(
            cumulative,
            positions,
            [m for m, _ in heads],
            final_macs,
            passed_heads=convention == "nachos",
        )
        params = compose_exits(
            cumulative_params, positions, [p for _, p in heads], final_params, passed_heads=True
        )
        found = CostProfile(
            exit_macs=tuple(macs),
            exit_params=tuple(params),
            peak_macs=peak_macs(macs),
            min_average_macs=min(macs),
            convention=convention,
            exit_pools=pools,
        )
        self._profiles[key] = found
        return found

    def smallest_average_macs(
        self,
        *,
        num_classes: int | None = None,
        in_channels: int | None = None,
        convention: str = "nachos",
    ) -> int:
        """The lowest average MACs an admissible network of the space can reach: the
        cheapest first exit over every configuration with at least ``min_exits`` exits.

        Raises:
            ConfigError: If ``num_classes`` or ``in_channels`` differ from the space's, or
                no configuration has an early exit.
        """
        self._check_task(num_classes, in_channels)
        configs = (
            ExitsConfig(exit_stages=stages, exit_heads=(head,) * len(stages))
            for stages in exit_placements(self.exit_stages, self.min_exits)
            for head in self.exit_heads
        )
        return self._cheapest_first_exit(configs, convention=convention)

    # ------------------------------------------------------------------------- build
    def build(
        self,
        config: ExitsConfig,
        *,
        num_classes: int | None = None,
        in_channels: int | None = None,
        copy_backbone: bool = False,
    ) -> EarlyExitNetwork:
        """Build the early-exit network of ``config``: the backbone, new exit heads (with the
        pools of :meth:`exit_pools`) and the backbone's final head.

        Args:
            config: The exits.
            num_classes: The task's classes; the space's own when ``None`` (checked if given).
            in_channels: The input's channels; the backbone's when ``None`` (checked if given).
            copy_backbone: Give the network its own copy of the backbone instead of sharing
                the modules of ``stages`` (needed to fine-tune the backbone per trial).

        Returns:
            The network, in training mode, with heads initialized from torch's global RNG.

        Raises:
            ConfigError: If ``num_classes`` or ``in_channels`` differ from the space's.
        """
        self._check_task(num_classes, in_channels)
        self._check_member(config)
        segments: list[nn.Module] = list(self.stages.segments)
        final_head = self.stages.final_head
        if copy_backbone:
            import copy

            segments = [copy.deepcopy(s) for s in segments]
            final_head = copy.deepcopy(final_head)
        network = attach_exits(
            segments,
            final_head,
            exit_after=[s - 1 for s in config.exit_stages],
            num_classes=self.num_classes,
            input_shape=self.stages.input_shape,
            head=list(config.exit_heads),
            pools=list(self.exit_pools(config)),
        )
        network.exits_config = config
        return network
