"""Round diagnostics of the NACHOS sampler: stored one study attribute per round, read in order."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from optuna.storages import BaseStorage
from optuna.study import Study

from optuna_nachos._logging import get_logger

_logger = get_logger(__name__)

ROUND_USER_ATTR_PREFIX = "nachos_round:"
"""Prefix of the study user attributes of each round's diagnostics (``nachos_round:NNNNNN``)."""

ROUNDS_USER_ATTR = "nachos_rounds"
"""Study user attribute of earlier versions, listing every round's diagnostics in one value
(it grew with every round); :func:`round_diagnostics` still reads it."""


def round_user_key(index: int) -> str:
    """The study user attribute of round ``index``'s diagnostics."""
    return f"{ROUND_USER_ATTR_PREFIX}{index:06d}"


def store_round_diagnostics(
    storage: BaseStorage, study_id: int, index: int, diagnostics: Mapping[str, Any]
) -> None:
    """Store the diagnostics of round ``index`` in their own study user attribute.

    One value per round keeps every stored value small (its size depends on the round's
    settings, not on how many rounds came before), within the text columns of every storage.
    """
    storage.set_study_user_attr(study_id, round_user_key(index), dict(diagnostics))


def round_diagnostics(study: Study) -> list[dict[str, Any]]:
    """The diagnostics of every NACHOS round of ``study``, in round order.

    Each round's diagnostics (the surrogate chosen for each predicted quantity and its
    cross-validated Kendall tau, the number of trials and candidates, the predicted objectives
    of the proposals, the round's time, and ``"fallback"`` when the round only explored) are
    stored in the study user attribute ``nachos_round:NNNNNN``. Studies of earlier versions,
    which kept them all in the single attribute ``nachos_rounds``, are read too.

    Example:
        .. code-block:: python

            from optuna_nachos.samplers import round_diagnostics

            for info in round_diagnostics(study):
                print(info["round"], info["surrogates"]["accuracy"]["kendall_tau"])

    Args:
        study: A study searched by :class:`~optuna_nachos.samplers.NachosSampler` (any
            object with its ``user_attrs`` will do).

    Returns:
        One dictionary per round, ordered by round index; empty when no round ran.
    """
    attrs = study.user_attrs
    by_round: dict[int, dict[str, Any]] = {}
    old = attrs.get(ROUNDS_USER_ATTR)
    if isinstance(old, list):
        for position, info in enumerate(old):
            if isinstance(info, dict):
                index = info.get("round", position)
                by_round[index if isinstance(index, int) else position] = info
    for key, value in attrs.items():
        suffix = key[len(ROUND_USER_ATTR_PREFIX) :]
        if key.startswith(ROUND_USER_ATTR_PREFIX) and suffix.isdigit() and isinstance(value, dict):
            by_round[int(suffix)] = value
    return [by_round[index] for index in sorted(by_round)]


def log_round(diagnostics: Mapping[str, Any]) -> None:
    """Log a new round at INFO: its proposals, surrogates and candidates."""
    _logger.info(
        "NACHOS round %d: %d proposals from %d trials in %.1f s; surrogates %s; "
        "%d candidates (%d predicted feasible).",
        diagnostics["round"],
        diagnostics["n_proposals"],
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
