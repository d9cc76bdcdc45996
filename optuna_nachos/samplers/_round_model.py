"""What a NACHOS round predicts: surrogates, exact costs and constraint violations of candidates."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from optuna_nachos.record import MAX_AVG_MACS, MAX_PARAMS, MAX_PEAK_MACS, MIN_ACCURACY, MIN_EXITS
from optuna_nachos.samplers._costs import (
    CandidateCosts,
    SpaceCosts,
    average_anchor,
)
from optuna_nachos.samplers._encoding import SearchSpaceEncoder
from optuna_nachos.samplers._settings import NachosSettings
from optuna_nachos.samplers._surrogates import Surrogate, fit_surrogate

_EXACT_WEIGHT = 1e3


@dataclass(frozen=True)
class Roles:
    """Which objective is accuracy and which is the average MACs (indices or ``None``)."""

    accuracy: int | None
    avg_macs: int | None


@dataclass
class RoundData:
    """Completed trials of a round, encoded."""

    vectors: np.ndarray
    values: np.ndarray
    constraints: list[dict[str, float]]
    skipped: np.ndarray
    costs: list[CandidateCosts] = field(default_factory=list)


@dataclass
class _Info:
    """What a round knows exactly about one vector."""

    identity: Hashable
    canonical: np.ndarray
    costs: CandidateCosts | None
    exact: float


class RoundModel:
    """Predictions of one round: surrogates, exact costs and constraint violations.

    Args:
        settings: The sampler's settings (surrogates, cross-validation, limits).
        space_costs: Exact costs of the EENN space, or ``None`` when the round does not use
            them (no space, or a relative search space without the space's parameters).
        encoder: Encoder of the relative search space.
        roles: Which objectives are accuracy and average MACs.
        signs: ``-1`` for maximized objectives, ``+1`` for minimized ones.
        data: The completed trials.
        metric_names: Names of the objectives (``objective{i}`` without them).
        seed: Seed of the surrogates.
    """

    def __init__(
        self,
        *,
        settings: NachosSettings,
        space_costs: SpaceCosts | None,
        encoder: SearchSpaceEncoder,
        roles: Roles,
        signs: np.ndarray,
        data: RoundData,
        metric_names: list[str] | None,
        seed: int,
    ) -> None:
        self.settings = settings
        self.encoder = encoder
        self.roles = roles
        self.signs = signs
        self.space_costs = space_costs
        self._infos: dict[Hashable, _Info] = {}
        n_obj = len(signs)
        names = metric_names or [f"objective{i}" for i in range(n_obj)]
        fit = dict(
            candidates=settings.surrogates,
            n_folds=settings.n_folds,
            n_repeats=settings.n_repeats,
            seed=seed,
        )

        x = self._features(data.vectors, data.costs)
        use = ~data.skipped if len(data.skipped) else np.zeros(0, dtype=bool)
        self.objective_surrogates: dict[int, Surrogate] = {}
        self.exit_position: Surrogate | None = None
        for i in range(n_obj):
            if self.space_costs is not None and i == roles.avg_macs:
                rows, target = [], []
                pairs = zip(data.costs, data.values[:, i], strict=True)
                for row, (cost, value) in enumerate(pairs):
                    if use[row] and cost.last > cost.first:
                        rows.append(row)
                        anchor, scale = self._anchor(cost)
                        value = float(np.clip(value, cost.first, cost.last))
                        target.append((value - anchor) / scale)
                self.exit_position = fit_surrogate(x[rows], np.array(target), **fit)
                continue
            self.objective_surrogates[i] = fit_surrogate(x[use], data.values[use, i], **fit)
        self.objective_names = {i: str(names[i]) for i in range(n_obj)}

        # Constraints: exact ones, those computed from the predicted objectives, and a
        # surrogate for every other constraint the trials carry.
        computed = set()
        if self.space_costs is not None:
            computed.add(MIN_EXITS)
            if settings.max_peak_macs is not None:
                computed.add(MAX_PEAK_MACS)
            if settings.max_params is not None:
                computed.add(MAX_PARAMS)
        self.predict_avg_macs = settings.max_avg_macs is not None and roles.avg_macs is not None
        self.predict_accuracy = settings.min_accuracy is not None and roles.accuracy is not None
        if self.predict_avg_macs:
            computed.add(MAX_AVG_MACS)
        if self.predict_accuracy:
            computed.add(MIN_ACCURACY)
        names_seen = sorted({name for c in data.constraints for name in c} - computed)
        self.constraint_surrogates: dict[str, tuple[Surrogate, float]] = {}
        for name in names_seen:
            rows = [r for r, c in enumerate(data.constraints) if name in c]
            y = np.array([data.constraints[r][name] for r in rows], dtype=float)
            scale = float(np.std(y)) or float(np.max(np.abs(y))) or 1.0
            self.constraint_surrogates[name] = (fit_surrogate(x[rows], y, **fit), scale)

    # ----------------------------------------------------------------------------- costs
    def _anchor(self, costs: CandidateCosts) -> tuple[float, float]:
        return average_anchor(costs, self.settings.max_avg_macs)

    def _info(self, vector: np.ndarray) -> _Info:
        """Identity, canonical vector, exact costs and static violation of ``vector``."""
        raw = self.encoder.key(vector)
        found = self._infos.get(raw)
        if found is not None:
            return found
        if self.space_costs is None:
            found = _Info(raw, np.asarray(vector, dtype=float), None, 0.0)
        else:
            params = self.encoder.decode(vector)
            costs = self.space_costs.costs(params)
            canonical = {name: costs.canonical.get(name, params[name]) for name in params}
            canonical_vector = self.encoder.encode(canonical)
            found = _Info(
                self.encoder.key(canonical_vector),
                canonical_vector,
                costs,
                self.space_costs.static_violation(costs),
            )
        self._infos[raw] = found
        return found

    def identity(self, vector: np.ndarray) -> Hashable:
        """Identity of the candidate (its configuration in a space, else its vector)."""
        return self._info(vector).identity

    def exact_violation(self, vector: np.ndarray) -> float:
        """Static violation of a candidate (0 without a space)."""
        return self._info(vector).exact

    def proposal_params(self, vector: np.ndarray) -> dict[str, Any]:
        """Parameters to propose for ``vector`` (the canonical form in a space)."""
        return self.encoder.decode(self._info(vector).canonical)

    def _features(self, vectors: np.ndarray, costs: Sequence[CandidateCosts] | None) -> np.ndarray:
        x = self.encoder.features(vectors)
        if self.space_costs is not None and costs is not None and len(costs):
            extra = np.array([self.space_costs.cost_features(c) for c in costs], dtype=float)
            x = np.hstack([x, extra])
        return x

    def novel(self, vectors: np.ndarray, known: np.ndarray, k: int) -> np.ndarray:
        """Indices of up to ``k`` distinct rows of ``vectors`` farthest from ``known`` ones.

        Greedy farthest-point selection on standardized features: with a space, those computed
        from the exact costs (which exits exist, what they cost, which fit in the budget), so
        that exploration tries other exit structures; otherwise the parameters' features.
        """
        unique: dict[Hashable, int] = {}
        for i, vector in enumerate(vectors):
            unique.setdefault(self.identity(vector), i)
        rows = np.array(list(unique.values()), dtype=int)
        if len(rows) == 0 or k <= 0:
            return np.zeros(0, dtype=int)
        x = self._novelty_features(vectors[rows])
        seen = self._novelty_features(known) if len(known) else np.zeros((0, x.shape[1]))
        basis = seen if len(seen) > 1 else x
        mean, std = basis.mean(axis=0), basis.std(axis=0)
        std[std == 0] = 1.0
        x, seen = (x - mean) / std, (seen - mean) / std
        picked: list[int] = []
        for _ in range(min(k, len(rows))):
            reference = np.vstack([seen, x[picked]])
            if len(reference):
                distance = np.min(
                    np.linalg.norm(x[:, None, :] - reference[None, :, :], axis=2), axis=1
                )
            else:
                distance = np.ones(len(x))
            distance[picked] = -np.inf
            picked.append(int(np.argmax(distance)))
        return rows[picked]

    def _novelty_features(self, vectors: np.ndarray) -> np.ndarray:
        if self.space_costs is None:
            return self.encoder.features(vectors)
        return np.array(
            [self.space_costs.cost_features(self._info(v).costs) for v in vectors], dtype=float
        )

    def random_candidates(
        self, n: int, rng: np.random.Generator, taken: set[Hashable]
    ) -> np.ndarray:
        """Up to ``n`` random vectors, new and (with a space) statically feasible."""
        out: list[np.ndarray] = []
        seen = set(taken)
        for _ in range(50):
            if len(out) >= n:
                break
            batch = self.encoder.random(max(4 * (n - len(out)), 16), rng)
            for vector in batch:
                info = self._info(vector)
                if info.identity in seen or info.exact > 0.0:
                    continue
                seen.add(info.identity)
                out.append(vector)
                if len(out) >= n:
                    break
        return np.array(out, dtype=float).reshape(-1, len(self.encoder))

    # ------------------------------------------------------------------------ prediction
    def evaluate(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Minimized predicted objectives and total violations of ``vectors``."""
        vectors = np.atleast_2d(np.asarray(vectors, dtype=float))
        n = len(vectors)
        infos = [self._info(v) for v in vectors]
        canonical = np.array([info.canonical for info in infos]).reshape(n, -1)
        exact = np.array([info.exact for info in infos], dtype=float)
        costs = None if self.space_costs is None else [info.costs for info in infos]
        x = self._features(canonical, costs)
        predictions = np.zeros((n, len(self.signs)))
        for i, surrogate in self.objective_surrogates.items():
            predictions[:, i] = surrogate.predict(x)
        if self.exit_position is not None and costs is not None:
            anchors = np.array([self._anchor(c) for c in costs]).reshape(n, 2)
            first = np.array([c.first for c in costs])
            last = np.array([c.last for c in costs])
            average = anchors[:, 0] + self.exit_position.predict(x) * anchors[:, 1]
            predictions[:, self.roles.avg_macs] = np.clip(average, first, last)
        violation = np.zeros(n)
        if self.predict_avg_macs:
            budget = self.settings.max_avg_macs
            violation += np.maximum(0.0, predictions[:, self.roles.avg_macs] - budget) / budget
        if self.predict_accuracy:
            floor = self.settings.min_accuracy
            violation += np.maximum(0.0, floor - predictions[:, self.roles.accuracy]) / max(
                abs(floor), 1e-12
            )
        for surrogate, scale in self.constraint_surrogates.values():
            violation += np.maximum(0.0, surrogate.predict(x)) / scale
        violation = violation + _EXACT_WEIGHT * exact
        return predictions * self.signs, violation

    def uninformed_reason(self) -> str | None:
        """Why the round's predictions cannot be trusted, or ``None`` when they can.

        They cannot when no surrogate of a predicted objective beats chance (exact costs
        aside): every objective surrogate and the exit-position surrogate is uninformative.
        """
        surrogates = dict(self.objective_surrogates.items())
        named = {self.objective_names[i]: s for i, s in surrogates.items()}
        if self.exit_position is not None:
            named["exit_position"] = self.exit_position
        if not named or any(s.informative for s in named.values()):
            return None
        taus = ", ".join(
            f"{name}: {s.name} tau {'n/a' if s.tau_mean is None else f'{s.tau_mean:.3f}'}"
            for name, s in named.items()
        )
        return f"no surrogate ranks held-out trials better than chance ({taus})"

    def diagnostics(self) -> dict[str, Any]:
        """Plain JSON summary of the surrogates of the round."""
        surrogates = {
            self.objective_names[i]: s.summary() for i, s in self.objective_surrogates.items()
        }
        if self.exit_position is not None:
            surrogates["exit_position"] = self.exit_position.summary()
        for name, (surrogate, _) in self.constraint_surrogates.items():
            surrogates[f"constraint:{name}"] = surrogate.summary()
        return {"surrogates": surrogates, "space_costs": self.space_costs is not None}
