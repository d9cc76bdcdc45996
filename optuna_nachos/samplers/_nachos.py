"""The NACHOS surrogate-assisted sampler."""

from __future__ import annotations

import hashlib
import math
import random
import threading
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.samplers._lazy_random_state import LazyRandomState
from optuna.search_space import intersection_search_space
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from optuna_nachos._logging import get_logger
from optuna_nachos.samplers._costs import (
    MAX_AVG_MACS,
    MAX_PARAMS,
    MAX_PEAK_MACS,
    MIN_ACCURACY,
    MIN_EXITS,
    CandidateCosts,
    SpaceCosts,
    average_anchor,
)
from optuna_nachos.samplers._encoding import SearchSpaceEncoder
from optuna_nachos.samplers._nsga2 import (
    IntegerNSGA2,
    constrained_ranks,
    select_hypervolume,
    select_spread,
)
from optuna_nachos.samplers._surrogates import SURROGATE_NAMES, Surrogate, fit_surrogate

_logger = get_logger(__name__)

PROPOSAL_ATTR = "nachos:proposal"
"""Trial system attribute holding the proposal a trial claimed: ``{"round", "index", "params"}``."""

ROUND_ATTR_PREFIX = "nachos:round:"
"""Prefix of the study system attributes holding each round's proposals and diagnostics."""

ROUNDS_USER_ATTR = "nachos_rounds"
"""Study user attribute listing every round's diagnostics."""

SKIPPED_TRAINING_ATTR = "skipped_training"
"""Trial user attribute of candidates an objective did not train (their values are not used to
fit the objective surrogates)."""

_FIXED_PARAMS_ATTR = "fixed_params"
_EXACT_WEIGHT = 1e3
_MAX_CLAIM_ATTEMPTS = 8


def _round_key(index: int) -> str:
    return f"{ROUND_ATTR_PREFIX}{index:06d}"


@dataclass
class _Roles:
    """Which objective is accuracy and which is the average MACs (indices or ``None``)."""

    accuracy: int | None
    avg_macs: int | None


@dataclass
class _Info:
    """What a round knows exactly about one vector."""

    identity: Hashable
    canonical: np.ndarray
    costs: CandidateCosts | None
    exact: float


@dataclass
class _Data:
    """Completed trials of a round, encoded."""

    vectors: np.ndarray
    values: np.ndarray
    constraints: list[dict[str, float]]
    skipped: np.ndarray
    costs: list[CandidateCosts] = field(default_factory=list)


