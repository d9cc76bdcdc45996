"""The NACHOS sampler: Optuna's sampler interface around the claim board and the rounds."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.samplers._lazy_random_state import LazyRandomState
from optuna.search_space import intersection_search_space
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from optuna_nachos._logging import get_logger
from optuna_nachos.samplers._claims import FIXED_PARAMS_ATTR, ClaimBoard, Proposal
from optuna_nachos.samplers._costs import SpaceCosts
from optuna_nachos.samplers._diagnostics import log_round
from optuna_nachos.samplers._encoding import SearchSpaceEncoder
from optuna_nachos.samplers._round import canonical_params, objective_roles, propose_round
from optuna_nachos.samplers._round_model import Roles
from optuna_nachos.samplers._settings import NachosSettings
from optuna_nachos.samplers._surrogates import SURROGATE_NAMES
from optuna_nachos.space import EENNSearchSpace, check_space

_logger = get_logger(__name__)


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
    logged at INFO and kept in one study user attribute per round (``nachos_round:NNNNNN``);
    :func:`~optuna_nachos.samplers.round_diagnostics` reads them back in order.

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
            generically (surrogates for every objective and constraint). Any
            :class:`~optuna_nachos.space.EENNSearchSpace` will do.
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
        TypeError: If ``space`` is not an :class:`~optuna_nachos.space.EENNSearchSpace`.
    """

    def __init__(
        self,
        *,
        space: EENNSearchSpace | None = None,
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
        settings = NachosSettings(
            num_classes=num_classes,
            in_channels=in_channels,
            cost_convention=cost_convention,
            max_avg_macs=max_avg_macs,
            min_accuracy=min_accuracy,
            max_peak_macs=max_peak_macs,
            max_params=max_params,
            accuracy_objective=accuracy_objective,
            avg_macs_objective=avg_macs_objective,
            n_startup_trials=n_startup_trials,
            feasible_startup=feasible_startup,
            batch_size=batch_size,
            population_size=population_size,
            n_generations=n_generations,
            selection=selection,
            exploration=exploration,
            surrogates=tuple(surrogates),
            n_folds=n_folds,
            n_repeats=n_repeats,
        )
        if (max_peak_macs is not None or max_params is not None) and space is None:
            raise ValueError(
                "max_peak_macs and max_params are exact static limits: pass the search space "
                "(space=MobileNetV3Space(...)) so that the sampler can compute them."
            )
        if space is not None:
            check_space(space)
        self._settings = settings
        self._space = space
        self._rng = LazyRandomState(seed)
        self._independent_sampler = independent_sampler or RandomSampler(seed=seed)
        self._warn_independent_sampling = warn_independent_sampling
        self._space_costs = (
            None
            if space is None
            else SpaceCosts(
                space,
                num_classes=settings.num_classes,
                in_channels=settings.in_channels,
                convention=settings.cost_convention,
                max_avg_macs=settings.max_avg_macs,
                max_peak_macs=settings.max_peak_macs,
                max_params=settings.max_params,
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
        fixed = trial.system_attrs.get(FIXED_PARAMS_ATTR) or {}
        if all(name in fixed for name in search_space):
            return {}
        n_complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
        encoder = self._encoder(search_space)
        if n_complete < max(self._settings.n_startup_trials, 1):
            if self._settings.feasible_startup and self._space_active(encoder):
                with self._lock:
                    return self._random_start(study, trial, encoder)
            return {}
        return self._claim(study, trial, encoder)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        if self._warn_independent_sampling and param_name not in self._warned_params:
            n_complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
            if n_complete >= max(self._settings.n_startup_trials, 1):
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
        return canonical_params(self._space_costs, encoder, params)

    def _identity(
        self, encoder: SearchSpaceEncoder, params: Mapping[str, Any], active: bool
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

    def _board(self, study: Study, encoder: SearchSpaceEncoder, active: bool) -> ClaimBoard:
        signature = hashlib.sha1(encoder.signature().encode()).hexdigest()[:16]
        return ClaimBoard(
            study,
            signature=signature,
            identify=lambda params: self._identity(encoder, params, active),
        )

    # --------------------------------------------------------------------- random start
    def _random_start(
        self, study: Study, trial: FrozenTrial, encoder: SearchSpaceEncoder
    ) -> dict[str, Any]:
        """A random new configuration that meets the exact static constraints."""
        assert self._space_costs is not None
        board = self._board(study, encoder, True)
        taken, _ = board.taken(board.trials(), trial.number)
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

    # --------------------------------------------------------------------------- rounds
    def _claim(
        self, study: Study, trial: FrozenTrial, encoder: SearchSpaceEncoder
    ) -> dict[str, Any]:
        """Claim a proposal for ``trial``, building a new round when none is free."""
        with self._lock:
            active = self._space_active(encoder)
        board = self._board(study, encoder, active)

        def new_round(
            trials: Sequence[FrozenTrial], taken: set[Hashable], index: int
        ) -> list[Proposal]:
            return self._new_round(study, board, trials, encoder, active, taken, index)

        def when_all_taken() -> dict[str, Any]:
            # Every configuration of the space is taken: repeat one at random.
            rng = np.random.default_rng(self._rng.rng.randint(0, 2**31 - 1))
            return encoder.decode(encoder.random(1, rng)[0])

        return board.claim(
            trial, new_round=new_round, when_all_taken=when_all_taken, lock=self._lock
        )

    def _new_round(
        self,
        study: Study,
        board: ClaimBoard,
        trials: Sequence[FrozenTrial],
        encoder: SearchSpaceEncoder,
        active: bool,
        taken: set[Hashable],
        round_index: int,
    ) -> list[Proposal]:
        """Build and publish round ``round_index``; return its free proposals, indexed."""
        started = time.perf_counter()
        seed = int(self._rng.rng.randint(0, 2**31 - 1))
        roles = objective_roles(study.directions, study.metric_names, self._settings, active)
        self._warn_unknown_roles(roles)
        proposals, diagnostics = propose_round(
            settings=self._settings,
            space_costs=self._space_costs if active else None,
            encoder=encoder,
            directions=study.directions,
            metric_names=study.metric_names,
            roles=roles,
            trials=trials,
            taken=taken,
            seed=seed,
        )
        diagnostics = {
            "round": round_index,
            "n_trials": sum(t.state == TrialState.COMPLETE for t in trials),
            **diagnostics,
            "n_proposals": len(proposals),
            "seconds": round(time.perf_counter() - started, 3),
        }
        # Another worker may have stored this round meanwhile: then its proposals are used.
        free = board.free_in_round(round_index, taken)
        if free:
            return free
        board.publish(round_index, proposals, diagnostics)
        log_round(diagnostics)
        return list(enumerate(proposals))

    def _warn_unknown_roles(self, roles: Roles) -> None:
        """Warn once of a limit set on an objective the sampler cannot tell."""
        for what, given, role in (
            ("max_avg_macs", self._settings.max_avg_macs, roles.avg_macs),
            ("min_accuracy", self._settings.min_accuracy, roles.accuracy),
        ):
            if given is not None and role is None and what not in self._warned:
                self._warned.add(what)
                _logger.warning(
                    "NachosSampler: %s is set but the %s objective is unknown; set the study's "
                    "metric names or pass %s_objective=.",
                    what,
                    "accuracy" if what == "min_accuracy" else "average-MACs",
                    "accuracy" if what == "min_accuracy" else "avg_macs",
                )
