"""Settings shared by the sampler tests."""

from collections.abc import Iterator

import optuna
import pytest


@pytest.fixture(autouse=True)
def _quiet_optuna() -> Iterator[None]:
    """Optuna's INFO line per trial off during a test, and its verbosity restored after."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(verbosity)
