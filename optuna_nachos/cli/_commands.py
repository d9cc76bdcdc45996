"""The ``search``, ``best`` and ``export`` commands."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import optuna

from optuna_nachos.cli._format import (
    CommandError,
    format_front,
    non_negative_int,
    parse_fraction,
    parse_macs,
    positive_int,
)
from optuna_nachos.study import DEFAULT_STORAGE, SAMPLER_NAMES

DEFAULT_ARTIFACTS = "nachos_artifacts"


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
        default=DEFAULT_ARTIFACTS,
        help=f"folder of the trained networks (default {DEFAULT_ARTIFACTS}/)",
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
        "--timeout", type=float, default=None, help="stop starting trials after this many seconds"
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
    parser.set_defaults(handler=run_export_command)


def _artifact_store(folder: str) -> optuna.artifacts.FileSystemArtifactStore:
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    return optuna.artifacts.FileSystemArtifactStore(str(path))


def _open(args: argparse.Namespace):
    from optuna_nachos.study import open_storage

    try:
        storage = open_storage(args.storage)
    except ValueError as error:
        raise CommandError(f"{error}; check --storage") from None
    return storage


def _load_study(args: argparse.Namespace) -> optuna.Study:
    storage = _open(args)
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


def run_search_command(args: argparse.Namespace) -> int:
    from optuna_nachos.data import list_datasets
    from optuna_nachos.objective import NachosObjective
    from optuna_nachos.results import admissible_trials, hypervolume
    from optuna_nachos.space import get_space
    from optuna_nachos.study import create_sampler, create_study, run_search, storage_lock_path
    from optuna_nachos.train import TrainConfig

    if args.dataset not in list_datasets() and not args.dataset.startswith("imagefolder:"):
        raise CommandError(
            f"unknown dataset {args.dataset!r}; choose one of {', '.join(list_datasets())}"
        )
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
    storage = _open(args)
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
        artifact_store=_artifact_store(args.artifacts),
    )
    sampler_kwargs = {}
    if args.sampler == "nachos":
        sampler_kwargs = objective.sampler_options()
    if args.startup_trials is not None:
        if args.sampler not in ("motpe", "gp", "nachos"):
            raise CommandError(
                f"--startup-trials applies to the motpe, gp and nachos samplers, not {args.sampler}"
            )
        sampler_kwargs["n_startup_trials"] = args.startup_trials
    sampler = create_sampler(args.sampler, space=space, seed=args.seed, **sampler_kwargs)
    study = create_study(
        study_name=args.study_name or "nachos",
        storage=storage,
        sampler=sampler,
        settings={**objective.settings(), "sampler": args.sampler, "seed": args.seed},
    )
    run_search(
        study,
        objective,
        n_trials=args.n_trials,
        timeout=args.timeout,
        lock_path=storage_lock_path(args.storage),
        show_progress_bar=not args.no_progress,
        callbacks=callbacks,
    )
    front = admissible_trials(study)
    print(
        f"Admissible Pareto front of study {study.study_name!r} "
        f"({len(study.trials)} trials, hypervolume on validation {hypervolume(study):.4f}):"
    )
    print(format_front(front))
    return 0


def run_best_command(args: argparse.Namespace) -> int:
    from optuna_nachos.results import admissible_trials
    from optuna_nachos.study import study_protocol

    study = _load_study(args)
    protocol = study_protocol(study)
    if protocol.n_legacy and not args.json:
        print(protocol.note)
    print(format_front(admissible_trials(study), as_json=args.json))
    return 0


def run_export_command(args: argparse.Namespace) -> int:
    from optuna_nachos.results import export_eenn, load_eenn

    study = _load_study(args)
    trials = [t for t in study.get_trials(deepcopy=False) if t.number == args.trial]
    if not trials:
        raise CommandError(f"study {study.study_name!r} has no trial {args.trial}")
    try:
        deployed = load_eenn(trials[0], artifact_store=_artifact_store(args.artifacts))
    except (ValueError, FileNotFoundError) as error:
        raise CommandError(str(error).rstrip(".")) from None
    metadata = {
        k: v
        for k, v in deployed.metadata.items()
        if k not in ("num_classes", "in_channels", "format_version")
    }
    out = export_eenn(
        args.out,
        deployed.model,
        deployed.thresholds,
        in_channels=int(deployed.metadata["in_channels"]),
        metadata=metadata,
    )
    print(json.dumps({"trial": args.trial, "out": str(out)}))
    return 0
