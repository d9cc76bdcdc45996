"""Entry point of the ``optuna-nachos`` command.

The command is thin: it parses arguments and hands them to a subcommand handler. A subcommand
is registered by a function that receives the ``subparsers`` object, adds its parser and sets
``handler`` (a callable taking the parsed :class:`argparse.Namespace` and returning an exit
status) with ``parser.set_defaults(handler=...)``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from optuna_nachos._version import __version__
from optuna_nachos.cli._benchmark import add_benchmark_parser
from optuna_nachos.cli._commands import add_best_parser, add_export_parser, add_search_parser
from optuna_nachos.cli._format import CommandError
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

# Errors that mean "wrong input": printed as one line, without a traceback.
_USER_ERRORS: tuple[type[Exception], ...] = (CommandError, ValueError, KeyError, FileNotFoundError)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``optuna-nachos`` command."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Search early-exit neural networks under hardware constraints with Optuna "
        "(the NACHOS method).",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for add_subcommand in SUBCOMMANDS:
        add_subcommand(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: The arguments without the program name; ``None`` reads ``sys.argv[1:]``.

    Returns:
        The exit status: 0 on success, 2 when no subcommand is given (the help is printed).
        ``--help``, ``--version`` and argument errors exit through :class:`SystemExit`, as
        :mod:`argparse` does.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(handler(args))
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except _USER_ERRORS as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 2
