"""What an EENN search space must offer the NACHOS sampler."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from optuna.distributions import BaseDistribution


@runtime_checkable
class EENNSearchSpace(Protocol):
    """An EENN search space, as :class:`~optuna_nachos.samplers.NachosSampler` uses it.

    :class:`~optuna_nachos.space.MobileNetV3Space` and
    :class:`~optuna_nachos.space.BackboneExitSpace` are such spaces; a space of your own needs
    these four methods. Two are optional: ``cost_profile(config, *, convention)`` (a space that
    counts its own networks' MACs, as ``BackboneExitSpace`` does; otherwise the analytic cost
    model of :func:`optuna_nachos.cost.cost_profile` is used) and ``num_stages`` (the stage of
    the final exit; 5 by default).
    """

    def distributions(self) -> dict[str, BaseDistribution]:
        """Every parameter of the space and its distribution."""
        ...

    def config_from_params(self, params: Mapping[str, Any]) -> Any:
        """The configuration that trial parameters encode."""
        ...

    def params_from_config(self, config: Any) -> dict[str, Any]:
        """The parameters of a configuration, in the space's canonical form."""
        ...

    def exit_deficit(self, config: Any) -> int:
        """Early exits ``config`` lacks to reach the space's minimum (0 when it has enough)."""
        ...


SPACE_METHODS = tuple(
    name for name, value in vars(EENNSearchSpace).items() if callable(value) and name[0] != "_"
)
"""The methods of :class:`EENNSearchSpace`, in the order an error names them."""


def check_space(space: object) -> None:
    """Raise a :class:`TypeError` naming what ``space`` lacks of :class:`EENNSearchSpace`."""
    missing = [name for name in SPACE_METHODS if not callable(getattr(space, name, None))]
    if missing:
        raise TypeError(
            "space must be an EENN search space such as MobileNetV3Space or BackboneExitSpace "
            f"(see EENNSearchSpace); {type(space).__name__} lacks the "
            f"{'method' if len(missing) == 1 else 'methods'} "
            f"{', '.join(f'{name}()' for name in missing)}."
        )
