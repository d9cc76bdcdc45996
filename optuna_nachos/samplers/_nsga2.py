"""An integer NSGA-II with constrained domination, run on predicted objectives.

Objectives are minimized. Constraint handling is Deb's constrained domination: a feasible
solution (total violation 0) beats an infeasible one, two infeasible ones compare by total
violation, two feasible ones by Pareto dominance.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass

import numpy as np
from optuna._hypervolume import compute_hypervolume
from optuna.study._multi_objective import _fast_non_domination_rank

from optuna_nachos._pareto import nondominated_mask
from optuna_nachos.samplers._encoding import SearchSpaceEncoder

Evaluate = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
"""Maps vectors ``(n, d)`` to minimized objectives ``(n, m)`` and total violations ``(n,)``."""


def _rows(objectives: np.ndarray) -> np.ndarray:
    """Objectives as a 2-D array, one row per point (a 1-D array is one objective)."""
    f = np.asarray(objectives, dtype=float)
    return f[:, None] if f.ndim == 1 else f


def non_dominated_ranks(objectives: np.ndarray) -> np.ndarray:
    """Pareto rank of every row (0 for the non-dominated ones) of minimized objectives."""
    return _fast_non_domination_rank(_rows(objectives))


def constrained_ranks(objectives: np.ndarray, violations: np.ndarray) -> np.ndarray:
    """Ranks under constrained domination: feasible Pareto ranks first, then by violation.

    Optuna's constrained non-dominated sort (the one its NSGA-II uses): equal violations share
    a rank, and a missing (NaN) violation counts as the largest.
    """
    v = np.nan_to_num(np.asarray(violations, dtype=float), nan=np.inf)
    return _fast_non_domination_rank(_rows(objectives), penalty=v)


def crowding_distance(objectives: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of every row (infinite at the extremes of each objective)."""
    f = np.asarray(objectives, dtype=float)
    n, m = f.shape
    distance = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for k in range(m):
        order = np.argsort(f[:, k], kind="stable")
        span = f[order[-1], k] - f[order[0], k]
        distance[order[0]] = distance[order[-1]] = np.inf
        if span <= 0:
            continue
        distance[order[1:-1]] += (f[order[2:], k] - f[order[:-2], k]) / span
    return distance


def _survivors(objectives: np.ndarray, violations: np.ndarray, size: int) -> np.ndarray:
    """Indices of the ``size`` best rows by constrained rank, then crowding distance."""
    ranks = constrained_ranks(objectives, violations)
    chosen: list[int] = []
    for rank in np.unique(ranks):
        members = np.flatnonzero(ranks == rank)
        if len(chosen) + len(members) <= size:
            chosen.extend(members.tolist())
            continue
        crowd = crowding_distance(objectives[members])
        order = np.argsort(-crowd, kind="stable")
        chosen.extend(members[order[: size - len(chosen)]].tolist())
        break
    return np.array(chosen, dtype=int)


@dataclass
class Archive:
    """Every distinct vector the search evaluated, with its predictions.

    Attributes:
        vectors: Shape ``(n, d)``.
        objectives: Minimized predicted objectives, shape ``(n, m)``.
        violations: Total predicted violations, shape ``(n,)``.
        keys: Identity of each row (the effective configuration).
    """

    vectors: np.ndarray
    objectives: np.ndarray
    violations: np.ndarray
    keys: list[Hashable]


