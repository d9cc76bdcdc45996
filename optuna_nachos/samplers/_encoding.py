"""Integer (and real) vector encoding of a flat Optuna search space.

Every parameter of the relative search space becomes one gene:

* a categorical parameter: the index of its choice;
* an integer parameter, or a float parameter with a ``step``: the index of its value on the grid
  ``low, low + step, ...`` (for ``log=True`` integers, every integer of the range);
* a float parameter without a step: a real gene, the value itself (its logarithm for
  ``log=True``).

The genes are what the integer NSGA-II mutates and crosses over; the *features* derived from
them (numeric choice values, one-hot codes of unordered choices) are what the surrogates see.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

_KEY_DIGITS = 12


@dataclass(frozen=True)
class Gene:
    """One encoded parameter.

    Attributes:
        name: Parameter name.
        distribution: Its Optuna distribution.
        levels: Number of values of an index gene; ``0`` for a real gene.
        low: Lowest gene value (0 for index genes; the (log) lower bound for real genes).
        high: Highest gene value (``levels - 1`` for index genes).
    """

    name: str
    distribution: BaseDistribution
    levels: int
    low: float
    high: float

    @property
    def is_index(self) -> bool:
        """Whether the gene takes the integer values ``0 .. levels - 1``."""
        return self.levels > 0

    @property
    def is_categorical(self) -> bool:
        """Whether the gene indexes the choices of a categorical parameter."""
        return isinstance(self.distribution, CategoricalDistribution)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _make_gene(name: str, distribution: BaseDistribution) -> Gene:
    if isinstance(distribution, CategoricalDistribution):
        n = len(distribution.choices)
        return Gene(name, distribution, n, 0.0, float(n - 1))
    if isinstance(distribution, IntDistribution):
        n = (distribution.high - distribution.low) // distribution.step + 1
        return Gene(name, distribution, int(n), 0.0, float(n - 1))
    if isinstance(distribution, FloatDistribution):
        if distribution.step is not None:
            n = int(round((distribution.high - distribution.low) / distribution.step)) + 1
            return Gene(name, distribution, n, 0.0, float(n - 1))
        if distribution.log:
            return Gene(
                name, distribution, 0, math.log(distribution.low), math.log(distribution.high)
            )
        return Gene(name, distribution, 0, float(distribution.low), float(distribution.high))
    raise TypeError(f"unsupported distribution {distribution!r} for parameter {name!r}.")


class SearchSpaceEncoder:
    """Encodes parameter dictionaries of a flat search space as vectors, and back.

    Args:
        search_space: Parameter names and distributions (the relative search space).
    """

    def __init__(self, search_space: Mapping[str, BaseDistribution]) -> None:
        self.search_space = dict(search_space)
        self.genes: tuple[Gene, ...] = tuple(
            _make_gene(name, dist) for name, dist in self.search_space.items()
        )
        self.names: tuple[str, ...] = tuple(g.name for g in self.genes)
        self.index_mask = np.array([g.is_index for g in self.genes], dtype=bool)
        self._all_index = bool(self.index_mask.all())
        self.lows = np.array([g.low for g in self.genes], dtype=float)
        self.highs = np.array([g.high for g in self.genes], dtype=float)
        self._feature_plan = [self._plan(g) for g in self.genes]

    def __len__(self) -> int:
        return len(self.genes)

    # ----------------------------------------------------------------------------- vectors
    def encode(self, params: Mapping[str, Any]) -> np.ndarray:
        """The gene vector of ``params`` (every name of the space must be present).

        Raises:
            KeyError: If a parameter is missing.
            ValueError: If a value lies outside its distribution.
        """
        out = np.empty(len(self.genes), dtype=float)
        for i, gene in enumerate(self.genes):
            value = params[gene.name]
            dist = gene.distribution
            if isinstance(dist, CategoricalDistribution):
                out[i] = dist.to_internal_repr(value)
            elif isinstance(dist, IntDistribution):
                if not dist.low <= value <= dist.high:
                    raise ValueError(f"{gene.name}={value!r} lies outside {dist}.")
                out[i] = round((value - dist.low) / dist.step)
            elif isinstance(dist, FloatDistribution) and dist.step is not None:
                if not dist.low - 1e-12 <= value <= dist.high + 1e-12:
                    raise ValueError(f"{gene.name}={value!r} lies outside {dist}.")
                out[i] = round((value - dist.low) / dist.step)
            else:
                if not dist.low <= value <= dist.high:
                    raise ValueError(f"{gene.name}={value!r} lies outside {dist}.")
                out[i] = math.log(value) if dist.log else float(value)
        return out

    def try_encode(self, params: Mapping[str, Any]) -> np.ndarray | None:
        """Like :meth:`encode`, but ``None`` for incomplete or out-of-range parameters."""
        try:
            return self.encode(params)
        except (KeyError, ValueError, TypeError):
            return None

    def decode(self, vector: Sequence[float] | np.ndarray) -> dict[str, Any]:
        """The parameters (plain Python values, within their distributions) of a vector."""
        params: dict[str, Any] = {}
        for value, gene in zip(np.asarray(vector, dtype=float), self.genes, strict=True):
            dist = gene.distribution
            if gene.is_index:
                index = int(min(max(round(float(value)), 0), gene.levels - 1))
                if isinstance(dist, CategoricalDistribution):
                    params[gene.name] = dist.choices[index]
                elif isinstance(dist, IntDistribution):
                    params[gene.name] = int(dist.low + index * dist.step)
                else:
                    assert isinstance(dist, FloatDistribution) and dist.step is not None
                    params[gene.name] = float(min(dist.low + index * dist.step, dist.high))
            else:
                assert isinstance(dist, FloatDistribution)
                real = min(max(float(value), gene.low), gene.high)
                params[gene.name] = float(
                    min(max(math.exp(real) if dist.log else real, dist.low), dist.high)
                )
        return params

    def clip(self, vectors: np.ndarray) -> np.ndarray:
        """Vectors clipped to the gene bounds, index genes rounded."""
        out = np.clip(np.asarray(vectors, dtype=float), self.lows, self.highs)
        out[..., self.index_mask] = np.round(out[..., self.index_mask])
        return out

    def random(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` vectors drawn uniformly (per gene) from the space."""
        out = rng.uniform(self.lows, self.highs + self.index_mask, size=(n, len(self.genes)))
        out[:, self.index_mask] = np.floor(out[:, self.index_mask])
        return self.clip(out)

    def key(self, vector: Sequence[float] | np.ndarray) -> tuple:
        """A hashable identity of a vector (real genes rounded to 12 significant digits)."""
        return tuple(
            int(round(v)) if is_index else float(f"{v:.{_KEY_DIGITS}g}")
            for v, is_index in zip(np.asarray(vector, dtype=float), self.index_mask, strict=True)
        )

    # ---------------------------------------------------------------------------- features
    @staticmethod
    def _plan(gene: Gene) -> tuple[str, Any]:
        dist = gene.distribution
        if isinstance(dist, CategoricalDistribution):
            choices = dist.choices
            if all(isinstance(c, bool) for c in choices) or len(choices) <= 2:
                return "index", None
            if all(_is_number(c) for c in choices):
                return "values", np.array([float(c) for c in choices])
            return "onehot", len(choices)
        if isinstance(dist, IntDistribution):
            values = dist.low + dist.step * np.arange(gene.levels, dtype=float)
            return "values", np.log(values) if dist.log else values
        if isinstance(dist, FloatDistribution) and dist.step is not None:
            return "values", dist.low + dist.step * np.arange(gene.levels, dtype=float)
        return "real", None

    @property
    def num_features(self) -> int:
        """Number of surrogate features of a vector."""
        return sum(plan[1] if plan[0] == "onehot" else 1 for plan in self._feature_plan)

    def features(self, vectors: np.ndarray) -> np.ndarray:
        """Surrogate features of ``vectors`` (shape ``(n, len(self))``).

        Ordered numeric choices give their value, unordered choices a one-hot code, booleans
        and two-choice parameters their index, numbers their value (log for ``log=True``).
        """
        vectors = np.atleast_2d(np.asarray(vectors, dtype=float))
        columns: list[np.ndarray] = []
        for i, (kind, data) in enumerate(self._feature_plan):
            column = vectors[:, i]
            if kind in ("index", "real"):
                columns.append(column[:, None])
            elif kind == "values":
                index = np.clip(np.round(column).astype(int), 0, len(data) - 1)
                columns.append(data[index][:, None])
            else:
                index = np.clip(np.round(column).astype(int), 0, data - 1)
                columns.append(np.eye(data)[index])
        if not columns:
            return np.zeros((len(vectors), 0))
        return np.hstack(columns)

    def signature(self) -> str:
        """A text identity of the search space (names and distributions)."""
        return ";".join(f"{g.name}={g.distribution!r}" for g in self.genes)
