"""One non-domination helper: the same fronts, ranks and selections as the implementations it
replaced (kept here, in their earlier form, as the reference)."""

from __future__ import annotations

import numpy as np
import pytest

from optuna_nachos._pareto import cheapest_first_front, nondominated_mask
from optuna_nachos.samplers._nsga2 import (
    constrained_ranks,
    dominated_hypervolume,
    non_dominated_ranks,
    select_hypervolume,
    select_spread,
)


def _old_ranks(f: np.ndarray) -> np.ndarray:
    n = len(f)
    ranks = np.full(n, -1, dtype=int)
    if n == 0:
        return ranks
    le = np.all(f[:, None, :] <= f[None, :, :], axis=2)
    lt = np.any(f[:, None, :] < f[None, :, :], axis=2)
    dominates = le & lt
    counts = dominates.sum(axis=0)
    current = np.flatnonzero(counts == 0)
    rank = 0
    while current.size:
        ranks[current] = rank
        counts = counts - dominates[current].sum(axis=0)
        counts[ranks >= 0] = -1
        current = np.flatnonzero(counts == 0)
        rank += 1
    return ranks


def _old_constrained_ranks(f: np.ndarray, v: np.ndarray) -> np.ndarray:
    ranks = np.empty(len(v), dtype=int)
    feasible = v <= 0.0
    offset = 0
    if feasible.any():
        ranks[feasible] = _old_ranks(f[feasible])
        offset = int(ranks[feasible].max()) + 1
    if (~feasible).any():
        _, order = np.unique(v[~feasible], return_inverse=True)
        ranks[~feasible] = offset + order
    return ranks


def _old_hypervolume(p: np.ndarray, reference: np.ndarray) -> float:
    p = np.asarray(p, dtype=float).reshape(-1, len(reference))
    p = p[np.all(p < reference, axis=1)]
    if len(p) == 0:
        return 0.0
    if p.shape[1] == 1:
        return float(reference[0] - p[:, 0].min())
    if p.shape[1] == 2:
        p = p[np.argsort(p[:, 0], kind="stable")]
        best = np.minimum.accumulate(p[:, 1])
        widths = np.diff(np.append(p[:, 0], reference[0]))
        return float(np.sum(widths * (reference[1] - best)))
    p = p[np.argsort(p[:, -1], kind="stable")]
    upper = np.append(p[1:, -1], reference[-1])
    return float(
        sum(
            (upper[i] - p[i, -1]) * _old_hypervolume(p[: i + 1, :-1], reference[:-1])
            for i in range(len(p))
            if upper[i] > p[i, -1]
        )
    )


def _old_select_hypervolume(f, v, k, *, front, reference):  # type: ignore[no-untyped-def]
    base = np.asarray(front, dtype=float).reshape(-1, f.shape[1])
    chosen: list[int] = []
    pool = [i for i in np.flatnonzero(v <= 0.0) if np.all(f[i] < reference)]
    current = _old_hypervolume(base, reference)
    while pool and len(chosen) < k:
        points = np.vstack([base, f[chosen]]) if chosen else base
        gains = np.array([_old_hypervolume(np.vstack([points, f[i]]), reference) for i in pool])
        best = int(np.argmax(gains))
        if gains[best] - current <= 1e-12 * max(abs(current), 1.0):
            break
        chosen.append(pool.pop(best))
        current = float(gains[best])
    if len(chosen) < k:
        rest = np.setdiff1d(np.arange(len(f)), chosen)
        anchors = np.vstack([base, f[chosen]]) if chosen else base
        extra = select_spread(f[rest], v[rest], k - len(chosen), anchors=anchors)
        chosen.extend(rest[extra].tolist())
    return np.array(chosen[:k], dtype=int)


def _cases(seed: int, count: int):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    for case in range(count):
        n = int(rng.integers(0, 60))
        m = int(rng.integers(1, 4))
        # Coarse grids give ties and duplicates, the cases where implementations differ.
        levels = 4 if case % 2 else 1000
        f = rng.integers(0, levels, size=(n, m)).astype(float)
        v = np.where(rng.random(n) < 0.4, rng.integers(1, 5, size=n), 0.0).astype(float)
        yield f, v


def test_ranks_match_the_earlier_sort_on_random_cases() -> None:
    for f, v in _cases(0, 300):
        np.testing.assert_array_equal(non_dominated_ranks(f), _old_ranks(f))
        np.testing.assert_array_equal(constrained_ranks(f, v), _old_constrained_ranks(f, v))


def test_nondominated_mask_is_rank_zero() -> None:
    for f, _ in _cases(1, 200):
        np.testing.assert_array_equal(nondominated_mask(f), _old_ranks(f) == 0)
    assert nondominated_mask(np.zeros((0, 2))).tolist() == []
    # Duplicates of a front point are all on the front.
    f = np.array([[1.0, 2.0], [1.0, 2.0], [2.0, 3.0], [0.0, 5.0]])
    assert nondominated_mask(f).tolist() == [True, True, False, True]


def test_cheapest_first_front_sweeps_with_a_tolerance() -> None:
    cost = np.array([3.0, 1.0, 2.0, 1.0, 4.0, 2.0])
    score = np.array([0.9, 0.5, 0.5, 0.6, 0.9, 0.7])
    # Cost 1: 0.6 beats 0.5; cost 2: 0.7; cost 3: 0.9; cost 4 adds nothing.
    assert cheapest_first_front(cost, score).tolist() == [3, 5, 0]
    assert cheapest_first_front(cost, score, tol=0.15).tolist() == [3, 0]
    assert cheapest_first_front(cost[:0], score[:0]).tolist() == []


def test_dominated_hypervolume_matches_the_earlier_sweep() -> None:
    rng = np.random.default_rng(2)
    for m in (2, 3):
        for _ in range(30):
            points = rng.random((int(rng.integers(0, 25)), m))
            reference = np.full(m, 0.9)
            assert dominated_hypervolume(points, reference) == pytest.approx(
                _old_hypervolume(points, reference), rel=1e-12, abs=1e-15
            )


@pytest.mark.parametrize("m", [2, 3])
def test_select_hypervolume_matches_the_earlier_greedy(m: int) -> None:
    rng = np.random.default_rng(3 + m)
    for case in range(60):
        n = int(rng.integers(1, 50))
        f = rng.random((n, m))
        tied = case % 3 == 0
        if tied:  # ties and duplicates
            f = np.round(f * 4) / 4
        v = np.where(rng.random(n) < 0.3, 1.0, 0.0)
        front = rng.random((int(rng.integers(0, 6)), m)) + 0.3
        reference = np.full(m, 1.2)
        k = int(rng.integers(1, 10))
        new = select_hypervolume(f, v, k, front=front, reference=reference)
        old = _old_select_hypervolume(f, v, k, front=front, reference=reference)
        if not tied:
            np.testing.assert_array_equal(new, old)
            continue
        # Exactly tied gains were broken by rounding noise before: the same volume is reached.
        assert len(new) == len(old)
        assert dominated_hypervolume(np.vstack([front, f[new]]), reference) == pytest.approx(
            _old_hypervolume(np.vstack([front, f[old]]), reference), rel=1e-12
        )


def test_select_hypervolume_breaks_exact_ties_by_order() -> None:
    # Two mirrored candidates add the same volume: the first one is taken first.
    candidates = np.array([[0.75, 0.25], [0.25, 0.75], [0.5, 0.5]])
    chosen = select_hypervolume(
        candidates, np.zeros(3), 2, front=np.zeros((0, 2)), reference=np.array([1.0, 1.0])
    )
    assert chosen.tolist() == [2, 0]
