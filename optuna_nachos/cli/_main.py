"""Entry point of the ``optuna-nachos`` command.

The command is thin: it parses arguments and hands them to a subcommand handler. A subcommand
is registered by a function that receives the ``subparsers`` object, adds its parser and sets
``handler`` (a callable taking the parsed :class:`argparse.Namespace` and returning an exit
status) with ``parser.set_defaults(handler=...)``.

Errors in what the user gave (:class:`~optuna_nachos._errors.UserError`: a wrong flag, name,
file or setting) print one line and exit with status 2; any other exception is a bug and
prints its traceback (exit status 1). ``--verbose`` shows the traceback of user errors too,
and the package's debug messages.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import traceback
from collections.abc import Callable, Iterator

from optuna_nachos._errors import UserError
from optuna_nachos._logging import LOGGER_NAME
from optuna_nachos._version import __version__
from optuna_nachos.cli._benchmark import add_benchmark_parser
from optuna_nachos.cli._commands import add_best_parser, add_export_parser, add_search_parser
from optuna_nachos.cli._format import data_error_in_flags, logger_level
from optuna_nachos.cli._latency import add_latency_parser
from optuna_nachos.cli._supernet import add_supernet_parser
from optuna_nachos.cli._view import add_dashboard_parser, add_report_parser

PROG = "optuna-nachos"

#: Functions that add one subcommand each to the ``subparsers`` object, in ``--help`` order.
SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    add_supernet_parser,
    add_search_parser,
    add_best_parser,
    add_export_parser,
    add_dashboard_parser,
    add_report_parser,
    add_benchmark_parser,
    add_latency_parser,
]

USER_ERROR_STATUS = 2
"""Exit status of a user error (as :mod:`argparse` exits on a wrong flag)."""
BUG_STATUS = 1
"""Exit status of an unexpected error, printed with its traceback."""
STORAGE_LOST_STATUS = 75
"""Exit status when the storage stops answering (``EX_TEMPFAIL``: start the worker again once
it is back)."""


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``optuna-nachos`` command."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Search early-exit neural networks under hardware constraints with Optuna "
        "(the NACHOS method).",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    _add_verbose(parser, default=False)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for add_subcommand in SUBCOMMANDS:
        add_subcommand(subparsers)
    for command in _nested_parsers(parser)[1:]:
        # Also after the command's name; SUPPRESS keeps a flag given before it.
        _add_verbose(command, default=argparse.SUPPRESS)
    return parser


def _add_verbose(parser: argparse.ArgumentParser, *, default: object) -> None:
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=default,
        help="show debug messages, and the traceback of every error (default: off)",
    )


def _nested_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """``parser`` and the parsers of its commands and their actions, depth first."""
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for nested in dict.fromkeys(action.choices.values()):
                found += _nested_parsers(nested)
    return found


@contextlib.contextmanager
def _debug_messages(enabled: bool) -> Iterator[None]:
    """Let the package's debug messages through Optuna's handler while a command runs."""
    if not enabled:
        yield
        return
    import optuna  # noqa: F401  (sets up Optuna's handler, which prints the messages)

    with logger_level(LOGGER_NAME, logging.DEBUG):
        yield


def _error_line(error: BaseException, args: argparse.Namespace | None = None) -> str:
    # KeyError quotes its message, as a repr.
    text = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
    if type(error).__module__.startswith("optuna_nachos.data"):
        # The data layer words its errors for load_dataset's arguments.
        text = data_error_in_flags(text, download_flag=hasattr(args, "download"))
    return text


def main(argv: list[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: The arguments without the program name; ``None`` reads ``sys.argv[1:]``.

    Returns:
        The exit status: 0 on success, 2 on a user error (one line on standard error) or when
        no subcommand is given (the help is printed), 1 on an unexpected error (its traceback
        is printed), 75 when the storage stops answering (one line), 130 on Ctrl-C.
        ``--help``, ``--version`` and argument errors exit through :class:`SystemExit`, as
        :mod:`argparse` does.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    verbose = bool(getattr(args, "verbose", False))
    try:
        with _debug_messages(verbose):
            return int(handler(args))
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except UserError as error:
        if verbose:
            traceback.print_exc(file=sys.stderr)
        print(f"{PROG}: error: {_error_line(error, args)}", file=sys.stderr)
        return USER_ERROR_STATUS
    except Exception as error:
        from optuna_nachos.study import storage_outage

        outage = storage_outage(error)
        if outage is not None:
            first_line = str(outage).strip().splitlines()[0] if str(outage).strip() else ""
            print(
                f"{PROG}: error: lost the storage ({type(outage).__name__}: {first_line}); "
                "start the command again once it answers: the trial it was running is failed "
                "and run again by the next worker that starts",
                file=sys.stderr,
            )
            return STORAGE_LOST_STATUS
        traceback.print_exc(file=sys.stderr)
        print(
            f"{PROG}: internal error (the traceback above); please report it with the command "
            "you ran",
            file=sys.stderr,
        )
        return BUG_STATUS
