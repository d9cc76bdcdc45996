"""Samplers for the EENN search: the surrogate-assisted NACHOS sampler."""

from optuna_nachos.samplers._claims import PROPOSAL_ATTR, ROUND_ATTR_PREFIX
from optuna_nachos.samplers._diagnostics import (
    ROUND_USER_ATTR_PREFIX,
    ROUNDS_USER_ATTR,
    round_diagnostics,
)
from optuna_nachos.samplers._nachos import NachosSampler
from optuna_nachos.samplers._round import SKIPPED_TRAINING_ATTR
from optuna_nachos.samplers._surrogates import SURROGATE_NAMES

__all__ = [
    "PROPOSAL_ATTR",
    "ROUNDS_USER_ATTR",
    "ROUND_ATTR_PREFIX",
    "ROUND_USER_ATTR_PREFIX",
    "SKIPPED_TRAINING_ATTR",
    "SURROGATE_NAMES",
    "NachosSampler",
    "round_diagnostics",
]