class IntegerNSGA2:
    """NSGA-II over integer (index) genes, with real genes for continuous floats.

    Uniform crossover swaps genes between two parents; mutation resets an index gene to a
    uniform level (or, for long ordered ranges, moves it by a small Gaussian step) and moves a
    real gene by a Gaussian step of a tenth of its range.

    Args:
        encoder: Encoding of the search space.
        evaluate: Predicted objectives and violations of vectors.
        key: Identity of a vector; two vectors with the same key are the same candidate.
        population_size: Individuals per generation.
        n_generations: Generations after the initial population.
        crossover_prob: Probability that a child mixes two parents (else copies one).
        mutation_prob: Per-gene mutation probability; ``1 / d`` when ``None``.
        rng: Random generator.
    """

    def __init__(
        self,
        *,
        encoder: SearchSpaceEncoder,
        evaluate: Evaluate,
        key: Callable[[np.ndarray], Hashable],
        population_size: int = 40,
        n_generations: int = 20,
        crossover_prob: float = 0.9,
        mutation_prob: float | None = None,
        rng: np.random.Generator,
    ) -> None:
        self.encoder = encoder
        self.evaluate = evaluate
        self.key = key
        self.population_size = population_size
        self.n_generations = n_generations
        self.crossover_prob = crossover_prob
        d = max(len(encoder), 1)
        self.mutation_prob = 1.0 / d if mutation_prob is None else mutation_prob
        self.rng = rng
        self._vectors: list[np.ndarray] = []
        self._objectives: list[np.ndarray] = []
        self._violations: list[float] = []
        self._keys: list[Hashable] = []
        self._index: dict[Hashable, int] = {}

    # ---------------------------------------------------------------------------- archive
    def _add(self, vectors: np.ndarray) -> np.ndarray:
        """Evaluate the new vectors among ``vectors``; return the archive rows of all."""
        rows = []
        fresh_vectors, fresh_keys = [], []
        for vector in vectors:
            k = self.key(vector)
            if k in self._index:
                rows.append(self._index[k])
            elif k in fresh_keys:
                rows.append(len(self._keys) + fresh_keys.index(k))
            else:
                rows.append(len(self._keys) + len(fresh_keys))
                fresh_keys.append(k)
                fresh_vectors.append(vector)
        if fresh_vectors:
            f, v = self.evaluate(np.array(fresh_vectors))
            for vector, k, fi, vi in zip(fresh_vectors, fresh_keys, f, v, strict=True):
                self._index[k] = len(self._keys)
                self._keys.append(k)
                self._vectors.append(np.asarray(vector, dtype=float))
                self._objectives.append(np.asarray(fi, dtype=float))
                self._violations.append(float(vi))
        return np.array(sorted(set(rows)), dtype=int)

    def archive(self) -> Archive:
        """All distinct evaluated vectors so far."""
        d = len(self.encoder)
        m = len(self._objectives[0]) if self._objectives else 0
        return Archive(
            np.array(self._vectors).reshape(-1, d),
            np.array(self._objectives).reshape(-1, m),
            np.array(self._violations, dtype=float),
            list(self._keys),
        )

    # -------------------------------------------------------------------------- operators
    def _tournament(self, ranks: np.ndarray, crowd: np.ndarray, n: int) -> np.ndarray:
        a = self.rng.integers(len(ranks), size=n)
        b = self.rng.integers(len(ranks), size=n)
        better_a = (ranks[a] < ranks[b]) | ((ranks[a] == ranks[b]) & (crowd[a] >= crowd[b]))
        return np.where(better_a, a, b)

    def _mutate(self, child: np.ndarray) -> np.ndarray:
        enc = self.encoder
        mask = self.rng.random(len(child)) < self.mutation_prob
        for i in np.flatnonzero(mask):
            gene = enc.genes[i]
            if gene.is_index:
                if gene.is_categorical or gene.levels <= 16 or self.rng.random() < 0.5:
                    child[i] = self.rng.integers(gene.levels)
                else:
                    step = self.rng.normal(0.0, 0.1 * gene.levels)
                    child[i] = child[i] + (np.sign(step) * max(1.0, abs(round(step))))
            else:
                child[i] = child[i] + self.rng.normal(0.0, 0.1 * (gene.high - gene.low))
        return child

    def _offspring(self, parents: np.ndarray, ranks: np.ndarray, crowd: np.ndarray) -> np.ndarray:
        n = self.population_size
        first = self._tournament(ranks, crowd, n)
        second = self._tournament(ranks, crowd, n)
        children = []
        seen = set(self._index)
        for i, j in zip(first, second, strict=True):
            child = parents[i].copy()
            if self.rng.random() < self.crossover_prob:
                swap = self.rng.random(len(child)) < 0.5
                child[swap] = parents[j][swap]
            child = self.encoder.clip(self._mutate(child))
            for _ in range(5):  # prefer children not evaluated yet
                if self.key(child) not in seen:
                    break
                child = self.encoder.clip(self._mutate(child))
            seen.add(self.key(child))
            children.append(child)
        return np.array(children).reshape(-1, len(self.encoder))

    # -------------------------------------------------------------------------------- run
    def run(self, initial: np.ndarray) -> Archive:
        """Evolve from ``initial`` (completed with random vectors) and return the archive."""
        d = len(self.encoder)
        initial = np.asarray(initial, dtype=float).reshape(-1, d)
        rows = self._add(self.encoder.clip(initial)) if len(initial) else np.zeros(0, int)
        tries = 0
        while len(rows) < self.population_size and tries < 20:
            missing = self.population_size - len(rows)
            rows = np.union1d(rows, self._add(self.encoder.random(missing, self.rng)))
            tries += 1
        archive = self.archive()
        population = rows
        for _ in range(self.n_generations):
            f, v = archive.objectives[population], archive.violations[population]
            ranks = constrained_ranks(f, v)
            crowd = np.zeros(len(population))
            for rank in np.unique(ranks):
                members = ranks == rank
                crowd[members] = crowding_distance(f[members])
            children = self._offspring(archive.vectors[population], ranks, crowd)
            child_rows = self._add(children)
            archive = self.archive()
            pool = np.union1d(population, child_rows)
            keep = _survivors(
                archive.objectives[pool], archive.violations[pool], self.population_size
            )
            population = pool[keep]
        return self.archive()


