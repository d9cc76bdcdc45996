"""The package logs as Optuna does: under Optuna's logger, governed by its verbosity."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from pathlib import Path

from optuna_nachos._logging import LOGGER_NAME, OPTUNA_LOGGER, get_logger

PACKAGE = Path(__file__).resolve().parents[1] / "optuna_nachos"


def test_module_loggers_are_children_of_optunas():
    logger = get_logger("optuna_nachos.samplers._nachos")
    assert logger.name == f"{LOGGER_NAME}.samplers._nachos"
    parents = []
    while logger is not None:
        parents.append(logger.name)
        logger = logger.parent
    assert OPTUNA_LOGGER in parents and LOGGER_NAME in parents
    assert get_logger(logging.getLogger(LOGGER_NAME).name) is logging.getLogger(LOGGER_NAME)


def test_every_module_logs_through_the_package_helper():
    loose = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "_logging.py":
            continue
        text = path.read_text()
        for match in re.finditer(r"^(\w*logger) = (.+)$", text, flags=re.MULTILINE):
            if match.group(2) != "get_logger(__name__)":
                loose.append(f"{path.relative_to(PACKAGE)}: {match.group(0)}")
        if re.search(r"get_?[lL]ogger\(\s*[\"']optuna_nachos", text):
            loose.append(f"{path.relative_to(PACKAGE)}: a logger by literal name")
    assert not loose


_SCRIPT = """
import optuna
from optuna_nachos._logging import get_logger

log = get_logger("optuna_nachos.train._trainer")
log.info("info at the default verbosity")
optuna.logging.set_verbosity(optuna.logging.WARNING)
log.info("info at WARNING")
log.warning("a warning at WARNING")
optuna.logging.set_verbosity(optuna.logging.DEBUG)
log.debug("debug at DEBUG")
"""


def test_optunas_verbosity_and_handler_govern_the_package_messages():
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT], capture_output=True, text=True, timeout=120, check=True
    )
    lines = result.stderr.splitlines()
    # Optuna's handler and format: "[I 2026-01-01 00:00:00,000] message".
    assert re.fullmatch(r"\[I [-0-9: ,]+\] info at the default verbosity", lines[0])
    assert not any("info at WARNING" in line for line in lines)
    assert any(line.startswith("[W ") and "a warning at WARNING" in line for line in lines)
    assert any(line.startswith("[D ") and "debug at DEBUG" in line for line in lines)


def test_the_layers_without_optuna_log_without_importing_it():
    code = (
        "import sys\n"
        "from optuna_nachos._logging import get_logger\n"
        "get_logger('optuna_nachos.data._paths').warning('no optuna here')\n"
        "print('optuna' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "False"
    assert "no optuna here" in result.stderr
