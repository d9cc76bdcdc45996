"""One NACHOS round: fit the surrogates on the completed trials and propose a batch."""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from optuna_nachos.record import SKIP_REASON_ATTR
from optuna_nachos.samplers._costs import SpaceCosts
from optuna_nachos.samplers._encoding import SearchSpaceEncoder
from optuna_nachos.samplers._nsga2 import (
    IntegerNSGA2,
    constrained_ranks,
    select_hypervolume,
    select_spread,
)
from optuna_nachos.samplers._round_model import Roles, RoundData, RoundModel
from optuna_nachos.samplers._settings import NachosSettings

SKIPPED_TRAINING_ATTR = SKIP_REASON_ATTR
"""Trial user attribute of candidates an objective did not train (their values are not used to
fit the objective surrogates); the record's name."""


def canonical_params(
    space_costs: SpaceCosts, encoder: SearchSpaceEncoder, params: Mapping[str, Any]
) -> dict[str, Any]:
    """``params`` in the space's canonical form, restricted to the encoded parameters."""
    canonical = space_costs.canonical_params(params)
    return {name: canonical.get(name, params[name]) for name in encoder.names}


def objective_roles(
    directions: Sequence[StudyDirection],
    metric_names: Sequence[str] | None,
    settings: NachosSettings,
    active: bool,
) -> Roles:
    """Which objective is accuracy and which the average MACs.

    The indices given in the settings, else the objective whose metric name contains
    ``"macs"`` (``"acc"``), else, for a (maximize, minimize) study searched with the space's
    exact costs (``active``), the minimized (maximized) one.

    Raises:
        ValueError: If a given index is out of range, or both roles fall on one objective.
    """
    directions = list(directions)
    n = len(directions)
    names = [str(name).lower() for name in (metric_names or [""] * n)]
    accuracy, avg_macs = settings.accuracy_objective, settings.avg_macs_objective
    for given, what in ((accuracy, "accuracy_objective"), (avg_macs, "avg_macs_objective")):
        if given is not None and not 0 <= given < n:
            raise ValueError(f"{what}={given} is out of range for a {n}-objective study.")
    if avg_macs is None:
        hits = [i for i, name in enumerate(names) if "macs" in name]
        if hits:
            avg_macs = hits[0]
        elif active and directions == [StudyDirection.MAXIMIZE, StudyDirection.MINIMIZE]:
            avg_macs = 1
    if accuracy is None:
        hits = [i for i, name in enumerate(names) if "acc" in name and i != avg_macs]
        if hits:
            accuracy = hits[0]
        elif (
            n == 2 and avg_macs is not None and directions[1 - avg_macs] == StudyDirection.MAXIMIZE
        ):
            accuracy = 1 - avg_macs
    if accuracy is not None and accuracy == avg_macs:
        raise ValueError("accuracy_objective and avg_macs_objective must differ.")
    return Roles(accuracy, avg_macs)


def collect_trials(
    trials: Sequence[FrozenTrial],
    encoder: SearchSpaceEncoder,
    space_costs: SpaceCosts | None,
    n_objectives: int,
) -> RoundData:
    """The completed trials with finite values whose parameters the encoder covers, encoded
    (in canonical form, with their exact costs, when ``space_costs`` is given)."""
    vectors, values, constraints, skipped, costs = [], [], [], [], []
    for t in trials:
        if t.state != TrialState.COMPLETE or t.values is None:
            continue
        if len(t.values) != n_objectives or not all(math.isfinite(v) for v in t.values):
            continue
        vector = encoder.try_encode(t.params)
        if vector is None:
            continue
        if space_costs is not None:
            try:
                params = canonical_params(space_costs, encoder, dict(t.params))
                costs.append(space_costs.costs(params))
            except (ValueError, KeyError):
                continue
            vector = encoder.encode(params)
        vectors.append(vector)
        values.append(list(t.values))
        constraints.append(dict(t.constraints))
        skipped.append(SKIPPED_TRAINING_ATTR in t.user_attrs)
    d = len(encoder)
    return RoundData(
        np.array(vectors, dtype=float).reshape(-1, d),
        np.array(values, dtype=float).reshape(-1, n_objectives),
        constraints,
        np.array(skipped, dtype=bool),
        costs,
    )


