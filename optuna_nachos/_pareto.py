"""Non-domination on plain arrays, shared by the layers that may not import Optuna.

Every objective is minimized here; callers negate the objectives they maximize. The
constrained ranking of the sampler uses Optuna's own sort (``optuna_nachos.samplers``); this
module serves training (the operating curve of thresholds) and results (the admissible front).
"""

from __future__ import annotations

import numpy as np


def nondominated_mask(loss_values: np.ndarray) -> np.ndarray:
    """Which rows no other row dominates (all objectives minimized).

    A row dominates another when it is nowhere worse and somewhere better; equal rows do not
    dominate each other, so duplicates of a non-dominated row are all kept.

    Args:
        loss_values: Shape ``(n, m)``.

    Returns:
        A boolean mask of shape ``(n,)``.
    """
    f = np.asarray(loss_values, dtype=float)
    n = len(f)
    if n == 0:
        return np.zeros(0, dtype=bool)
    f = f.reshape(n, -1)
    # Unique rows in lexicographic order: a row can only be dominated by an earlier one.
    unique, inverse = np.unique(f, axis=0, return_inverse=True)
    on_front = np.zeros(len(unique), dtype=bool)
    remaining = np.arange(len(unique))
    while remaining.size:
        top = remaining[0]
        on_front[top] = True
        # Keep the rows better than the new front member somewhere; the rest it dominates.
        remaining = remaining[np.any(unique[remaining] < unique[top], axis=1)]
    return on_front[inverse.reshape(-1)]


def cheapest_first_front(cost: np.ndarray, score: np.ndarray, *, tol: float = 0.0) -> np.ndarray:
    """Indices of the two-objective front, cheapest first: low cost, high score.

    Rows are swept by increasing cost (on equal cost, highest score first) and a row is kept
    when its score beats the best kept so far by more than ``tol``: of equal or near-equal
    points only the cheapest (then the first) stays.

    Args:
        cost: Shape ``(n,)``, minimized.
        score: Shape ``(n,)``, maximized.
        tol: Score improvement a row needs over the cheaper ones.

    Returns:
        Integer indices into the rows.
    """
    cost = np.asarray(cost, dtype=float).reshape(-1)
    score = np.asarray(score, dtype=float).reshape(-1)
    order = np.lexsort((-score, cost))
    keep: list[int] = []
    best = -np.inf
    for index in order:
        if score[index] > best + tol:
            keep.append(int(index))
            best = score[index]
    return np.array(keep, dtype=np.int64)