def select_spread(
    objectives: np.ndarray,
    violations: np.ndarray,
    k: int,
    *,
    anchors: np.ndarray | None = None,
) -> np.ndarray:
    """Choose ``k`` rows, best fronts first, spread on a front by farthest-point selection.

    Fronts (constrained ranks) are taken whole while they fit; from the front that does not
    fit, the extremes of each objective come first, then, repeatedly, the row farthest (in
    objectives normalized to the front's range) from those already chosen and from the
    ``anchors`` (points already known, e.g. the objectives of the current Pareto trials), so
    that the choice also fills the gaps between known points.
    """
    f = np.asarray(objectives, dtype=float)
    n = len(f)
    if n <= k:
        return np.arange(n)
    ranks = constrained_ranks(f, violations)
    chosen: list[int] = []
    for rank in np.unique(ranks):
        members = np.flatnonzero(ranks == rank)
        if len(chosen) + len(members) <= k:
            chosen.extend(members.tolist())
            if len(chosen) == k:
                break
            continue
        front = f[members]
        low = front.min(axis=0)
        span = np.ptp(front, axis=0)
        span[span == 0] = 1.0
        z = (front - low) / span
        fixed = [z[0:0]]
        if anchors is not None and len(anchors):
            fixed.append((np.asarray(anchors, dtype=float).reshape(-1, f.shape[1]) - low) / span)
        fixed = np.vstack(fixed)
        picked: list[int] = []
        for obj in range(z.shape[1]):
            best = int(np.argmin(z[:, obj]))
            if best not in picked and len(chosen) + len(picked) < k:
                picked.append(best)
        while len(chosen) + len(picked) < k:
            reference = np.vstack([fixed, z[picked]])
            if len(reference) == 0:
                picked.append(0)
                continue
            dist = np.min(np.linalg.norm(z[:, None, :] - reference[None, :, :], axis=2), axis=1)
            dist[picked] = -1.0
            picked.append(int(np.argmax(dist)))
        chosen.extend(members[picked].tolist())
        break
    return np.array(chosen[:k], dtype=int)


def dominated_hypervolume(points: np.ndarray, reference: np.ndarray) -> float:
    """Hypervolume that minimized ``points`` dominate up to ``reference`` (Optuna's exact WFG).

    Points not strictly better than ``reference`` in every objective add nothing.
    """
    reference = np.asarray(reference, dtype=float)
    p = np.asarray(points, dtype=float).reshape(-1, len(reference))
    p = p[np.all(p < reference, axis=1)]
    if len(p) == 0:
        return 0.0
    if p.shape[1] == 1:
        return float(reference[0] - p[:, 0].min())
    return float(compute_hypervolume(p, reference))


def select_hypervolume(
    objectives: np.ndarray,
    violations: np.ndarray,
    k: int,
    *,
    front: np.ndarray,
    reference: np.ndarray,
) -> np.ndarray:
    """Choose ``k`` rows by greedy predicted hypervolume improvement, then by spread.

    Among the rows predicted feasible, the one adding most hypervolume to ``front`` (the
    objectives of the current feasible Pareto trials) and to the rows already chosen is taken,
    repeatedly, while some row adds any; the contribution of a point shrinks near points
    already chosen, so the choice spreads along the predicted front. The remaining places are
    filled by :func:`select_spread`, anchored at the front and the chosen rows.
    """
    f = np.asarray(objectives, dtype=float)
    v = np.asarray(violations, dtype=float)
    reference = np.asarray(reference, dtype=float)
    base = np.asarray(front, dtype=float).reshape(-1, f.shape[1])
    chosen: list[int] = []
    pool = [i for i in np.flatnonzero(v <= 0.0) if np.all(f[i] < reference)]
    if pool:
        # A candidate dominated by the front or by another candidate never adds the most, and
        # adds nothing once its dominator is chosen: only the non-dominated ones are weighed.
        on_front = nondominated_mask(np.vstack([base, f[pool]]))[len(base) :]
        pool = [i for i, keep in zip(pool, on_front, strict=True) if keep]
    current = dominated_hypervolume(base, reference)
    while pool and len(chosen) < k:
        points = np.vstack([base, f[chosen]]) if chosen else base
        gains = np.array(
            [dominated_hypervolume(np.vstack([points, f[i]]), reference) for i in pool]
        )
        # Gains equal up to rounding are ties, broken by the candidates' order.
        tolerance = 1e-12 * max(abs(current), 1.0)
        best = int(np.flatnonzero(gains >= gains.max() - tolerance)[0])
        if gains[best] - current <= tolerance:
            break
        chosen.append(pool.pop(best))
        current = float(gains[best])
    if len(chosen) < k:
        rest = np.setdiff1d(np.arange(len(f)), chosen)
        anchors = np.vstack([base, f[chosen]]) if chosen else base
        extra = select_spread(f[rest], v[rest], k - len(chosen), anchors=anchors)
        chosen.extend(rest[extra].tolist())
    return np.array(chosen[:k], dtype=int)
