"""The ``search``, ``best`` and ``export`` commands."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import optuna

from optuna_nachos.cli._format import (
    CommandError,
    format_front,
    non_negative_int,
    parse_fraction,
    parse_macs,
    parse_seconds,
    positive_int,
)
from optuna_nachos.study import DEFAULT_STORAGE, SAMPLER_NAMES

PROG = "optuna-nachos"

DEFAULT_ARTIFACTS = "nachos_artifacts"
ARTIFACTS_ATTR = "nachos_artifacts"
"""Study user attribute: the absolute path of the folder of the trained networks."""
INTERRUPTED_STATUS = 130
"""Exit status of a search stopped by Ctrl-C (128 + SIGINT, as shells report it)."""
UNFINISHED_STATUS = 1
"""Exit status of a search that ended without reaching ``--n-trials`` finished trials."""


def _add_storage_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--storage",
        default=DEFAULT_STORAGE,
        help=f"Optuna storage URL (default {DEFAULT_STORAGE}; journal:///FILE for a journal file)",
    )
    parser.add_argument(
        "--study-name", default=None, help="study name (default: 'nachos', or the only study)"
    )
    parser.add_argument(
        "--artifacts",
        default=None,
        help=f"folder of the trained networks (default: the folder the study records, else "
        f"{DEFAULT_ARTIFACTS}/ beside the storage file)",
    )


def add_search_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "search",
        help="run the NACHOS search",
        description="Search early-exit networks: maximize accuracy, minimize average MACs, "
        "under the budget and the accuracy floor.",
    )
    parser.add_argument("--dataset", required=True, help="dataset name, e.g. digits")
    parser.add_argument("--data-root", default=None, help="folder of the dataset files")
    parser.add_argument(
        "--n-trials",
        type=positive_int,
        required=True,
        help="total number of trials the study should reach",
    )
    parser.add_argument(
        "--timeout",
        type=parse_seconds,
        default=None,
        help="stop starting trials after this many seconds",
    )
    parser.add_argument("--sampler", choices=SAMPLER_NAMES, default="motpe")
    parser.add_argument(
        "--startup-trials",
        type=non_negative_int,
        default=None,
        help="random trials before the model-based ones (motpe, gp, nachos; nachos: 100)",
    )
    parser.add_argument(
        "--max-avg-macs",
        type=parse_macs,
        required=True,
        help="budget of average MACs per sample, e.g. 2.7M",
    )
    parser.add_argument(
        "--min-accuracy",
        type=parse_fraction,
        required=True,
        help="accuracy floor as a fraction, e.g. 0.65",
    )
    parser.add_argument("--max-peak-macs", type=parse_macs, default=None)
    parser.add_argument("--max-params", type=positive_int, default=None)
    parser.add_argument(
        "--min-exits",
        type=non_negative_int,
        default=1,
        help="fewest early exits of an admissible network (default 1)",
    )
    parser.add_argument("--space", choices=("mobilenetv3", "edanas"), default="mobilenetv3")
    parser.add_argument("--backbone-epochs", type=non_negative_int, default=None)
    parser.add_argument("--warmup-epochs", type=non_negative_int, default=None)
    parser.add_argument("--exit-epochs", type=non_negative_int, default=None)
    parser.add_argument("--batch-size", type=positive_int, default=None)
    parser.add_argument(
        "--train-subset",
        type=positive_int,
        default=None,
        help="train on this many images only (quick searches)",
    )
    parser.add_argument("--calibration", choices=("search", "nachos"), default="search")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default auto)")
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="torch CPU threads (default: torch's; 1 is often fastest on a busy small machine)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--new-settings",
        action="store_true",
        help="resume a study with other constraints or training settings, recorded as a new "
        "settings version (without it such a rerun is refused)",
    )
    parser.add_argument(
        "--heartbeat",
        type=positive_int,
        default=None,
        help="seconds between heartbeats of a running trial on a database server (default 60); "
        "a trial silent for three heartbeats is failed and retried",
    )
    parser.add_argument(
        "--dashboard",
        action="store_true",
        help="refresh the optuna-dashboard figures and summary note as trials finish",
    )
    _add_storage_arguments(parser)
    parser.set_defaults(handler=run_search_command)


def add_best_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("best", help="print the admissible Pareto front")
    _add_storage_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=run_best_command)


def add_export_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export", help="write a trial's network (config, thresholds, weights) to a folder"
    )
    _add_storage_arguments(parser)
    parser.add_argument("--trial", type=non_negative_int, required=True, help="trial number")
    parser.add_argument("--out", required=True, help="folder to write")
    parser.add_argument(
        "--force", action="store_true", help="replace an export already in the --out folder"
    )
    parser.set_defaults(handler=run_export_command)


def default_artifacts(url: str) -> Path:
    """The default folder of the trained networks: beside the storage file, else here."""
    from optuna_nachos.study._storage import storage_file

    path = storage_file(url)
    base = Path.cwd() if path is None else path.parent
    return (base / DEFAULT_ARTIFACTS).absolute()


def artifacts_folder(args: argparse.Namespace, study: optuna.Study | None = None) -> Path:
    """The folder of the trained networks: ``--artifacts``, else the one the study records,
    else :func:`default_artifacts`."""
    if args.artifacts is not None:
        folder = Path(args.artifacts)
    elif study is not None and study.user_attrs.get(ARTIFACTS_ATTR):
        folder = Path(study.user_attrs[ARTIFACTS_ATTR])
    else:
        folder = default_artifacts(args.storage)
    if folder.exists() and not folder.is_dir():
        raise CommandError(f"--artifacts {folder} is a file, not a folder; pass a folder")
    return folder.absolute()


def _artifact_store(folder: Path, *, create: bool) -> optuna.artifacts.FileSystemArtifactStore:
    if create:
        folder.mkdir(parents=True, exist_ok=True)
    return optuna.artifacts.FileSystemArtifactStore(str(folder))


def _open(args: argparse.Namespace, *, must_exist: bool = False):
    from optuna_nachos.study import open_storage

    heartbeat = getattr(args, "heartbeat", None)
    options = {} if heartbeat is None else {"heartbeat_interval": heartbeat}
    try:
        storage = open_storage(args.storage, must_exist=must_exist, **options)
    except FileNotFoundError as error:
        raise CommandError(str(error)) from None
    except ValueError as error:
        raise CommandError(f"{error}; check --storage") from None
    return storage


def _load_study(args: argparse.Namespace) -> optuna.Study:
    storage = _open(args, must_exist=True)
    names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    name = args.study_name
    if name is None:
        name = "nachos" if "nachos" in names or len(names) != 1 else names[0]
    if name not in names:
        known = ", ".join(names) or "none"
        raise CommandError(
            f"no study {name!r} in {args.storage} (studies: {known}); "
            "pass --study-name or --storage"
        )
    return optuna.load_study(study_name=name, storage=storage)


def _check_device(device: str | None) -> None:
    """Refuse a device this machine lacks before anything is created."""
    if device is None or device == "auto":
        return
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError):
        raise CommandError(f"unknown device {device!r}; use cpu, cuda, cuda:1, mps") from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise CommandError(
                f"--device {device}: no CUDA GPU is available here; use --device cpu"
            )
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise CommandError(
                f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) here"
            )
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise CommandError(f"--device {device}: MPS is not available here; use --device cpu")


def run_search_command(args: argparse.Namespace) -> int:
    from optuna_nachos.data import list_datasets
    from optuna_nachos.objective import NachosObjective
    from optuna_nachos.results import admissible_trials, hypervolume
    from optuna_nachos.space import get_space
    from optuna_nachos.study import (
        StudyLock,
        create_sampler,
        create_study,
        derive_seed,
        finished_trials,
        register_worker,
        run_search,
        storage_lock_path,
    )
    from optuna_nachos.train import TrainConfig

    if args.dataset not in list_datasets() and not args.dataset.startswith("imagefolder:"):
        raise CommandError(
            f"unknown dataset {args.dataset!r}; choose one of {', '.join(list_datasets())}"
        )
    _check_device(args.device)
    if args.startup_trials is not None and args.sampler not in ("motpe", "gp", "nachos"):
        raise CommandError(
            f"--startup-trials applies to the motpe, gp and nachos samplers, not {args.sampler}"
        )
    if args.artifacts is not None:
        artifacts_folder(args)  # a file named by --artifacts: refused before any work
    overrides = {
        key: value
        for key, value in {
            "backbone_epochs": args.backbone_epochs,
            "warmup_epochs": args.warmup_epochs,
            "exit_epochs": args.exit_epochs,
            "batch_size": args.batch_size,
            "device": args.device,
        }.items()
        if value is not None
    }
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    callbacks = []
    if args.dashboard:
        from optuna_nachos.cli._view import dashboard_callback

        callbacks.append(dashboard_callback())
    train_config = TrainConfig(seed=args.seed, progress=False, **overrides)
    space = get_space(args.space, min_exits=args.min_exits)
    objective = NachosObjective(
        dataset=args.dataset,
        data_root=args.data_root,
        space=space,
        max_avg_macs=args.max_avg_macs,
        min_accuracy=args.min_accuracy,
        max_peak_macs=args.max_peak_macs,
        max_params=args.max_params,
        train_config=train_config,
        calibration=args.calibration,
        train_subset=args.train_subset,
    )
    storage = _open(args)
    sampler_kwargs = {}
    if args.sampler == "nachos":
        sampler_kwargs = objective.sampler_options()
    if args.startup_trials is not None:
        sampler_kwargs["n_startup_trials"] = args.startup_trials
    lock_path = storage_lock_path(args.storage)
    study_name = args.study_name or "nachos"
    with StudyLock(storage, study_name, lock_path=lock_path)():
        # Under the lock: workers started together create the study once, and each gets its
        # own worker number, hence its own sampler seed.
        study = create_study(
            study_name=study_name,
            storage=storage,
            settings={**objective.settings(), "sampler": args.sampler, "seed": args.seed},
            new_settings=args.new_settings,
        )
        folder = artifacts_folder(args, study)
        if study.user_attrs.get(ARTIFACTS_ATTR) != str(folder):
            study.set_user_attr(ARTIFACTS_ATTR, str(folder))
        worker, n_existing = register_worker(study)
    seed = derive_seed(args.seed, worker, n_existing)
    study.sampler = create_sampler(args.sampler, space=space, seed=seed, **sampler_kwargs)
    objective.artifact_store = _artifact_store(folder, create=True)
    try:
        run_search(
            study,
            objective,
            n_trials=args.n_trials,
            timeout=args.timeout,
            lock_path=lock_path,
            show_progress_bar=not args.no_progress,
            callbacks=callbacks,
        )
    except KeyboardInterrupt:
        print(
            f"{PROG}: interrupted: {finished_trials(study)} of {args.n_trials} trials finished "
            f"in study {study.study_name!r}; rerun the same command to resume.",
            file=sys.stderr,
        )
        return INTERRUPTED_STATUS
    front = admissible_trials(study)
    finished = finished_trials(study)
    print(
        f"Admissible Pareto front of study {study.study_name!r} "
        f"({finished} finished trials, hypervolume {hypervolume(study):.4f}):"
    )
    print(format_front(front))
    if finished < args.n_trials:
        failed = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.FAIL,)))
        why = "the timeout passed" if args.timeout is not None else "trials kept failing"
        print(
            f"{PROG}: search ended unfinished ({why}): {finished} of {args.n_trials} trials "
            f"finished, {failed} failed (see their fail_reason); rerun to continue.",
            file=sys.stderr,
        )
        return UNFINISHED_STATUS
    return 0


def run_best_command(args: argparse.Namespace) -> int:
    from optuna_nachos.results import admissible_trials

    study = _load_study(args)
    print(format_front(admissible_trials(study), as_json=args.json))
    return 0


def run_export_command(args: argparse.Namespace) -> int:
    from optuna.artifacts.exceptions import ArtifactNotFound

    from optuna_nachos.results import export_eenn, load_eenn

    study = _load_study(args)
    trials = [t for t in study.get_trials(deepcopy=False) if t.number == args.trial]
    if not trials:
        raise CommandError(f"study {study.study_name!r} has no trial {args.trial}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CommandError(f"--out {out} is a file; pass a folder to write the network into")
    folder = artifacts_folder(args, study)
    if not folder.is_dir():
        raise CommandError(
            f"no artifacts folder {folder} (the trained networks of the search); pass --artifacts"
        )
    try:
        deployed = load_eenn(trials[0], artifact_store=_artifact_store(folder, create=False))
    except (ValueError, FileNotFoundError) as error:
        raise CommandError(str(error).rstrip(".")) from None
    except ArtifactNotFound:
        raise CommandError(
            f"the network of trial {args.trial} is not in {folder}; pass the --artifacts folder "
            "of the search"
        ) from None
    metadata = {
        k: v
        for k, v in deployed.metadata.items()
        if k not in ("num_classes", "in_channels", "format_version")
    }
    try:
        written = export_eenn(
            out,
            deployed.model,
            deployed.thresholds,
            in_channels=int(deployed.metadata["in_channels"]),
            metadata=metadata,
            overwrite=args.force,
        )
    except FileExistsError as error:
        raise CommandError(f"{error}; pass --force to replace it") from None
    print(json.dumps({"trial": args.trial, "out": str(written)}))
    return 0
