"""The ``search``, ``best`` and ``export`` commands."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from optuna_nachos._logging import LOGGER_NAME
from optuna_nachos._units import format_amount
from optuna_nachos.cli._device import worker_device
from optuna_nachos.cli._format import (
    CommandError,
    HelpFormatter,
    LazyChoices,
    format_front,
    logger_level,
    non_negative_int,
    parse_count,
    parse_fraction,
    parse_macs,
    parse_seconds,
    positive_int,
    print_trial_summary,
    search_output,
    settings_errors,
)
from optuna_nachos.cli._latency import positive_float
from optuna_nachos.cli._threads import AUTO, parse_threads, set_threads

if TYPE_CHECKING:  # Optuna is imported by the commands, not by ``--help``
    import optuna

PROG = "optuna-nachos"

DEFAULT_STORAGE = "sqlite:///nachos.db"
"""``--storage`` when none is given: :data:`optuna_nachos.study.DEFAULT_STORAGE`, spelled out
here so that ``--help`` does not import Optuna."""

DEFAULT_ARTIFACTS = "nachos_artifacts"
ARTIFACTS_ATTR = "nachos_artifacts"
"""Study user attribute: the absolute path of the folder of the trained networks."""
INTERRUPTED_STATUS = 130
"""Exit status of a search stopped by Ctrl-C (128 + SIGINT, as shells report it)."""
UNFINISHED_STATUS = 1
"""Exit status of a search that ended without reaching ``--n-trials`` finished trials."""


#: Training settings the search flags override, with the reference's values (``TrainConfig``).
TRAIN_DEFAULTS = {"backbone_epochs": 10, "warmup_epochs": 5, "exit_epochs": 5, "batch_size": 128}

STUDY_NAME = "nachos"
"""The study name of ``search`` when none is given."""

STORAGE_HELP = (
    "Optuna storage URL: sqlite:///FILE, journal:///FILE (a journal file), a database URL "
    "such as postgresql://USER@HOST/DB, or grpc://HOST:PORT (an Optuna storage proxy)"
)
"""Help of ``--storage``."""

STUDY_NAME_HELP = f"study name (default: {STUDY_NAME!r}, or the storage's only study)"
"""Help of ``--study-name`` for the commands that read a study."""


def resolve_study_name(requested: str | None, names: list[str]) -> str:
    """The study a reading command opens: the requested one, else ``"nachos"`` when the
    storage holds it or does not hold exactly one study, else the only study."""
    if requested is not None:
        return requested
    return STUDY_NAME if STUDY_NAME in names or len(names) != 1 else names[0]


def _add_storage_arguments(
    parser: argparse.ArgumentParser, *, study_help: str = STUDY_NAME_HELP
) -> None:
    parser.add_argument(
        "--storage",
        default=DEFAULT_STORAGE,
        help=STORAGE_HELP,
    )
    parser.add_argument("--study-name", default=None, help=study_help)
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
        "under the budget and the accuracy floor. Running it again resumes the study.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--dataset", required=True, help="dataset name, e.g. digits (bundled, no download)"
    )
    parser.add_argument(
        "--data-root",
        default=None,
        help="folder of the dataset files (default: $NACHOS_DATA, else ./data)",
    )
    parser.add_argument(
        "--download",
        action="store_true",
        help="download a missing dataset into the data root (torchvision datasets: mnist, "
        "fashion-mnist, cifar10, cifar100, svhn, imagenette)",
    )
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
        help="stop starting trials after this many seconds (default: no limit)",
    )
    parser.add_argument(
        "--sampler",
        choices=LazyChoices("optuna_nachos.study", "SAMPLER_NAMES"),
        metavar="SAMPLER",
        default="motpe",
        help="search strategy: multi-objective TPE, NSGA-II/III, Gaussian process, random, or "
        "the NACHOS surrogate-assisted sampler",
    )
    parser.add_argument(
        "--startup-trials",
        type=non_negative_int,
        default=None,
        help="random trials before the model-based ones, for motpe, gp and nachos (default: "
        "the sampler's own; nachos: 100)",
    )
    parser.add_argument(
        "--max-avg-macs",
        type=parse_macs,
        default=None,
        help="budget of average MACs per sample, e.g. 2.7M (default: none; required unless "
        "--objective latency)",
    )
    parser.add_argument(
        "--min-accuracy",
        type=parse_fraction,
        required=True,
        help="accuracy floor as a fraction, e.g. 0.65",
    )
    parser.add_argument(
        "--max-peak-macs",
        type=parse_macs,
        default=None,
        help="limit on the MACs of the deepest exit, e.g. 12M (default: none)",
    )
    parser.add_argument(
        "--max-params",
        type=parse_count,
        default=None,
        help="limit on the parameters of the whole network, e.g. 1.5M (default: none)",
    )
    parser.add_argument(
        "--latency-table",
        default=None,
        help="latency lookup table of the target device ('optuna-nachos latency profile'; "
        "default: none, costs in MACs only)",
    )
    parser.add_argument(
        "--max-avg-latency-ms",
        type=positive_float,
        default=None,
        help="budget of average latency per sample in ms (needs --latency-table; default: none)",
    )
    parser.add_argument(
        "--max-peak-latency-ms",
        type=positive_float,
        default=None,
        help="limit of the final exit's latency in ms (needs --latency-table; default: none)",
    )
    parser.add_argument(
        "--objective",
        choices=("macs", "latency"),
        default="macs",
        help="second objective: average MACs (macs) or average latency (latency, needs "
        "--latency-table and --max-avg-latency-ms)",
    )
    parser.add_argument(
        "--latency-backend",
        choices=LazyChoices("optuna_nachos.cost", "list_latency_backends"),
        metavar="BACKEND",
        default="onnxruntime",
        help="back end of the latency table to use",
    )
    parser.add_argument(
        "--latency-batch-size",
        type=positive_int,
        default=1,
        help="batch size of the latency table's measurements to use (the table must hold it: "
        "'latency profile --batch-sizes')",
    )
    parser.add_argument(
        "--min-exits",
        type=non_negative_int,
        default=1,
        help="fewest early exits of an admissible network",
    )
    parser.add_argument(
        "--space",
        choices=LazyChoices("optuna_nachos.space", "list_spaces"),
        metavar="SPACE",
        default="mobilenetv3",
        help="search space, as registered with optuna_nachos.space.register_space: "
        "mobilenetv3 is the NACHOS MobileNetV3 space, edanas its EDANAS-style threshold genes",
    )
    parser.add_argument(
        "--resolution",
        type=positive_int,
        default=None,
        help="input resolution in pixels (default: 32, the reference's, or the supernet's; "
        "digits are 8x8 images, 16 is four times cheaper)",
    )
    for flag, what in (
        ("backbone-epochs", "epochs of the backbone (phase A)"),
        ("warmup-epochs", "warm-up epochs of the exits (phase B, without the support term)"),
        ("exit-epochs", "epochs of the exits with the support term (phase B)"),
        ("batch-size", "training batch size"),
    ):
        key = flag.replace("-", "_")
        parser.add_argument(
            f"--{flag}",
            type=positive_int if key == "batch_size" else non_negative_int,
            default=None,
            help=f"{what} (default: {TRAIN_DEFAULTS[key]}, the reference's)",
        )
    parser.add_argument(
        "--train-subset",
        type=parse_count,
        default=None,
        help="train on this many images only, e.g. 10K, for quick searches (default: all)",
    )
    parser.add_argument(
        "--calibration",
        choices=LazyChoices("optuna_nachos.train", "SEARCH_CALIBRATIONS"),
        metavar="METHOD",
        default="search",
        help="exit thresholds: per-exit search for the most accurate admissible operating "
        "point, the reference's global-then-lower procedure, or one threshold for every exit",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampler and training")
    parser.add_argument(
        "--device",
        default=None,
        help="cpu, cuda, cuda:1, ... (default: CUDA if available; a worker started with "
        "LOCAL_RANK set, as torchrun does, takes GPU LOCAL_RANK mod the GPU count)",
    )
    parser.add_argument(
        "--supernet",
        default=None,
        help="folder of a trained supernet (optuna-nachos supernet train): candidates inherit "
        "its weights and train only their exits; the search takes its resolution (default: "
        "none, every candidate trains from scratch)",
    )
    parser.add_argument(
        "--exit-rows",
        type=parse_count,
        default=None,
        help="with --supernet: train each candidate's exits on this many training images (a "
        "fixed subset, the same for every candidate), e.g. 4096 (default: all)",
    )
    parser.add_argument(
        "--val-rows",
        type=parse_count,
        default=None,
        help="choose the thresholds and score every candidate on a fixed stratified subset of "
        "this many validation images (default: all)",
    )
    parser.add_argument(
        "--test-evaluation",
        choices=LazyChoices("optuna_nachos.objective", "TEST_EVALUATIONS"),
        metavar="WHICH",
        default="front",
        help="which trials are also evaluated on the test split: front (default: those that "
        "can be on the admissible front, the only ones reported on test) or every trained "
        "trial",
    )
    parser.add_argument(
        "--data-seed",
        type=int,
        default=0,
        help="seed of the validation split; a supernet must have been trained with the same",
    )
    parser.add_argument(
        "--threads",
        type=parse_threads,
        default=AUTO,
        help="torch CPU threads, or auto: the cores idle at the start (CPUs less the load "
        "average), so one on a busy machine, where more threads would wait for each other",
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
    _add_storage_arguments(
        parser, study_help=f"study to create or resume (default: {STUDY_NAME!r})"
    )
    parser.set_defaults(handler=run_search_command)


def add_best_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "best",
        help="print the admissible Pareto front",
        description="Print the admissible Pareto front of a study: its feasible, non-dominated "
        "trials, with accuracy, average and peak MACs, exits, thresholds and exit ratios.",
        formatter_class=HelpFormatter,
    )
    _add_storage_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=run_best_command)


def add_export_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write a trial's network (config, thresholds, weights) to a folder",
        description="Write the trained network of a trial (configuration, exit thresholds, "
        "weights and cost metadata) to a folder that optuna_nachos.load_eenn reads and runs "
        "with real early exiting.",
        formatter_class=HelpFormatter,
    )
    _add_storage_arguments(parser)
    parser.add_argument(
        "--trial", type=non_negative_int, required=True, help="trial number (see 'best')"
    )
    parser.add_argument("--out", required=True, help="folder to write")
    parser.add_argument(
        "--format",
        choices=("pytorch", "onnx"),
        default="pytorch",
        help="pytorch: config, thresholds and weights; onnx: ONNX segments and a manifest "
        "for early-exit inference with onnxruntime (optuna_nachos.deploy)",
    )
    parser.add_argument(
        "--force", action="store_true", help="replace an export already in the --out folder"
    )
    parser.set_defaults(handler=run_export_command)


def default_artifacts(url: str) -> Path:
    """The default folder of the trained networks: beside the storage file, else here."""
    from optuna_nachos.study import storage_file

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
    import optuna

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
    import optuna

    storage = _open(args, must_exist=True)
    names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    name = resolve_study_name(args.study_name, names)
    if name not in names:
        known = ", ".join(names) or "none"
        raise CommandError(
            f"no study {name!r} in {args.storage} (studies: {known}); "
            "pass --study-name or --storage"
        )
    return optuna.load_study(study_name=name, storage=storage)


def _latency_settings(args: argparse.Namespace):
    """The latency table of a search, after checking that the latency options fit together."""
    from optuna_nachos.cost import LatencyTable

    if args.objective == "latency":
        if args.latency_table is None or args.max_avg_latency_ms is None:
            raise CommandError("--objective latency needs --latency-table and --max-avg-latency-ms")
    elif args.max_avg_macs is None:
        raise CommandError("--max-avg-macs is required (or search with --objective latency)")
    uses = [
        name
        for name, value in (
            ("--max-avg-latency-ms", args.max_avg_latency_ms),
            ("--max-peak-latency-ms", args.max_peak_latency_ms),
        )
        if value is not None
    ]
    if uses and args.latency_table is None:
        raise CommandError(f"{', '.join(uses)} needs --latency-table")
    if args.latency_table is None:
        return None
    try:
        return LatencyTable.load(args.latency_table)
    except (FileNotFoundError, ValueError) as error:
        raise CommandError(f"{error}".rstrip(".") + "; check --latency-table") from None


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


@contextlib.contextmanager
def budget_in_flags(error_type: type[Exception]) -> Iterator[None]:
    """Reword the objective's "budget below the cheapest network" error with the
    ``--max-avg-macs`` flag, the budget as typed and the unit suffixes."""
    try:
        yield
    except error_type as error:
        budget, cheapest = float(error.budget), float(error.cheapest)
        line = (
            f"--max-avg-macs {format_amount(budget)} is below the cheapest network of the space "
            f"({format_amount(cheapest)} MACs at its first exit); raise the budget"
        )
        if budget < 1e3 and budget * 1e6 >= cheapest:
            hint = f"did you mean --max-avg-macs {format_amount(budget)}M?"
        else:
            hint = "2.7M is 2,700,000"
        raise CommandError(f"{line} (MAC amounts take the suffixes K, M and G: {hint})") from error


def run_search_command(args: argparse.Namespace) -> int:
    import optuna

    from optuna_nachos.data import list_datasets
    from optuna_nachos.objective import BudgetBelowSpaceError, NachosObjective
    from optuna_nachos.record import LATENCY_METRIC_NAMES, METRIC_NAMES
    from optuna_nachos.results import admissible_trials
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
    args.device, chosen = worker_device(args.device)  # one GPU per worker from LOCAL_RANK
    if chosen:
        print(chosen, file=sys.stderr)
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
    threads, reason = set_threads(args.threads)
    print(f"Training on {threads} torch CPU thread(s) ({reason}).", file=sys.stderr)
    callbacks = [print_trial_summary]  # one line per trial instead of Optuna's parameter dump
    if args.dashboard:
        from optuna_nachos.cli._view import dashboard_callback

        callbacks.append(dashboard_callback())
    # Batch bars of the running epoch, under the trial bar, on a terminal only.
    progress = False if args.no_progress else None
    train_config = TrainConfig(seed=args.seed, progress=progress, **overrides)
    resolution = args.resolution or 32
    if args.supernet is not None:
        from optuna_nachos.supernet import read_metadata

        # A supernet serves one input resolution: the search uses it.
        resolution = int(read_metadata(args.supernet)["resolution"])
        if args.resolution is not None and args.resolution != resolution:
            raise CommandError(
                f"--resolution {args.resolution} differs from the supernet's {resolution}; "
                f"drop --resolution or train a supernet at {args.resolution}"
            )
    latency_table = _latency_settings(args)
    # The ValueErrors these raise are their documented checks of the settings the flags gave.
    with settings_errors(), budget_in_flags(BudgetBelowSpaceError):
        space = get_space(args.space, min_exits=args.min_exits, resolutions=(resolution,))
        objective = NachosObjective(
            dataset=args.dataset,
            data_root=args.data_root,
            download=args.download,
            space=space,
            max_avg_macs=args.max_avg_macs,
            min_accuracy=args.min_accuracy,
            max_peak_macs=args.max_peak_macs,
            max_params=args.max_params,
            train_config=train_config,
            calibration=args.calibration,
            train_subset=args.train_subset,
            supernet=args.supernet,
            data_seed=args.data_seed,
            latency_table=latency_table,
            max_avg_latency_ms=args.max_avg_latency_ms,
            max_peak_latency_ms=args.max_peak_latency_ms,
            cost_objective=args.objective,
            latency_backend=args.latency_backend,
            latency_batch_size=args.latency_batch_size,
            exit_rows=args.exit_rows,
            val_rows=args.val_rows,
            test_evaluation=args.test_evaluation,
        )
    storage = _open(args)
    sampler_kwargs = {}
    if args.sampler == "nachos":
        sampler_kwargs = objective.sampler_options()
    if args.startup_trials is not None:
        sampler_kwargs["n_startup_trials"] = args.startup_trials
    lock_path = storage_lock_path(args.storage)
    study_name = args.study_name or STUDY_NAME
    with StudyLock(storage, study_name, lock_path=lock_path)():
        # Under the lock: workers started together create the study once, and each gets its
        # own worker number, hence its own sampler seed.
        with settings_errors():  # another study's directions, or other settings
            study = create_study(
                study_name=study_name,
                storage=storage,
                settings={**objective.settings(), "sampler": args.sampler, "seed": args.seed},
                new_settings=args.new_settings,
                metric_names=LATENCY_METRIC_NAMES if args.objective == "latency" else METRIC_NAMES,
            )
        folder = artifacts_folder(args, study)
        if study.user_attrs.get(ARTIFACTS_ATTR) != str(folder):
            study.set_user_attr(ARTIFACTS_ATTR, str(folder))
        worker, n_existing = register_worker(study)
    seed = derive_seed(args.seed, worker, n_existing)
    with settings_errors():
        study.sampler = create_sampler(args.sampler, space=space, seed=seed, **sampler_kwargs)
    objective.artifact_store = _artifact_store(folder, create=True)
    try:
        with search_output():
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
    print(front_heading(study))
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
    from optuna_nachos.study import study_protocol

    study = _load_study(args)
    protocol = study_protocol(study)
    if not args.json:
        if protocol.n_legacy:
            print(protocol.note)
        print(front_heading(study))
    print(format_front(admissible_trials(study), as_json=args.json))
    return 0


def front_heading(study: optuna.Study) -> str:
    """The line above the admissible front, the same in ``search`` and ``best``."""
    from optuna_nachos.results import hypervolume
    from optuna_nachos.study import finished_trials

    try:
        volume = f", hypervolume on validation {hypervolume(study):.4f}"
    except ValueError:  # a study without a budget and floor (not the packaged search's)
        volume = ""
    return (
        f"Admissible Pareto front of study {study.study_name!r} "
        f"({finished_trials(study)} finished trials{volume}):"
    )


def _export_onnx(args: argparse.Namespace, deployed, metadata: dict) -> int:
    """Write the trial's network as ONNX segments and a manifest."""
    try:
        from optuna_nachos.cost import require_onnxruntime
        from optuna_nachos.deploy import export_onnx

        require_onnxruntime()
    except ImportError as error:
        raise CommandError(str(error).rstrip(".")) from None
    preprocessing = metadata.pop("preprocessing", None)
    try:
        manifest = export_onnx(
            args.out,
            deployed.model,
            deployed.thresholds,
            in_channels=int(deployed.metadata["in_channels"]),
            preprocessing=preprocessing if isinstance(preprocessing, dict) else None,
            metadata={"trial": args.trial, **metadata},
        )
    except ValueError as error:  # a recorded preprocessing that does not fit the segments
        raise CommandError(f"trial {args.trial}: {str(error).rstrip('.')}") from None
    print(json.dumps({"trial": args.trial, "out": str(args.out), "manifest": str(manifest)}))
    return 0


