"""The ``dashboard`` and ``report`` commands, and the dashboard refresh of ``search``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from optuna_nachos.cli._commands import (
    DEFAULT_ARTIFACTS,
    DEFAULT_STORAGE,
    STORAGE_HELP,
    STUDY_NAME_HELP,
    _open,
    resolve_study_name,
)
from optuna_nachos.cli._format import CommandError, HelpFormatter

if TYPE_CHECKING:  # Optuna is imported by the commands, not by ``--help``
    import optuna


def _add_storage_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--storage",
        default=DEFAULT_STORAGE,
        help=STORAGE_HELP,
    )


def add_dashboard_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "dashboard",
        help="serve optuna-dashboard with the EENN figures, a summary note and the constraints",
        description="Refresh the figures and the summary note attached to the EENN studies of "
        "the storage, then serve optuna-dashboard on it, infeasible trials shown as such "
        '(needs optuna-dashboard: pip install "optuna-nachos[dashboard]").',
        formatter_class=HelpFormatter,
    )
    _add_storage_argument(parser)
    parser.add_argument(
        "--study-name", default=None, help="refresh this study only (default: every EENN study)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on")
    parser.add_argument(
        "--artifacts",
        default=DEFAULT_ARTIFACTS,
        help="folder of the trained networks, listed on the trial pages if it exists",
    )
    parser.add_argument(
        "--no-refresh", action="store_true", help="serve without refreshing the attachments"
    )
    parser.set_defaults(handler=run_dashboard_command)


def add_report_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write a study report (one self-contained HTML page, or Markdown)",
        description="Write the report of an EENN study: settings, admissible Pareto front, best "
        "trade-offs and every figure. HTML is one self-contained page that opens offline; "
        "Markdown gets PNG figures next to it (needs kaleido and Chrome or Chromium).",
        formatter_class=HelpFormatter,
    )
    _add_storage_argument(parser)
    parser.add_argument("--study-name", default=None, help=STUDY_NAME_HELP)
    parser.add_argument("--out", required=True, help="file to write, e.g. report.html")
    parser.add_argument(
        "--format",
        choices=("html", "md"),
        default=None,
        help="report format (default: md for a .md file, html otherwise)",
    )
    parser.set_defaults(handler=run_report_command)


def _open_existing(args: argparse.Namespace) -> optuna.storages.BaseStorage:
    """Open the storage, refusing to create a new storage file (a typo in --storage)."""
    from optuna_nachos.study import storage_file

    path = storage_file(args.storage)
    if path is not None and not path.is_file():
        raise CommandError(
            f"no storage file {path}; pass the --storage of your search "
            "(run 'optuna-nachos search' first)"
        )
    return _open(args)


def _study_names(storage: optuna.storages.BaseStorage) -> list[str]:
    import optuna

    return [s.study_name for s in optuna.get_all_study_summaries(storage)]


def _unknown_study(name: str, url: str, names: list[str]) -> CommandError:
    known = ", ".join(names) or "none"
    return CommandError(f"no study {name!r} in {url} (studies: {known}); check --study-name")


def _import_dashboard() -> None:
    from optuna_nachos.dashboard import import_dashboard

    try:
        import_dashboard()
    except ImportError as error:
        raise CommandError(str(error)) from None


def dashboard_callback():
    """The ``search --dashboard`` callback; a one-line error when optuna-dashboard is missing."""
    _import_dashboard()
    from optuna_nachos.dashboard import DashboardCallback

    return DashboardCallback()


def _directions() -> tuple[str, ...]:
    from optuna_nachos.record import DIRECTIONS

    return tuple(DIRECTIONS)


def _is_eenn_study(study: optuna.Study) -> bool:
    return [d.name.lower() for d in study.directions] == list(_directions())


def run_dashboard_command(args: argparse.Namespace) -> int:
    _import_dashboard()
    import optuna

    from optuna_nachos.dashboard import attach, run_dashboard

    storage = _open_existing(args)
    names = _study_names(storage)
    if args.study_name is not None and args.study_name not in names:
        raise _unknown_study(args.study_name, args.storage, names)
    selected = names if args.study_name is None else [args.study_name]
    study_ids = {}
    for name in selected:
        study = optuna.load_study(study_name=name, storage=storage)
        study_ids[name] = study._study_id
        if args.no_refresh:
            continue
        if not _is_eenn_study(study):
            print(f"Skipped study {name!r}: not an EENN study (directions {_directions()}).")
            continue
        attachments = attach(study)
        print(
            f"Refreshed study {name!r}: {len(attachments.graph_ids)} figures and the summary note."
        )
    artifact_store = None
    if Path(args.artifacts).is_dir():
        artifact_store = optuna.artifacts.FileSystemArtifactStore(args.artifacts)
    url = f"http://{args.host}:{args.port}/dashboard/"
    if args.study_name is not None:
        url += f"studies/{study_ids[args.study_name]}"
    print(f"Serving optuna-dashboard at {url} (Ctrl+C to stop).", flush=True)
    try:
        run_dashboard(storage, host=args.host, port=args.port, artifact_store=artifact_store)
    except OSError as error:  # port in use, address not available
        reason = error.strerror or error
        raise CommandError(f"cannot serve on {args.host}:{args.port}: {reason}") from None
    except KeyboardInterrupt:
        print("Stopped.", file=sys.stderr)
    return 0


def run_report_command(args: argparse.Namespace) -> int:
    import optuna

    from optuna_nachos.report import write_report

    storage = _open_existing(args)
    names = _study_names(storage)
    name = resolve_study_name(args.study_name, names)
    if name not in names:
        raise _unknown_study(name, args.storage, names)
    study = optuna.load_study(study_name=name, storage=storage)
    if not _is_eenn_study(study):
        raise CommandError(f"study {name!r} is not an EENN study (directions {_directions()})")
    out = Path(args.out)
    report_format = args.format or ("md" if out.suffix.lower() == ".md" else "html")
    path = write_report(study, out, format=report_format)
    print(f"Wrote the {report_format} report of study {name!r} to {path}.")
    return 0