def propose_round(
    *,
    settings: NachosSettings,
    space_costs: SpaceCosts | None,
    encoder: SearchSpaceEncoder,
    directions: Sequence[StudyDirection],
    metric_names: list[str] | None,
    roles: Roles,
    trials: Sequence[FrozenTrial],
    taken: set[Hashable],
    seed: int,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The proposals of a round and its diagnostics.

    Args:
        settings: The sampler's settings.
        space_costs: Exact costs of the EENN space, or ``None`` when the round does not use
            them.
        encoder: Encoder of the relative search space.
        directions: Directions of the study's objectives.
        metric_names: Names of the study's objectives, if set.
        roles: Which objectives are accuracy and average MACs (see :func:`objective_roles`).
        trials: Every trial of the study (the completed ones train the surrogates).
        taken: Identities of the configurations no proposal may repeat.
        seed: Seed of the round (surrogates, NSGA-II, exploration).

    Returns:
        Up to ``settings.batch_size`` new parameter sets, and the round's plain JSON
        diagnostics (surrogates, candidates, predicted objectives of the proposals).
    """
    rng = np.random.default_rng(seed)
    directions = list(directions)
    n_obj = len(directions)
    signs = np.array([-1.0 if d == StudyDirection.MAXIMIZE else 1.0 for d in directions])
    data = collect_trials(trials, encoder, space_costs, n_obj)
    model = RoundModel(
        settings=settings,
        space_costs=space_costs,
        encoder=encoder,
        roles=roles,
        signs=signs,
        data=data,
        metric_names=metric_names,
        seed=seed,
    )
    uninformed = model.uninformed_reason()
    if uninformed is not None:
        return _explore(settings, model, data, taken, rng, seed, uninformed)

    # Seeds of the NSGA-II: the completed trials that are not dominated (true values,
    # feasibility from their stored constraints).
    feasible_violation = np.array(
        [sum(max(0.0, v) for v in c.values()) for c in data.constraints], dtype=float
    )
    initial = np.zeros((0, len(encoder)))
    anchors = np.zeros((0, n_obj))
    if len(data.vectors):
        ranks = constrained_ranks(data.values * signs, feasible_violation)
        front = np.flatnonzero(ranks == 0)
        if feasible_violation[front].max(initial=0.0) <= 0.0:
            anchors = data.values[front] * signs
        if len(front) > settings.population_size // 2:
            front = rng.choice(front, size=settings.population_size // 2, replace=False)
        initial = data.vectors[front]
    fill = model.random_candidates(settings.population_size - len(initial), rng, taken)
    initial = np.vstack([initial, fill]) if len(fill) else initial

    nsga = IntegerNSGA2(
        encoder=encoder,
        evaluate=model.evaluate,
        key=model.identity,
        population_size=settings.population_size,
        n_generations=settings.n_generations,
        rng=rng,
    )
    archive = nsga.run(initial)
    usable = [
        i
        for i, k in enumerate(archive.keys)
        if k not in taken and model.exact_violation(archive.vectors[i]) <= 0.0
    ]
    vectors = archive.vectors[usable]
    objectives = archive.objectives[usable]
    violations = archive.violations[usable]
    if len(usable) < settings.batch_size:
        extra = model.random_candidates(
            settings.batch_size - len(usable), rng, taken | {archive.keys[i] for i in usable}
        )
        if len(extra):
            f, v = model.evaluate(extra)
            vectors = np.vstack([vectors, extra])
            objectives = np.vstack([objectives, f])
            violations = np.concatenate([violations, v])
    n_explore = settings.n_explore
    n_main = settings.batch_size - n_explore
    if n_main == 0:
        chosen = np.zeros(0, dtype=int)
    elif settings.selection == "hypervolume" and len(objectives):
        reference = _reference_point(settings, roles, signs, anchors, objectives, violations)
        chosen = select_hypervolume(
            objectives, violations, n_main, front=anchors, reference=reference
        )
    else:
        chosen = select_spread(objectives, violations, n_main, anchors=anchors)
    if n_explore:
        # Exploration: new, statically feasible candidates unlike every completed trial.
        picked = {model.identity(vectors[i]) for i in chosen}
        rest = np.array([i for i in range(len(vectors)) if i not in set(chosen)], dtype=int)
        pool = np.vstack(
            [
                vectors[rest],
                model.random_candidates(8 * settings.population_size, rng, taken | picked),
            ]
        )
        novel = model.novel(pool, data.vectors, n_explore)
        if len(novel):
            f, v = model.evaluate(pool[novel])
            chosen = np.concatenate([chosen, len(vectors) + np.arange(len(novel))])
            vectors = np.vstack([vectors, pool[novel]])
            objectives = np.vstack([objectives, f])
    proposals = _distinct_params(model, vectors[chosen], taken)
    diagnostics = {
        **model.diagnostics(),
        "n_candidates": len(archive.keys),
        "n_predicted_feasible": int(np.sum(archive.violations <= 0.0)),
        "predicted": [[round(float(x), 6) for x in objectives[i] * signs] for i in chosen],
        "seed": seed,
    }
    return proposals, diagnostics


def _distinct_params(
    model: RoundModel, vectors: np.ndarray, taken: set[Hashable]
) -> list[dict[str, Any]]:
    """The proposal parameters of ``vectors``, skipping taken and repeated candidates."""
    proposals = []
    seen: set[Hashable] = set()
    for vector in vectors:
        k = model.identity(vector)
        if k in seen or k in taken:
            continue
        seen.add(k)
        proposals.append(model.proposal_params(vector))
    return proposals


def _explore(
    settings: NachosSettings,
    model: RoundModel,
    data: RoundData,
    taken: set[Hashable],
    rng: np.random.Generator,
    seed: int,
    reason: str,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A round of exploration only: new, statically feasible candidates, space-filling
    (farthest from every completed trial and from each other)."""
    pool = model.random_candidates(8 * settings.population_size, rng, taken)
    chosen = model.novel(pool, data.vectors, settings.batch_size)
    diagnostics = {
        **model.diagnostics(),
        "fallback": "exploration",
        "fallback_reason": reason,
        "n_candidates": len(pool),
        "n_predicted_feasible": 0,
        "predicted": [],
        "seed": seed,
    }
    return _distinct_params(model, pool[chosen], taken), diagnostics


def _reference_point(
    settings: NachosSettings,
    roles: Roles,
    signs: np.ndarray,
    front: np.ndarray,
    objectives: np.ndarray,
    violations: np.ndarray,
) -> np.ndarray:
    """Reference point of the hypervolume, in minimized objectives.

    The constraint bounds where they are known (``min_accuracy``, ``max_avg_macs``), else the
    worst value of the front and the predicted-feasible candidates plus a tenth of their range.
    """
    points = np.vstack([front, objectives[violations <= 0.0]])
    if len(points) == 0:
        points = objectives
    worst, best = points.max(axis=0), points.min(axis=0)
    reference = worst + 0.1 * np.where(worst > best, worst - best, 1.0)
    if roles.accuracy is not None and settings.min_accuracy is not None:
        reference[roles.accuracy] = signs[roles.accuracy] * settings.min_accuracy
    if roles.avg_macs is not None and settings.max_avg_macs is not None:
        reference[roles.avg_macs] = signs[roles.avg_macs] * settings.max_avg_macs
    return reference