def run_export_command(args: argparse.Namespace) -> int:
    from optuna.artifacts.exceptions import ArtifactNotFound

    from optuna_nachos.deploy import export_eenn, load_eenn

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
    violated = sorted(name for name, value in trials[0].constraints.items() if value > 0)
    try:
        # The command says it below, in its own words: the library's warning is held back.
        with logger_level(LOGGER_NAME, logging.ERROR):
            deployed = load_eenn(trials[0], artifact_store=_artifact_store(folder, create=False))
    except (ValueError, FileNotFoundError) as error:
        raise CommandError(str(error).rstrip(".")) from None
    except ArtifactNotFound:
        raise CommandError(
            f"the network of trial {args.trial} is not in {folder}; pass the --artifacts folder "
            "of the search"
        ) from None
    if violated:
        print(
            f"{PROG}: warning: trial {args.trial} is infeasible (violates "
            f"{', '.join(violated)}): exporting it anyway; 'optuna-nachos best' lists the "
            "admissible trials",
            file=sys.stderr,
        )
    metadata = {
        k: v
        for k, v in deployed.metadata.items()
        if k not in ("num_classes", "in_channels", "format_version")
    }
    if getattr(args, "format", "pytorch") == "onnx":
        return _export_onnx(args, deployed, metadata)
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
