"""The contract every EENN search space fulfils: what samplers, objectives, costs and export use."""

from __future__ import annotations

import abc
import math
from collections.abc import Iterable, Mapping
from typing import Any

import optuna
from optuna.distributions import BaseDistribution

from optuna_nachos.config import NUM_STAGES, ConfigError
from optuna_nachos.cost import CostProfile
from optuna_nachos.models import EarlyExitNetwork

# The static constraints' names, as the trial record (a layer below) stores them; a test keeps
# them equal to ``optuna_nachos.record``'s.
MIN_EXITS = "min_exits"
MAX_AVG_MACS = "max_avg_macs"
MAX_PEAK_MACS = "max_peak_macs"
MAX_PARAMS = "max_params"


class EENNSearchSpace(abc.ABC):
    """An EENN search space: its parameters, the networks they encode, and their exact costs.

    Every piece of the package that handles candidates goes through these methods only: the
    samplers (:class:`~optuna_nachos.NachosSampler`), the objectives, the cost screening and
    the figures. :class:`~optuna_nachos.space.MobileNetV3Space` (the NACHOS space) and
    :class:`~optuna_nachos.space.BackboneExitSpace` (exits on your own backbone) implement it;
    a space of your own subclasses it and implements the abstract methods.

    A configuration is whatever object the space's networks are built from (an
    :class:`~optuna_nachos.EENNConfig`, an :class:`~optuna_nachos.ExitsConfig`, ...); it must
    be hashable and comparable, and ``config_from_params(params_from_config(c)) == c``.

    The task's ``num_classes`` and ``in_channels`` are arguments of the cost and build methods:
    a space such as ``MobileNetV3Space`` serves any task, while a space fixed to one task (a
    user's backbone with its own classifier) may leave them out and checks them when given.
    """

    @property
    def num_stages(self) -> int:
        """The stage the final exit follows (early exits follow stages ``1..num_stages - 1``)."""
        return NUM_STAGES

    # ------------------------------------------------------------------ parameters
    @abc.abstractmethod
    def settings(self) -> dict[str, Any]:
        """The space's settings as plain JSON values (stored with a study)."""

    @abc.abstractmethod
    def distributions(self) -> dict[str, BaseDistribution]:
        """Every parameter of the space and its distribution, in suggestion order."""

    @abc.abstractmethod
    def suggest(self, trial: optuna.trial.BaseTrial) -> Any:
        """Suggest a whole configuration on ``trial`` and return it, validated."""

    @abc.abstractmethod
    def config_from_params(self, params: Mapping[str, Any]) -> Any:
        """The configuration that trial parameters encode (parameters not of the space are
        ignored)."""

    @abc.abstractmethod
    def params_from_config(self, config: Any) -> dict[str, Any]:
        """The parameters of ``config`` in the space's canonical form (unused genes at their
        first choice): two parameter sets that build the same network give the same form."""

    @abc.abstractmethod
    def num_configurations(self) -> int:
        """Number of distinct networks in the space."""

    def log10_size(self) -> float:
        """Base-10 logarithm of :meth:`num_configurations`."""
        return math.log10(self.num_configurations())

    # ------------------------------------------------------------ exits and costs
    @abc.abstractmethod
    def exit_deficit(self, config: Any) -> int:
        """Early exits ``config`` lacks to reach the space's minimum (0 when it has enough):
        the value of the static constraint ``min_exits``."""

    @abc.abstractmethod
    def cost_profile(
        self,
        config: Any,
        *,
        num_classes: int | None = None,
        in_channels: int | None = None,
        convention: str = "nachos",
    ) -> CostProfile:
        """Exact per-exit MACs and parameters of ``config``'s network, without training it.

        Args:
            config: A configuration of the space.
            num_classes: Classes of the task (the heads' output size).
            in_channels: Channels of the input images.
            convention: ``"nachos"`` charges an exit with the heads the sample passed;
                ``"reference"`` does not.
        """

    @abc.abstractmethod
    def smallest_average_macs(
        self,
        *,
        num_classes: int | None = None,
        in_channels: int | None = None,
        convention: str = "nachos",
    ) -> int:
        """The lowest average MACs an admissible network of the space can reach: the cheapest
        first exit over every configuration with at least the space's minimum of exits."""

    def _cheapest_first_exit(self, configs: Iterable[Any], **task: Any) -> int:
        """The cheapest first exit over ``configs`` (``task``: the cost profile's settings).

        Raises:
            ConfigError: If ``configs`` is empty (no configuration with an early exit).
        """
        firsts = [self.cost_profile(config, **task).exit_macs[0] for config in configs]
        if not firsts:
            raise ConfigError("the space has no configuration with an early exit.")
        return int(min(firsts))

    def static_constraints(
        self,
        config: Any,
        *,
        num_classes: int | None = None,
        in_channels: int | None = None,
        max_avg_macs: float | None = None,
        max_peak_macs: float | None = None,
        max_params: float | None = None,
        convention: str = "nachos",
    ) -> dict[str, float]:
        """Constraint values known before training (``<= 0`` is satisfied): the static guard.

        ``min_exits`` is the missing early exits; ``max_avg_macs`` compares the exact lower
        bound of the average MACs (the first exit's cost, every sample leaving there);
        ``max_peak_macs`` (the final exit's cost) and ``max_params`` appear when set.
        """
        profile = self.cost_profile(
            config, num_classes=num_classes, in_channels=in_channels, convention=convention
        )
        out = {MIN_EXITS: float(self.exit_deficit(config))}
        if max_avg_macs is not None:
            out[MAX_AVG_MACS] = float(profile.min_average_macs) - float(max_avg_macs)
        if max_peak_macs is not None:
            out[MAX_PEAK_MACS] = float(profile.peak_macs) - float(max_peak_macs)
        if max_params is not None:
            out[MAX_PARAMS] = float(profile.total_params) - float(max_params)
        return out

    # ----------------------------------------------------------------------- build
    @abc.abstractmethod
    def build(
        self, config: Any, *, num_classes: int | None = None, in_channels: int | None = None
    ) -> EarlyExitNetwork:
        """The early-exit network of ``config``, in training mode, its new weights drawn from
        torch's global RNG."""


def check_space(space: object) -> None:
    """Raise a :class:`TypeError` unless ``space`` is an :class:`EENNSearchSpace`."""
    if not isinstance(space, EENNSearchSpace):
        raise TypeError(
            "space must be an EENN search space such as MobileNetV3Space or BackboneExitSpace, "
            f"or a subclass of optuna_nachos.space.EENNSearchSpace; got {type(space).__name__}."
        )
