"""The claim board: rounds of proposals and the trials' claims on them, kept in a study's storage.

A round is a study system attribute (``nachos:round:NNNNNN``) holding its proposals; a trial
claims the next proposal nobody has taken by writing the trial system attribute
``nachos:proposal``. On a storage shared by several processes, a claim is checked after it is
written: when another trial claimed the same proposal at the same moment, the claim is
withdrawn and tried again after a random pause, so that one of them wins it next time.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

import optuna
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from optuna_nachos._logging import get_logger
from optuna_nachos.samplers._diagnostics import store_round_diagnostics

_logger = get_logger(__name__)

PROPOSAL_ATTR = "nachos:proposal"
"""Trial system attribute holding the proposal a trial claimed: ``{"round", "index", "params"}``."""

ROUND_ATTR_PREFIX = "nachos:round:"
"""Prefix of the study system attributes holding each round's proposals and diagnostics."""

FIXED_PARAMS_ATTR = "fixed_params"
"""Trial system attribute of the parameters an enqueued trial fixes (Optuna's own)."""

MAX_CLAIM_ATTEMPTS = 8

Proposal = tuple[int, dict[str, Any]]
"""A proposal of a round: its index in the round and its parameters."""

NewRound = Callable[[Sequence[FrozenTrial], set[Hashable], int], list[Proposal]]
"""Builds and publishes round ``index`` from the trials and the taken identities; returns its
free proposals (empty when every configuration is taken)."""


def round_key(index: int) -> str:
    """The study system attribute of round ``index``."""
    return f"{ROUND_ATTR_PREFIX}{index:06d}"


