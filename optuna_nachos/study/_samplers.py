"""Creating Optuna samplers by name, set up for the EENN search."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import optuna

SAMPLER_NAMES = ("motpe", "nsga2", "nsga3", "gp", "random", "nachos")


def _nachos(**kwargs: Any) -> optuna.samplers.BaseSampler:
    from optuna_nachos.samplers import NachosSampler

    return NachosSampler(**kwargs)


_FACTORIES: dict[str, Callable[..., optuna.samplers.BaseSampler]] = {
    "motpe": lambda **kw: optuna.samplers.TPESampler(multivariate=True, group=True, **kw),
    "nsga2": optuna.samplers.NSGAIISampler,
    "nsga3": optuna.samplers.NSGAIIISampler,
    "gp": optuna.samplers.GPSampler,
    "random": optuna.samplers.RandomSampler,
    "nachos": _nachos,
}


def create_sampler(
    name: str, *, space: Any = None, seed: int | None = None, **kwargs: Any
) -> optuna.samplers.BaseSampler:
    """Create a sampler for the EENN search by name.

    Args:
        name: ``"motpe"`` (multi-objective TPE, multivariate and grouped), ``"nsga2"``,
            ``"nsga3"``, ``"gp"``, ``"random"`` or ``"nachos"`` (:class:`NachosSampler`).
        space: The search space; passed to samplers that use it (``"nachos"``).
        seed: Random seed.
        **kwargs: Further keyword arguments for the sampler's constructor.

    Raises:
        ValueError: If ``name`` is unknown.
    """
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise ValueError(
            f"unknown sampler {name!r}; choose one of {', '.join(SAMPLER_NAMES)}."
        ) from None
    if name == "nachos" and space is not None:
        kwargs["space"] = space
    with warnings.catch_warnings():
        # The samplers chosen here are deliberate; their "experimental" notices are noise.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return factory(seed=seed, **kwargs)
