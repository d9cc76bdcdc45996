"""Names and order of the constraints the packaged objective sets on every trial."""

from __future__ import annotations

from collections.abc import Sequence

from optuna.trial import FrozenTrial

MAX_AVG_MACS = "max_avg_macs"
MIN_ACCURACY = "min_accuracy"
MIN_EXITS = "min_exits"
MAX_PEAK_MACS = "max_peak_macs"
MAX_PARAMS = "max_params"
MAX_AVG_LATENCY = "max_avg_latency_ms"
MAX_PEAK_LATENCY = "max_peak_latency_ms"

CONSTRAINT_NAMES: tuple[str, ...] = (
    MAX_AVG_MACS,
    MIN_ACCURACY,
    MIN_EXITS,
    MAX_PEAK_MACS,
    MAX_PARAMS,
    MAX_AVG_LATENCY,
    MAX_PEAK_LATENCY,
)
"""Every constraint the objective may set, in the fixed order of :func:`constraint_values`."""


def constraint_values(trial: FrozenTrial, names: Sequence[str] | None = None) -> list[float]:
    """A finished trial's stored constraint values in a fixed order (the legacy path).

    Optuna 5 samplers read constraints set with ``trial.set_constraint`` directly. Samplers and
    integrations that still take a ``constraints_func`` (Optuna 4.x, some optuna-integration
    samplers) can be given ``functools.partial(constraint_values, names=...)`` or this function.

    Args:
        trial: A finished trial.
        names: Constraint names to return, in order; by default those of
            :data:`CONSTRAINT_NAMES` that the trial carries.

    Returns:
        The values; ``<= 0`` means satisfied.

    Raises:
        KeyError: If the trial lacks a requested constraint.
    """
    stored = trial.constraints
    if names is None:
        names = [name for name in CONSTRAINT_NAMES if name in stored]
        names += sorted(set(stored) - set(CONSTRAINT_NAMES))
    missing = [name for name in names if name not in stored]
    if missing:
        raise KeyError(
            f"trial {trial.number} carries no constraint {missing}; it has {sorted(stored)}."
        )
    return [float(stored[name]) for name in names]


def is_feasible(trial: FrozenTrial) -> bool:
    """Whether the trial carries constraints and satisfies all of them."""
    stored = trial.constraints
    return bool(stored) and all(value <= 0.0 for value in stored.values())
