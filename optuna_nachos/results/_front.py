"""The admissible Pareto front, its hypervolume and its high trade-off points."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from optuna_nachos._pareto import nondominated_mask
from optuna_nachos.record import (
    MAX_AVG_LATENCY,
    MAX_AVG_MACS,
    MIN_ACCURACY,
    is_latency_study,
    selection_feasible,
    selection_values,
    study_settings,
)


def admissible_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Feasible, Pareto-optimal trials of an EENN study, sorted by average MACs.

    A trial is admissible when it finished, carries constraints and satisfies all of them
    (average MACs within the budget, accuracy above the floor, enough exits, static limits),
    and no other feasible trial is at least as accurate and as cheap, and better in one.

    The choice is made on the validation split (:func:`~optuna_nachos.record.selection_values`,
    the objective values of the packaged objective); report the test figures of the trials
    chosen with :func:`~optuna_nachos.record.reported_values`. Trials of studies written by earlier
    versions, whose objective values are test figures, are chosen on their validation
    attributes.
    """
    feasible = [
        (t, selection_values(t))
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if selection_feasible(t)
    ]
    losses = np.array([(-acc, macs) for _, (acc, macs) in feasible], dtype=float)
    front = [trial for (trial, _), keep in zip(feasible, nondominated_mask(losses)) if keep]
    return sorted(front, key=lambda t: (selection_values(t)[1], -selection_values(t)[0], t.number))


def hypervolume_reference(
    study: optuna.Study | None,
    min_accuracy: float | None = None,
    max_avg_macs: float | None = None,
) -> tuple[float, float]:
    """The reference point (accuracy floor, cost budget) of a study's front hypervolume.

    Given values win; the others come from the study's settings (the latency budget, in ms,
    for a study that minimizes latency).

    Raises:
        ValueError: If neither gives both.
    """
    settings = study_settings(study) if study is not None else {}
    min_accuracy = settings.get(MIN_ACCURACY) if min_accuracy is None else min_accuracy
    if max_avg_macs is None:
        # A study minimizing latency has its budget, in ms, as the reference.
        latency = is_latency_study(settings)
        max_avg_macs = settings.get(MAX_AVG_LATENCY if latency else MAX_AVG_MACS)
    if min_accuracy is None or max_avg_macs is None:
        raise ValueError(
            "the hypervolume needs a reference point: pass min_accuracy and max_avg_macs, or "
            "use a study created with those settings."
        )
    return float(min_accuracy), float(max_avg_macs)


def hypervolume(
    trials: optuna.Study | Sequence[FrozenTrial],
    *,
    min_accuracy: float | None = None,
    max_avg_macs: float | None = None,
) -> float:
    """Normalized hypervolume of the admissible front, on the selection (validation) figures.

    The reference point is (accuracy = ``min_accuracy``, average MACs = ``max_avg_macs``): the
    corner of the admissible region. The area dominated by the front inside the box
    ``[min_accuracy, 1] x [0, max_avg_macs]`` is divided by the area of that box, so the
    result lies in ``[0, 1]``; 1 would be a perfectly accurate network costing nothing.

    Args:
        trials: A study (settings read from its user attributes) or finished trials.
        min_accuracy: Accuracy floor; defaults to the study's setting.
        max_avg_macs: Average-MAC budget; defaults to the study's setting.
    """
    study = trials if isinstance(trials, optuna.Study) else None
    floor, budget = hypervolume_reference(study, min_accuracy, max_avg_macs)
    if study is not None:
        points = [selection_values(t) for t in admissible_trials(study)]
    else:
        points = [
            selection_values(t)
            for t in trials
            if t.state == TrialState.COMPLETE and selection_feasible(t)
        ]
    inside = sorted(
        (float(acc), float(macs)) for acc, macs in points if acc > floor and macs < budget
    )
    if not inside or floor >= 1.0 or budget <= 0:
        return 0.0
    # Sweep by increasing cost: each point adds the strip it dominates beyond the best so far.
    area = 0.0
    best_accuracy = floor
    for acc, macs in sorted(inside, key=lambda p: (p[1], -p[0])):
        if acc > best_accuracy:
            area += (acc - best_accuracy) * (budget - macs)
            best_accuracy = acc
    return area / ((1.0 - floor) * budget)


def high_tradeoff_trials(
    trials: Sequence[FrozenTrial] | optuna.Study, n: int = 3
) -> list[FrozenTrial]:
    """The ``n`` trials of the front with the highest trade-off (the knees).

    Objectives are normalized to ``[0, 1]`` over the front (both as costs: ``1 - accuracy`` and
    average MACs), on the selection (validation) figures. The trade-off of a point is the
    smallest, over the other points, ratio of what it would lose to what it would gain by
    moving there; points that other points can only replace at a high price rank first.
    Fronts of at most ``n`` points are returned whole.

    Args:
        trials: Admissible trials, or a study (its :func:`admissible_trials`).
        n: Number of trials to pick.
    """
    front = admissible_trials(trials) if isinstance(trials, optuna.Study) else list(trials)
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}.")
    if len(front) <= n:
        return front
    values = [selection_values(t) for t in front]
    costs = np.array([[1.0 - acc, macs] for acc, macs in values], dtype=float)
    span = costs.max(axis=0) - costs.min(axis=0)
    span[span == 0] = 1.0
    costs = (costs - costs.min(axis=0)) / span
    tradeoff = np.empty(len(front))
    for i in range(len(front)):
        diff = costs - costs[i]
        loss = np.clip(diff, 0, None).sum(axis=1)  # how much worse the others are
        gain = np.clip(-diff, 0, None).sum(axis=1)  # how much better the others are
        others = np.arange(len(front)) != i
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(gain[others] > 0, loss[others] / gain[others], np.inf)
        tradeoff[i] = ratio.min()
    order = np.argsort(-tradeoff, kind="stable")[:n]
    return [front[i] for i in sorted(order, key=lambda i: values[i][1])]
