"""The command line reads well: help and defaults of every flag, a description per command,
and a ``--help`` that does not import PyTorch."""

import argparse
import subprocess
import sys

import pytest

from optuna_nachos.cli import build_parser
from optuna_nachos.cli._commands import STUDY_NAME_HELP, TRAIN_DEFAULTS


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


COMMANDS = sorted(_subparsers())


def test_every_command_is_listed():
    assert COMMANDS == [
        "benchmark",
        "best",
        "dashboard",
        "export",
        "latency",
        "report",
        "search",
        "supernet",
    ]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_a_description(command):
    parser = _subparsers()[command]
    assert parser.description and len(parser.description) > 30
    assert parser.description.split()[0] in parser.format_help()


def _option_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """``parser`` and the parsers of its nested actions (``supernet train``, ...)."""
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for nested in action.choices.values():
                found += _option_parsers(nested)
    return found


@pytest.mark.parametrize("command", COMMANDS)
def test_every_flag_has_help_and_shows_its_default(command):
    for parser in _option_parsers(_subparsers()[command]):
        _check_flags(command, parser)


def _check_flags(command: str, parser: argparse.ArgumentParser) -> None:
    formatter = parser._get_formatter()
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        flag = action.option_strings[0]
        assert action.help, f"{command} {flag} has no help"
        shown = formatter._get_help_string(action) % {"default": action.default}
        if action.required or action.default is False or action.default is argparse.SUPPRESS:
            continue  # required flags and switches have no default to show
        assert "default" in shown, f"{command} {flag} does not show its default: {shown!r}"
        if action.default not in (None, []):
            assert str(action.default) in shown


def test_search_help_shows_the_values_of_the_defaults():
    help_text = " ".join(_subparsers()["search"].format_help().split())
    assert "(default: motpe)" in help_text
    assert "(default: sqlite:///nachos.db)" in help_text
    assert "(default: auto)" in help_text
    assert "(default: 10, the reference's)" in help_text


def test_train_defaults_shown_are_train_configs():
    from optuna_nachos.train import TrainConfig

    config = TrainConfig()
    for key, value in TRAIN_DEFAULTS.items():
        assert getattr(config, key) == value


def test_study_name_default_is_the_same_for_every_reading_command():
    parsers = _subparsers()
    for command in ("best", "export", "report"):
        action = next(a for a in parsers[command]._actions if "--study-name" in a.option_strings)
        assert action.help == STUDY_NAME_HELP
        assert action.default is None and not action.required


def test_help_does_not_import_torch_or_optuna():
    code = (
        "import sys\n"
        "from optuna_nachos.cli import build_parser\n"
        "build_parser().format_help()\n"
        "print(sorted(m for m in ('torch', 'optuna', 'sklearn', 'plotly') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert result.stdout.strip() == "[]"


def test_the_storage_default_is_the_study_helpers():
    from optuna_nachos.cli._commands import DEFAULT_STORAGE
    from optuna_nachos.study import DEFAULT_STORAGE as STUDY_DEFAULT

    assert DEFAULT_STORAGE == STUDY_DEFAULT


def test_lazy_choices_are_the_samplers_and_the_registered_spaces():
    from optuna_nachos.space import list_spaces
    from optuna_nachos.study import SAMPLER_NAMES

    actions = {a.dest: a for a in _subparsers()["search"]._actions}
    assert list(actions["sampler"].choices) == list(SAMPLER_NAMES)
    assert list(actions["space"].choices) == list_spaces()
    help_text = " ".join(_subparsers()["search"].format_help().split())
    assert "one of: " + ", ".join(list_spaces()) in help_text
    assert "one of: " + ", ".join(SAMPLER_NAMES) in help_text


def test_lazy_choices_are_the_calibrations_and_test_evaluations():
    from optuna_nachos.objective import TEST_EVALUATIONS
    from optuna_nachos.train import SEARCH_CALIBRATIONS

    actions = {a.dest: a for a in _subparsers()["search"]._actions}
    assert list(actions["calibration"].choices) == list(SEARCH_CALIBRATIONS)
    assert list(actions["test_evaluation"].choices) == list(TEST_EVALUATIONS)
    assert "global" in actions["calibration"].choices
    assert "sometimes" not in actions["test_evaluation"].choices


def test_public_names_load_on_first_use():
    import optuna_nachos as nachos

    assert nachos.build_eenn.__module__.startswith("optuna_nachos.models")
    assert "build_eenn" in dir(nachos) and "visualization" in dir(nachos)
    assert nachos.data.list_datasets()
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = nachos.nothing
