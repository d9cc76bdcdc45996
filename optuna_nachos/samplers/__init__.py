"""Samplers for the EENN search: the surrogate-assisted NACHOS sampler."""

from optuna_nachos.samplers._nachos import (
    PROPOSAL_ATTR,
    ROUND_ATTR_PREFIX,
    ROUNDS_USER_ATTR,
    SKIPPED_TRAINING_ATTR,
    NachosSampler,
)
from optuna_nachos.samplers._surrogates import SURROGATE_NAMES

__all__ = [
    "PROPOSAL_ATTR",
    "ROUNDS_USER_ATTR",
    "ROUND_ATTR_PREFIX",
    "SKIPPED_TRAINING_ATTR",
    "SURROGATE_NAMES",
    "NachosSampler",
]
