"""One line for the user's mistakes, a traceback for bugs, and ``--verbose``."""

from __future__ import annotations

import logging

import pytest

from optuna_nachos._errors import UserError
from optuna_nachos._logging import LOGGER_NAME
from optuna_nachos.cli import _commands, main
from optuna_nachos.config import ConfigError


def _raising(error: Exception):
    def handler(args):
        raise error

    return handler


def test_a_user_error_is_one_line_and_exit_2(monkeypatch, capsys):
    monkeypatch.setattr(_commands, "run_best_command", _raising(ConfigError("depths must be 5")))
    assert main(["best"]) == 2
    err = capsys.readouterr().err
    assert err == "optuna-nachos: error: depths must be 5\n"


def test_a_bug_prints_its_traceback_and_exits_1(monkeypatch, capsys):
    # A plain ValueError is not a user error: it comes from a bug, and keeps its traceback.
    monkeypatch.setattr(_commands, "run_best_command", _raising(ValueError("internal")))
    assert main(["best"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert "ValueError: internal" in err
    assert "internal error" in err.splitlines()[-1]


def _lost_connection() -> Exception:
    import sqlalchemy.exc

    driver = sqlalchemy.exc.OperationalError(
        "SELECT 1", {}, Exception("server closed the connection unexpectedly\nmore")
    )
    try:
        raise driver
    except sqlalchemy.exc.OperationalError:
        try:
            raise RuntimeError("while telling the trial")  # the lost connection is its context
        except RuntimeError as error:
            return error


@pytest.mark.parametrize("kind", ["optuna", "driver"])
def test_a_lost_storage_is_one_line_and_exit_75(monkeypatch, capsys, kind):
    import optuna

    error = (
        optuna.exceptions.StorageInternalError("An exception is raised during the commit.")
        if kind == "optuna"
        else _lost_connection()
    )
    monkeypatch.setattr(_commands, "run_best_command", _raising(error))
    assert main(["best"]) == 75
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("optuna-nachos: error: lost the storage (")
    assert "start the command again once it answers" in err
    if kind == "driver":
        assert "OperationalError" in err and "server closed the connection" in err


@pytest.mark.parametrize("where", ["before", "after"])
def test_verbose_shows_the_traceback_of_a_user_error(monkeypatch, capsys, where):
    monkeypatch.setattr(_commands, "run_best_command", _raising(ConfigError("bad")))
    argv = ["--verbose", "best"] if where == "before" else ["best", "--verbose"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert err.splitlines()[-1] == "optuna-nachos: error: bad"


def test_verbose_lets_the_debug_messages_through_while_the_command_runs(monkeypatch):
    package = logging.getLogger(LOGGER_NAME)
    level = package.level
    seen = []

    def handler(args):
        seen.append(package.getEffectiveLevel())
        return 0

    monkeypatch.setattr(_commands, "run_best_command", handler)
    assert main(["-v", "best"]) == 0
    assert main(["best"]) == 0
    assert seen[0] == logging.DEBUG and seen[1] != logging.DEBUG
    assert package.level == level


def test_the_package_errors_are_user_errors():
    from optuna_nachos.benchmark import SuiteError
    from optuna_nachos.cli._format import CommandError
    from optuna_nachos.data import DatasetCorruptError, DatasetNotFoundError, UnknownDatasetError
    from optuna_nachos.supernet import SupernetError

    for error in (
        CommandError,
        ConfigError,
        SuiteError,
        SupernetError,
        DatasetNotFoundError,
        DatasetCorruptError,
        UnknownDatasetError,
    ):
        assert issubclass(error, UserError), error
    # and still the built-in errors they always were
    assert issubclass(ConfigError, ValueError) and issubclass(UnknownDatasetError, KeyError)


def test_an_unknown_dataset_from_the_data_layer_is_one_line(monkeypatch, capsys):
    from optuna_nachos.data import UnknownDatasetError

    monkeypatch.setattr(
        _commands, "run_best_command", _raising(UnknownDatasetError("no dataset 'x'; known: a"))
    )
    assert main(["best"]) == 2
    assert capsys.readouterr().err == "optuna-nachos: error: no dataset 'x'; known: a\n"