class NachosSampler(BaseSampler):
    """Surrogate-assisted sampler of NACHOS: random start, then rounds of predicted candidates.

    The first ``n_startup_trials`` trials are sampled at random (with a ``space``, among the
    configurations that meet the exact static constraints). Then, every ``batch_size``
    trials, a *round*:

    1. the completed trials are encoded as integer vectors over the relative search space
       (choice index of a categorical parameter, grid index of an integer or stepped float,
       the value of a continuous float);
    2. one surrogate per predicted quantity is fitted: kernel ridge regression with an RBF
       kernel, a random forest and an MLP are compared by a pooled cross-validated Kendall
       tau (every trial's out-of-fold prediction, averaged over ``n_repeats`` shuffles, ranked
       against its value in one tau) and the best is refitted on all trials. When no
       surrogate of an objective ranks held-out trials better than chance (pooled tau not
       significantly above zero, see :func:`fit_surrogate`), the round does not trust them:
       its proposals are exploration only (statically feasible candidates farthest from
       every completed trial) and its diagnostics say ``"fallback": "exploration"`` with the
       reason;
    3. an integer NSGA-II (``population_size`` individuals, ``n_generations`` generations,
       seeded with the current non-dominated trials) searches the predicted objectives under
       constrained domination (feasible first, then by total predicted violation);
    4. ``batch_size`` well-spread candidates of the predicted front (see ``selection``) that
       duplicate no earlier trial or proposal become the round's proposals, which the next
       trials take in turn.

    With an EENN ``space`` (:class:`~optuna_nachos.space.MobileNetV3Space`, or
    :class:`~optuna_nachos.space.BackboneExitSpace` for exits on your own backbone), whatever
    can be computed exactly is: "predict what you must, compute what you can". The per-exit
    MACs of a candidate come from the analytic cost model (:func:`optuna_nachos.cost.exit_macs`,
    or the space's own fvcore counts); only
    the unknown exit ratios are predicted, as the position of the average cost relative to
    exactly computed anchors: ``avg = anchor + t * scale``, where the anchor is the deepest exit
    whose cost fits in ``max_avg_macs`` (all samples leaving there) and the scale the headroom
    up to the budget (without a budget: the first exit and the spread ``last - first``, so that
    ``t = (avg - first) / (last - first)``); the prediction is clipped to ``[first, last]``.
    The static constraints are exact: a candidate whose first exit costs more than
    ``max_avg_macs``, with too few early exits, or beyond ``max_peak_macs`` / ``max_params`` is
    never proposed (nor, with ``feasible_startup``, sampled in the random start). The surrogates
    also see features computed from the exact costs (log costs of every exit, which exit is the
    deepest within the budget, ...). Trials with the user attribute ``skipped_training`` (set
    by objectives that do not train statically infeasible networks) do not train the
    objective surrogates. Duplicates are detected on the configuration: two parameter sets that
    build the same network (differing only in unused layers) are the same candidate.

    Without a space (any flat search space that Optuna infers), every objective and every
    constraint stored with :meth:`optuna.trial.Trial.set_constraint` gets its own surrogate.
    Parameters outside the relative search space are sampled by ``independent_sampler``.

    Proposals are shared through the storage: each round is a study system attribute
    (``nachos:round:NNNNNN``) and a trial claims the next proposal that no other trial has
    taken by writing the trial system attribute ``nachos:proposal``; a claim that races with
    another process is detected on the storage and retried, so several workers (threads with
    ``n_jobs``, processes or machines on one storage) neither repeat nor lose proposals.
    Each round's diagnostics (surrogates chosen and their Kendall tau, time, candidates) are
    logged at INFO and kept in the study user attribute ``nachos_rounds``.

    Enqueued trials (:meth:`optuna.study.Study.enqueue_trial`) keep their fixed parameters;
    trials whose relative parameters are all fixed claim no proposal, and proposals never
    duplicate an enqueued configuration.

    Example:
        .. code-block:: python

            import optuna
            import optuna_nachos as nachos
            from optuna_nachos.samplers import NachosSampler
            from optuna_nachos.space import MobileNetV3Space

            space = MobileNetV3Space()
            sampler = NachosSampler(
                space=space, num_classes=10, max_avg_macs=2.7e6, min_accuracy=0.65, seed=0
            )
            study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
            study.set_metric_names(["accuracy", "avg_macs"])

    Args:
        space: An EENN search space whose parameters the objective suggests (through
            ``suggest_eenn`` or ``space.suggest``). ``None`` treats the search space
            generically (surrogates for every objective and constraint).
        num_classes: Number of classes of the task (sizes the heads, for the exact costs).
        in_channels: Channels of the input images.
        cost_convention: Cost convention of :func:`optuna_nachos.cost.exit_macs`
            (``"nachos"`` counts the heads of the exits a sample passed; ``"reference"`` not).
        max_avg_macs: Budget of average MACs. Candidates whose predicted average exceeds it are
            infeasible under constrained domination; with a ``space``, candidates whose first
            exit already exceeds it are never proposed.
        min_accuracy: Floor of the accuracy objective (same unit as the objective values);
            candidates predicted below it are infeasible under constrained domination.
        max_peak_macs: Limit of the final exit's MACs (exact; needs a ``space``).
        max_params: Limit of the network's parameters (exact; needs a ``space``).
        accuracy_objective: Index of the accuracy objective. By default the objective whose
            metric name contains ``"acc"``, or the maximized one of a (maximize, minimize)
            study searched with a ``space``.
        avg_macs_objective: Index of the average-MACs objective. By default the objective whose
            metric name contains ``"macs"``, or the minimized one of a (maximize, minimize)
            study searched with a ``space``.
        n_startup_trials: Completed trials sampled at random before the first round (100 in
            the paper; fewer suit small budgets).
        feasible_startup: With a ``space``, sample the random start uniformly among the
            configurations that meet the exact static constraints (first exit within
            ``max_avg_macs``, enough early exits, ``max_peak_macs``, ``max_params``), so that no
            startup trial is spent on a network known to be inadmissible. ``False`` samples the
            whole space, as the reference does.
        batch_size: Proposals per round (K = 8 in the paper).
        population_size: NSGA-II population (40 in the paper).
        n_generations: NSGA-II generations per round (20 in the paper).
        selection: How the ``batch_size`` proposals are picked among the new candidates of
            the NSGA-II, best constrained fronts first. ``"hypervolume"``: greedily, the
            candidate predicted to add the most hypervolume to the current admissible front and
            to the candidates already picked (which spreads the picks along the predicted
            front; reference point at ``min_accuracy`` and ``max_avg_macs`` where set), then,
            once no candidate is predicted to add any, by spread. ``"spread"``: the extremes of
            the predicted front, then farthest-point selection in normalized objectives, away
            from the picks and from the current Pareto trials.
        exploration: Fraction of each round's proposals (rounded; 1 of 8 by default) chosen
            to explore instead: new candidates that meet the exact static constraints and lie
            farthest from every completed trial, in the features computed from the exact costs
            with a ``space`` (other exit structures), in the parameters' features otherwise.
            It keeps the search from settling on the region the surrogates know. ``0`` turns
            it off (the reference has none).
        surrogates: Surrogate families compared each round, among ``"rbf"`` (kernel ridge
            regression with an RBF kernel), ``"trees"`` (random forest) and ``"mlp"``.
        n_folds: Folds of the cross-validation that chooses the surrogate.
        n_repeats: Shuffled repeats of that cross-validation; the out-of-fold predictions
            are averaged over them and one Kendall tau is computed over all trials.
        seed: Seed of the random start, the surrogates and the NSGA-II. With one worker, a seed
            gives the same parameters trial by trial.
        independent_sampler: Sampler of the parameters outside the relative search space and of
            the random start; :class:`~optuna.samplers.RandomSampler` by default.
        warn_independent_sampling: Log a warning when, after the start, a parameter is sampled
            by ``independent_sampler``.
        latency_table: A latency table of the target device
            (:func:`~optuna_nachos.cost.profile_latency`), for studies that minimize average
            latency: the exact per-exit costs are then the table's latencies in ms
            (:func:`~optuna_nachos.cost.exit_latency`) instead of MACs, and ``max_avg_macs`` and
            ``max_peak_macs`` are budgets in ms (``NachosObjective.sampler_options`` passes
            them so). Needs a ``space``.
        latency_backend: Back end of the table's measurements (``"onnxruntime"`` or
            ``"torch"``).
        latency_batch_size: Batch size of the table's measurements.

    Raises:
        ValueError: On an invalid setting.
    """

    def __init__(
        self,
        *,
        space: Any = None,
        num_classes: int = 10,
        in_channels: int = 3,
        cost_convention: str = "nachos",
        max_avg_macs: float | None = None,
        min_accuracy: float | None = None,
        max_peak_macs: float | None = None,
        max_params: float | None = None,
        accuracy_objective: int | None = None,
        avg_macs_objective: int | None = None,
        n_startup_trials: int = 100,
        feasible_startup: bool = True,
        batch_size: int = 8,
        population_size: int = 40,
        n_generations: int = 20,
        selection: str = "hypervolume",
        exploration: float = 0.125,
        surrogates: Sequence[str] = SURROGATE_NAMES,
        n_folds: int = 5,
        n_repeats: int = 3,
        seed: int | None = None,
        independent_sampler: BaseSampler | None = None,
        warn_independent_sampling: bool = True,
        latency_table: Any = None,
        latency_backend: str = "onnxruntime",
        latency_batch_size: int = 1,
    ) -> None:
        if latency_table is not None:
            if space is None:
                raise ValueError("latency_table needs the search space (space=...).")
            latency_table.call_ms(backend=latency_backend, batch_size=latency_batch_size)
        for name, value, low in (
            ("n_startup_trials", n_startup_trials, 0),
            ("batch_size", batch_size, 1),
            ("population_size", population_size, 2),
            ("n_generations", n_generations, 0),
            ("n_folds", n_folds, 2),
            ("n_repeats", n_repeats, 1),
            ("num_classes", num_classes, 2),
            ("in_channels", in_channels, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")
        for name, value in (
            ("max_avg_macs", max_avg_macs),
            ("max_peak_macs", max_peak_macs),
            ("max_params", max_params),
        ):
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive (or None), got {value!r}.")
        if (max_peak_macs is not None or max_params is not None) and space is None:
            raise ValueError(
                "max_peak_macs and max_params are exact static limits: pass the search space "
                "(space=MobileNetV3Space(...)) so that the sampler can compute them."
            )
        if selection not in ("hypervolume", "spread"):
            raise ValueError(f"selection must be 'hypervolume' or 'spread', got {selection!r}.")
        if not 0.0 <= exploration <= 1.0:
            raise ValueError(f"exploration must lie in [0, 1], got {exploration!r}.")
        surrogates = tuple(surrogates)
        unknown = [s for s in surrogates if s not in SURROGATE_NAMES]
        if not surrogates or unknown:
            raise ValueError(
                f"surrogates must be a non-empty selection of {SURROGATE_NAMES}, got {surrogates}."
            )
        if space is not None:
            for method in (
                "distributions",
                "config_from_params",
                "params_from_config",
                "exit_deficit",
            ):
                if not callable(getattr(space, method, None)):
                    raise ValueError(
                        "space must be an EENN search space such as MobileNetV3Space or "
                        f"BackboneExitSpace; "
                        f"{type(space).__name__} has no {method}()."
                    )
        self._space = space
        self._num_classes = num_classes
        self._in_channels = in_channels
        self._cost_convention = cost_convention
        self._max_avg_macs = None if max_avg_macs is None else float(max_avg_macs)
        self._min_accuracy = None if min_accuracy is None else float(min_accuracy)
        self._max_peak_macs = None if max_peak_macs is None else float(max_peak_macs)
        self._max_params = None if max_params is None else float(max_params)
        self._accuracy_objective = accuracy_objective
        self._avg_macs_objective = avg_macs_objective
        self._n_startup_trials = n_startup_trials
        self._feasible_startup = feasible_startup
        self._batch_size = batch_size
        self._population_size = population_size
        self._n_generations = n_generations
        self._surrogates = surrogates
        self._selection = selection
        self._exploration = float(exploration)
        self._n_folds = n_folds
        self._n_repeats = n_repeats
        self._rng = LazyRandomState(seed)
        self._independent_sampler = independent_sampler or RandomSampler(seed=seed)
        self._warn_independent_sampling = warn_independent_sampling
        self._space_costs = (
            None
            if space is None
            else SpaceCosts(
                space,
                num_classes=num_classes,
                in_channels=in_channels,
                convention=cost_convention,
                max_avg_macs=self._max_avg_macs,
                max_peak_macs=self._max_peak_macs,
                max_params=self._max_params,
                latency_table=latency_table,
                latency_backend=latency_backend,
                latency_batch_size=latency_batch_size,
            )
        )
        self._lock = threading.Lock()
        self._encoders: dict[tuple, SearchSpaceEncoder] = {}
        self._identities: dict[tuple, Hashable] = {}
        self._warned: set[str] = set()
        self._warned_params: set[str] = set()

    # ------------------------------------------------------------------------- pickling
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]
        state["_identities"] = {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # --------------------------------------------------------------------- BaseSampler API
    def reseed_rng(self) -> None:
        self._rng.rng.seed()
        self._independent_sampler.reseed_rng()

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if trials or self._space_costs is None:
            search_space = intersection_search_space(trials)
        else:
            # Before any trial completes, the space says what the objective will suggest.
            search_space = self._space_costs.distributions
        return {name: dist for name, dist in search_space.items() if not dist.single()}

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space:
            return {}
        fixed = trial.system_attrs.get(_FIXED_PARAMS_ATTR) or {}
        if all(name in fixed for name in search_space):
            return {}
        n_complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
        encoder = self._encoder(search_space)
        if n_complete < max(self._n_startup_trials, 1):
            if self._feasible_startup and self._space_active(encoder):
                with self._lock:
                    return self._random_start(study, trial, encoder)
            return {}
        with self._lock:
            return self._claim(study, trial, encoder)

    def _random_start(
        self, study: Study, trial: FrozenTrial, encoder: SearchSpaceEncoder
    ) -> dict[str, Any]:
        """A random new configuration that meets the exact static constraints."""
        assert self._space_costs is not None
        trials = study._storage.get_all_trials(study._study_id, deepcopy=False)
        taken, _ = self._taken(trials, encoder, True, trial.number)
        rng = np.random.default_rng(self._rng.rng.randint(0, 2**31 - 1))
        for _ in range(100):
            for vector in encoder.random(64, rng):
                params = encoder.decode(vector)
                costs = self._space_costs.costs(params)
                if self._space_costs.static_violation(costs) > 0.0:
                    continue
                if self._identity(encoder, params, True) in taken:
                    continue
                return self._canonical(encoder, params, True)
        return {}

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        if self._warn_independent_sampling and param_name not in self._warned_params:
            n_complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
            if n_complete >= max(self._n_startup_trials, 1):
                self._warned_params.add(param_name)
                _logger.warning(
                    "The parameter %r in trial %d is sampled independently by %s instead of "
                    "NachosSampler: it is not in the relative search space (the parameters of "
                    "every completed trial, with the same distribution). Pass "
                    "warn_independent_sampling=False to silence this warning.",
                    param_name,
                    trial.number,
                    type(self._independent_sampler).__name__,
                )
        return self._independent_sampler.sample_independent(
            study, trial, param_name, param_distribution
        )

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._independent_sampler.before_trial(study, trial)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._independent_sampler.after_trial(study, trial, state, values)

    # ------------------------------------------------------------------------- encoding
    def _encoder(self, search_space: dict[str, BaseDistribution]) -> SearchSpaceEncoder:
        key = tuple(search_space.items())
        encoder = self._encoders.get(key)
        if encoder is None:
            encoder = self._encoders.setdefault(key, SearchSpaceEncoder(search_space))
        return encoder

    @staticmethod
    def _signature(encoder: SearchSpaceEncoder) -> str:
        return hashlib.sha1(encoder.signature().encode()).hexdigest()[:16]

    def _space_active(self, encoder: SearchSpaceEncoder) -> bool:
        """Whether the relative search space holds every parameter of ``space``."""
        if self._space_costs is None:
            return False
        for name, dist in self._space_costs.distributions.items():
            if dist.single():
                continue
            if encoder.search_space.get(name) != dist:
                if "space" not in self._warned:
                    self._warned.add("space")
                    _logger.warning(
                        "NachosSampler: the relative search space lacks the space parameter %r "
                        "(or has another distribution); exact costs are not used and every "
                        "objective is predicted by a surrogate.",
                        name,
                    )
                return False
        return True

    def _canonical(
        self, encoder: SearchSpaceEncoder, params: dict[str, Any], active: bool
    ) -> dict[str, Any]:
        if not active:
            return params
        assert self._space_costs is not None
        canonical = self._space_costs.canonical_params(params)
        return {name: canonical.get(name, params[name]) for name in encoder.names}

    def _identity(
        self, encoder: SearchSpaceEncoder, params: dict[str, Any], active: bool
    ) -> Hashable | None:
        """Identity of the candidate ``params`` encode (``None`` if not in the space)."""
        try:
            raw = (id(encoder), tuple(params[name] for name in encoder.names))
        except KeyError:
            return None
        try:
            found = self._identities.get(raw)
        except TypeError:  # unhashable values
            return None
        if found is not None:
            return found
        vector = encoder.try_encode(params)
        if vector is None:
            return None
        if active:
            try:
                vector = encoder.encode(self._canonical(encoder, encoder.decode(vector), True))
            except (ValueError, KeyError):
                return None
        key = encoder.key(vector)
        if len(self._identities) > 200_000:
            self._identities.clear()
        self._identities[raw] = key
        return key

    # ----------------------------------------------------------------------------- claims
    def _taken(
        self,
        trials: Sequence[FrozenTrial],
        encoder: SearchSpaceEncoder,
        active: bool,
        exclude_number: int,
    ) -> tuple[set[Hashable], dict[Hashable, list[int]]]:
        """Identities of every configuration tried, running, enqueued or claimed."""
        taken: set[Hashable] = set()
        claims: dict[Hashable, list[int]] = {}
        for t in trials:
            if t.number == exclude_number:
                continue
            for params in (t.params, t.system_attrs.get(_FIXED_PARAMS_ATTR)):
                if params:
                    identity = self._identity(encoder, params, active)
                    if identity is not None:
                        taken.add(identity)
            claim = t.system_attrs.get(PROPOSAL_ATTR)
            if isinstance(claim, dict) and isinstance(claim.get("params"), dict):
                identity = self._identity(encoder, claim["params"], active)
                if identity is not None:
                    taken.add(identity)
                    if t.state != TrialState.FAIL:
                        claims.setdefault(identity, []).append(t.number)
        return taken, claims

    @staticmethod
    def _rounds(study: Study) -> list[tuple[int, dict[str, Any]]]:
        attrs = study._storage.get_study_system_attrs(study._study_id)
        rounds = []
        for key, value in attrs.items():
            if key.startswith(ROUND_ATTR_PREFIX) and isinstance(value, dict):
                rounds.append((int(key[len(ROUND_ATTR_PREFIX) :]), value))
        rounds.sort(key=lambda item: item[0])
        return rounds

    def _claim(
        self, study: Study, trial: FrozenTrial, encoder: SearchSpaceEncoder
    ) -> dict[str, Any]:
        storage = study._storage
        active = self._space_active(encoder)
        signature = self._signature(encoder)
        shared = not isinstance(storage, optuna.storages.InMemoryStorage)
        jitter = random.Random()
        collided = False
        for _ in range(_MAX_CLAIM_ATTEMPTS):
            trials = storage.get_all_trials(study._study_id, deepcopy=False)
            taken, _ = self._taken(trials, encoder, active, trial.number)
            rounds = self._rounds(study)
            latest = rounds[-1] if rounds else None
            choice = None
            if latest is not None and latest[1].get("signature") == signature:
                free = [
                    (index, params)
                    for index, params in enumerate(latest[1].get("proposals", []))
                    if self._identity(encoder, params, active) not in taken
                ]
                if free:
                    choice = free[jitter.randrange(len(free))] if collided else free[0]
                    round_index = latest[0]
            if choice is None:
                round_index = latest[0] + 1 if latest is not None else 0
                proposals = self._new_round(study, trials, encoder, active, taken, round_index)
                if not proposals:
                    # Every configuration of the space is taken: repeat one at random.
                    rng = np.random.default_rng(self._rng.rng.randint(0, 2**31 - 1))
                    return encoder.decode(encoder.random(1, rng)[0])
                choice = proposals[0]
            index, params = choice
            claim = {"round": round_index, "index": index, "params": params}
            storage.set_trial_system_attr(trial._trial_id, PROPOSAL_ATTR, claim)
            if not shared:
                return dict(params)
            identity = self._identity(encoder, params, active)
            _, claims = self._taken(
                storage.get_all_trials(study._study_id, deepcopy=False),
                encoder,
                active,
                trial.number,
            )
            if identity not in claims:
                return dict(params)
            # Another process claimed the same proposal at the same time: both step back and
            # try again after a random pause, so that one of them wins it next time.
            storage.set_trial_system_attr(trial._trial_id, PROPOSAL_ATTR, None)
            collided = True
            time.sleep(jitter.uniform(0.01, 0.2))
        _logger.warning(
            "Trial %d could not claim a NACHOS proposal after %d attempts; sampling at random.",
            trial.number,
            _MAX_CLAIM_ATTEMPTS,
        )
        return {}

    # ----------------------------------------------------------------------------- rounds
    def _new_round(
        self,
        study: Study,
        trials: Sequence[FrozenTrial],
        encoder: SearchSpaceEncoder,
        active: bool,
        taken: set[Hashable],
        round_index: int,
    ) -> list[tuple[int, dict[str, Any]]]:
        """Build and store round ``round_index``; return its free proposals, indexed."""
        started = time.perf_counter()
        seed = int(self._rng.rng.randint(0, 2**31 - 1))
        rng = np.random.default_rng(seed)
        proposals, diagnostics = self._propose(study, trials, encoder, active, taken, rng, seed)
        diagnostics = {
            "round": round_index,
            "n_trials": sum(t.state == TrialState.COMPLETE for t in trials),
            **diagnostics,
            "n_proposals": len(proposals),
            "seconds": round(time.perf_counter() - started, 3),
        }
        storage = study._storage
        key = _round_key(round_index)
        existing = storage.get_study_system_attrs(study._study_id).get(key)
        if isinstance(existing, dict) and existing.get("signature") == self._signature(encoder):
            # Another worker stored this round meanwhile: use its proposals.
            free = [
                (index, params)
                for index, params in enumerate(existing.get("proposals", []))
                if self._identity(encoder, params, active) not in taken
            ]
            if free:
                return free
        storage.set_study_system_attr(
            study._study_id,
            key,
            {
                "signature": self._signature(encoder),
                "proposals": proposals,
                "diagnostics": diagnostics,
            },
        )
        rounds = [
            value["diagnostics"]
            for _, value in self._rounds(study)
            if isinstance(value.get("diagnostics"), dict)
        ]
        storage.set_study_user_attr(study._study_id, ROUNDS_USER_ATTR, rounds)
        _logger.info(
            "NACHOS round %d: %d proposals from %d trials in %.1f s; surrogates %s; "
            "%d candidates (%d predicted feasible).",
            round_index,
            len(proposals),
            diagnostics["n_trials"],
            diagnostics["seconds"],
            ", ".join(
                f"{name}: {info['surrogate']} (tau {info['kendall_tau']})"
                for name, info in diagnostics.get("surrogates", {}).items()
            ),
            diagnostics.get("n_candidates", 0),
            diagnostics.get("n_predicted_feasible", 0),
        )
        if diagnostics.get("fallback"):
            _logger.info(
                "The proposals of that round explore instead: %s.",
                diagnostics.get("fallback_reason"),
            )
        return list(enumerate(proposals))

    def _roles(self, study: Study, active: bool) -> _Roles:
        directions = list(study.directions)
        n = len(directions)
        names = [str(name).lower() for name in (study.metric_names or [""] * n)]
        accuracy, avg_macs = self._accuracy_objective, self._avg_macs_objective
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
                n == 2
                and avg_macs is not None
                and directions[1 - avg_macs] == StudyDirection.MAXIMIZE
            ):
                accuracy = 1 - avg_macs
        if accuracy is not None and accuracy == avg_macs:
            raise ValueError("accuracy_objective and avg_macs_objective must differ.")
        return _Roles(accuracy, avg_macs)

    def _collect(
        self,
        trials: Sequence[FrozenTrial],
        encoder: SearchSpaceEncoder,
        active: bool,
        n_objectives: int,
    ) -> _Data:
        vectors, values, constraints, skipped, costs = [], [], [], [], []
        for t in trials:
            if t.state != TrialState.COMPLETE or t.values is None:
                continue
            if len(t.values) != n_objectives or not all(math.isfinite(v) for v in t.values):
                continue
            vector = encoder.try_encode(t.params)
            if vector is None:
                continue
            if active:
                assert self._space_costs is not None
                try:
                    params = self._canonical(encoder, dict(t.params), True)
                    costs.append(self._space_costs.costs(params))
                except (ValueError, KeyError):
                    continue
                vector = encoder.encode(params)
            vectors.append(vector)
            values.append(list(t.values))
            constraints.append(dict(t.constraints))
            skipped.append(SKIPPED_TRAINING_ATTR in t.user_attrs)
        d = len(encoder)
        return _Data(
            np.array(vectors, dtype=float).reshape(-1, d),
            np.array(values, dtype=float).reshape(-1, n_objectives),
            constraints,
            np.array(skipped, dtype=bool),
            costs,
        )

    def _propose(
        self,
        study: Study,
        trials: Sequence[FrozenTrial],
        encoder: SearchSpaceEncoder,
        active: bool,
        taken: set[Hashable],
        rng: np.random.Generator,
        seed: int,
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        directions = list(study.directions)
        n_obj = len(directions)
        signs = np.array([-1.0 if d == StudyDirection.MAXIMIZE else 1.0 for d in directions])
        roles = self._roles(study, active)
        data = self._collect(trials, encoder, active, n_obj)
        model = _RoundModel(
            sampler=self,
            encoder=encoder,
            active=active,
            roles=roles,
            signs=signs,
            data=data,
            metric_names=study.metric_names,
            seed=seed,
        )
        uninformed = model.uninformed_reason()
        if uninformed is not None:
            return self._explore(model, data, taken, rng, seed, uninformed)

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
            if len(front) > self._population_size // 2:
                front = rng.choice(front, size=self._population_size // 2, replace=False)
            initial = data.vectors[front]
        fill = model.random_candidates(self._population_size - len(initial), rng, taken)
        initial = np.vstack([initial, fill]) if len(fill) else initial

        nsga = IntegerNSGA2(
            encoder=encoder,
            evaluate=model.evaluate,
            key=model.identity,
            population_size=self._population_size,
            n_generations=self._n_generations,
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
        if len(usable) < self._batch_size:
            extra = model.random_candidates(
                self._batch_size - len(usable), rng, taken | {archive.keys[i] for i in usable}
            )
            if len(extra):
                f, v = model.evaluate(extra)
                vectors = np.vstack([vectors, extra])
                objectives = np.vstack([objectives, f])
                violations = np.concatenate([violations, v])
        n_explore = min(int(round(self._exploration * self._batch_size)), self._batch_size)
        n_main = self._batch_size - n_explore
        if n_main == 0:
            chosen = np.zeros(0, dtype=int)
        elif self._selection == "hypervolume" and len(objectives):
            reference = self._reference_point(roles, signs, anchors, objectives, violations)
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
                    model.random_candidates(8 * self._population_size, rng, taken | picked),
                ]
            )
            novel = model.novel(pool, data.vectors, n_explore)
            if len(novel):
                f, v = model.evaluate(pool[novel])
                chosen = np.concatenate([chosen, len(vectors) + np.arange(len(novel))])
                vectors = np.vstack([vectors, pool[novel]])
                objectives = np.vstack([objectives, f])
        proposals = []
        seen: set[Hashable] = set()
        for i in chosen:
            params = model.proposal_params(vectors[i])
            k = model.identity(vectors[i])
            if k in seen or k in taken:
                continue
            seen.add(k)
            proposals.append(params)
        diagnostics = {
            **model.diagnostics(),
            "n_candidates": len(archive.keys),
            "n_predicted_feasible": int(np.sum(archive.violations <= 0.0)),
            "predicted": [[round(float(x), 6) for x in objectives[i] * signs] for i in chosen],
            "seed": seed,
        }
        return proposals, diagnostics

    def _explore(
        self,
        model: _RoundModel,
        data: _Data,
        taken: set[Hashable],
        rng: np.random.Generator,
        seed: int,
        reason: str,
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """A round of exploration only: new, statically feasible candidates, space-filling
        (farthest from every completed trial and from each other)."""
        pool = model.random_candidates(8 * self._population_size, rng, taken)
        chosen = model.novel(pool, data.vectors, self._batch_size)
        proposals = []
        seen: set[Hashable] = set()
        for i in chosen:
            k = model.identity(pool[i])
            if k in seen or k in taken:
                continue
            seen.add(k)
            proposals.append(model.proposal_params(pool[i]))
        diagnostics = {
            **model.diagnostics(),
            "fallback": "exploration",
            "fallback_reason": reason,
            "n_candidates": len(pool),
            "n_predicted_feasible": 0,
            "predicted": [],
            "seed": seed,
        }
        return proposals, diagnostics

    def _reference_point(
        self,
        roles: _Roles,
        signs: np.ndarray,
        front: np.ndarray,
        objectives: np.ndarray,
        violations: np.ndarray,
    ) -> np.ndarray:
        """Reference point of the hypervolume, in minimized objectives.

        The constraint bounds where they are known (``min_accuracy``, ``max_avg_macs``), else
        the worst value of the front and the predicted-feasible candidates plus a tenth of
        their range.
        """
        points = np.vstack([front, objectives[violations <= 0.0]])
        if len(points) == 0:
            points = objectives
        worst, best = points.max(axis=0), points.min(axis=0)
        reference = worst + 0.1 * np.where(worst > best, worst - best, 1.0)
        if roles.accuracy is not None and self._min_accuracy is not None:
            reference[roles.accuracy] = signs[roles.accuracy] * self._min_accuracy
        if roles.avg_macs is not None and self._max_avg_macs is not None:
            reference[roles.avg_macs] = signs[roles.avg_macs] * self._max_avg_macs
        return reference


class _RoundModel:
    """Predictions of one round: surrogates, exact costs and constraint violations."""

    def __init__(
        self,
        *,
        sampler: NachosSampler,
        encoder: SearchSpaceEncoder,
        active: bool,
        roles: _Roles,
        signs: np.ndarray,
        data: _Data,
        metric_names: list[str] | None,
        seed: int,
    ) -> None:
        self.sampler = sampler
        self.encoder = encoder
        self.active = active
        self.roles = roles
        self.signs = signs
        self.space_costs = sampler._space_costs if active else None
        self._infos: dict[Hashable, _Info] = {}
        n_obj = len(signs)
        names = metric_names or [f"objective{i}" for i in range(n_obj)]
        fit = dict(
            candidates=sampler._surrogates,
            n_folds=sampler._n_folds,
            n_repeats=sampler._n_repeats,
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
            if sampler._max_peak_macs is not None:
                computed.add(MAX_PEAK_MACS)
            if sampler._max_params is not None:
                computed.add(MAX_PARAMS)
        self.predict_avg_macs = sampler._max_avg_macs is not None and roles.avg_macs is not None
        self.predict_accuracy = sampler._min_accuracy is not None and roles.accuracy is not None
        if self.predict_avg_macs:
            computed.add(MAX_AVG_MACS)
        if self.predict_accuracy:
            computed.add(MIN_ACCURACY)
        for what, given, role in (
            ("max_avg_macs", sampler._max_avg_macs, roles.avg_macs),
            ("min_accuracy", sampler._min_accuracy, roles.accuracy),
        ):
            if given is not None and role is None and what not in sampler._warned:
                sampler._warned.add(what)
                _logger.warning(
                    "NachosSampler: %s is set but the %s objective is unknown; set the study's "
                    "metric names or pass %s_objective=.",
                    what,
                    "accuracy" if what == "min_accuracy" else "average-MACs",
                    "accuracy" if what == "min_accuracy" else "avg_macs",
                )
        names_seen = sorted({name for c in data.constraints for name in c} - computed)
        self.constraint_surrogates: dict[str, tuple[Surrogate, float]] = {}
        for name in names_seen:
            rows = [r for r, c in enumerate(data.constraints) if name in c]
            y = np.array([data.constraints[r][name] for r in rows], dtype=float)
            scale = float(np.std(y)) or float(np.max(np.abs(y))) or 1.0
            self.constraint_surrogates[name] = (fit_surrogate(x[rows], y, **fit), scale)

    # ----------------------------------------------------------------------------- costs
    def _anchor(self, costs: CandidateCosts) -> tuple[float, float]:
        return average_anchor(costs, self.sampler._max_avg_macs)

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
        sampler = self.sampler
        if self.predict_avg_macs:
            budget = sampler._max_avg_macs
            violation += np.maximum(0.0, predictions[:, self.roles.avg_macs] - budget) / budget
        if self.predict_accuracy:
            floor = sampler._min_accuracy
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