class ClaimBoard:
    """The rounds and claims of one study, for candidates of one encoded search space.

    Args:
        study: The study whose storage holds the rounds and claims.
        signature: Signature of the search space; a round of another space is not claimed from.
        identify: The identity of the candidate that parameters encode (``None`` when they are
            not in the search space): two parameter sets of one identity are one candidate.
    """

    def __init__(
        self,
        study: Study,
        *,
        signature: str,
        identify: Callable[[Mapping[str, Any]], Hashable | None],
    ) -> None:
        self._storage = study._storage
        self._study_id = study._study_id
        self._signature = signature
        self._identify = identify

    @property
    def shared(self) -> bool:
        """Whether other processes may write to the storage (claims must then be checked)."""
        return not isinstance(self._storage, optuna.storages.InMemoryStorage)

    def trials(self) -> list[FrozenTrial]:
        """Every trial of the study, as stored now."""
        return self._storage.get_all_trials(self._study_id, deepcopy=False)

    def taken(
        self, trials: Sequence[FrozenTrial], exclude_number: int
    ) -> tuple[set[Hashable], dict[Hashable, list[int]]]:
        """Identities of every configuration tried, running, enqueued or claimed, and the
        numbers of the trials (not failed) claiming each one; trial ``exclude_number`` aside."""
        taken: set[Hashable] = set()
        claims: dict[Hashable, list[int]] = {}
        for t in trials:
            if t.number == exclude_number:
                continue
            for params in (t.params, t.system_attrs.get(FIXED_PARAMS_ATTR)):
                if params:
                    identity = self._identify(params)
                    if identity is not None:
                        taken.add(identity)
            claim = t.system_attrs.get(PROPOSAL_ATTR)
            if isinstance(claim, dict) and isinstance(claim.get("params"), dict):
                identity = self._identify(claim["params"])
                if identity is not None:
                    taken.add(identity)
                    if t.state != TrialState.FAIL:
                        claims.setdefault(identity, []).append(t.number)
        return taken, claims

    def rounds(self) -> list[tuple[int, dict[str, Any]]]:
        """The stored rounds, by index."""
        attrs = self._storage.get_study_system_attrs(self._study_id)
        rounds = []
        for key, value in attrs.items():
            if key.startswith(ROUND_ATTR_PREFIX) and isinstance(value, dict):
                rounds.append((int(key[len(ROUND_ATTR_PREFIX) :]), value))
        rounds.sort(key=lambda item: item[0])
        return rounds

    def _free(self, stored: Any, taken: set[Hashable]) -> list[Proposal]:
        if not isinstance(stored, dict) or stored.get("signature") != self._signature:
            return []
        return [
            (index, params)
            for index, params in enumerate(stored.get("proposals", []))
            if self._identify(params) not in taken
        ]

    def free_in_round(self, index: int, taken: set[Hashable]) -> list[Proposal]:
        """The proposals of round ``index``, if stored for this space, that nobody has taken."""
        stored = self._storage.get_study_system_attrs(self._study_id).get(round_key(index))
        return self._free(stored, taken)

    def publish(
        self, index: int, proposals: list[dict[str, Any]], diagnostics: Mapping[str, Any]
    ) -> None:
        """Store round ``index``: its proposals (to claim) and its diagnostics (to read)."""
        self._storage.set_study_system_attr(
            self._study_id,
            round_key(index),
            {"signature": self._signature, "proposals": proposals, "diagnostics": diagnostics},
        )
        store_round_diagnostics(self._storage, self._study_id, index, diagnostics)

    def claim(
        self,
        trial: FrozenTrial,
        *,
        new_round: NewRound,
        when_all_taken: Callable[[], dict[str, Any]],
        lock: AbstractContextManager[Any],
    ) -> dict[str, Any]:
        """Claim a free proposal of the latest round (or of a new one) for ``trial``.

        Each attempt runs under ``lock``; the pause after a contested claim does not, so that
        the sampler's other threads go on meanwhile.

        Args:
            trial: The trial to sample.
            new_round: Builds and publishes a round when the latest one has no free proposal.
            when_all_taken: Parameters to use when a new round has no proposal at all (every
                configuration of the space is taken).
            lock: The sampler's lock.

        Returns:
            The parameters claimed; empty after :data:`MAX_CLAIM_ATTEMPTS` contested attempts.
        """
        jitter = random.Random()
        for attempt in range(MAX_CLAIM_ATTEMPTS):
            with lock:
                params = self._attempt(trial, new_round, when_all_taken, jitter, attempt > 0)
            if params is not None:
                return params
            # Another process claimed the same proposal at the same time: both step back and
            # try again after a random pause, so that one of them wins it next time.
            time.sleep(jitter.uniform(0.01, 0.2))
        _logger.warning(
            "Trial %d could not claim a NACHOS proposal after %d attempts; sampling at random.",
            trial.number,
            MAX_CLAIM_ATTEMPTS,
        )
        return {}

    def _attempt(
        self,
        trial: FrozenTrial,
        new_round: NewRound,
        when_all_taken: Callable[[], dict[str, Any]],
        jitter: random.Random,
        collided: bool,
    ) -> dict[str, Any] | None:
        """One claim: its parameters, or ``None`` when another trial claimed them too."""
        trials = self.trials()
        taken, _ = self.taken(trials, trial.number)
        rounds = self.rounds()
        latest_index, latest = rounds[-1] if rounds else (-1, None)
        free = self._free(latest, taken)
        if free:
            round_index = latest_index
            choice = free[jitter.randrange(len(free))] if collided else free[0]
        else:
            round_index = latest_index + 1
            proposals = new_round(trials, taken, round_index)
            if not proposals:
                return when_all_taken()
            choice = proposals[0]
        index, params = choice
        claim = {"round": round_index, "index": index, "params": params}
        self._storage.set_trial_system_attr(trial._trial_id, PROPOSAL_ATTR, claim)
        if not self.shared:
            return dict(params)
        identity = self._identify(params)
        _, claims = self.taken(self.trials(), trial.number)
        if identity not in claims:
            return dict(params)
        self._storage.set_trial_system_attr(trial._trial_id, PROPOSAL_ATTR, None)
        return None
