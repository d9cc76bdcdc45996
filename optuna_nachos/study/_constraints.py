"""Names and order of the constraints the packaged objective sets on every trial."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from optuna.trial import FrozenTrial

from optuna_nachos.record import (
    ACCURACY_ATTR,
    AVG_MACS_ATTR,
    CONSTRAINT_NAMES,
    EXIT_DEFICIT_ATTR,
    EXIT_MACS_ATTR,
    PARAMS_ATTR,
)


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


def constraints_from_user_attrs(
    *,
    max_avg_macs: float,
    min_accuracy: float,
    max_peak_macs: float | None = None,
    max_params: float | None = None,
) -> Callable[[FrozenTrial], list[float]]:
    """A ``constraints_func`` for samplers that still take one, computed from user attributes.

    The returned function reads what the objective recorded as user attributes and computes,
    in this order: ``avg_macs - max_avg_macs``, ``min_accuracy - accuracy``, the missing early
    exits (``exit_deficit``), then ``exit_macs[-1] - max_peak_macs`` and
    ``params - max_params`` when those limits are given. The objective records the attributes
    (:class:`~optuna_nachos.objective.ExitObjective` with ``set_constraints=False`` does) and
    does *not* call ``trial.set_constraint``: the sampler stores the list once, as Optuna's
    legacy ``constraints`` system attribute, so nothing is stored twice.

    ``constraints_func`` is deprecated since Optuna 5.0 (removal planned for 7.0) in favour
    of ``trial.set_constraint``, which Optuna 5 samplers read directly; use this helper only
    for samplers that still need the function (``NSGAIISampler(constraints_func=...)`` on
    Optuna 4, some optuna-integration samplers).

    Args:
        max_avg_macs: Budget of average MACs.
        min_accuracy: Accuracy floor (same unit as the ``accuracy`` attribute).
        max_peak_macs: Optional limit of the last exit's MACs.
        max_params: Optional limit of the parameter count.

    Returns:
        ``constraints_func(trial) -> list[float]`` (``<= 0`` satisfied).

    Raises:
        KeyError: (from the returned function) when a trial lacks an attribute; the message
            names the attributes to record.
    """
    budget, floor = float(max_avg_macs), float(min_accuracy)

    def constraints_func(trial: FrozenTrial) -> list[float]:
        attrs = trial.user_attrs
        needed = [ACCURACY_ATTR, AVG_MACS_ATTR, EXIT_DEFICIT_ATTR]
        if max_peak_macs is not None:
            needed.append(EXIT_MACS_ATTR)
        if max_params is not None:
            needed.append(PARAMS_ATTR)
        missing = [name for name in needed if name not in attrs]
        if missing:
            raise KeyError(
                f"trial {trial.number} lacks the user attributes {missing}: record them with "
                "trial.set_user_attr in the objective (ExitObjective does)."
            )
        values = [
            float(attrs[AVG_MACS_ATTR]) - budget,
            floor - float(attrs[ACCURACY_ATTR]),
            float(attrs[EXIT_DEFICIT_ATTR]),
        ]
        if max_peak_macs is not None:
            values.append(float(attrs[EXIT_MACS_ATTR][-1]) - float(max_peak_macs))
        if max_params is not None:
            values.append(float(attrs[PARAMS_ATTR]) - float(max_params))
        return values

    return constraints_func
