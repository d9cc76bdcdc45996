"""The ``supernet`` command: train a weight-sharing supernet once, for every later search."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
from collections.abc import Iterator
from typing import Any

from optuna_nachos._logging import OPTUNA_LOGGER
from optuna_nachos.cli._format import (
    HelpFormatter,
    non_negative_int,
    parse_count,
    positive_int,
    settings_errors,
)

#: Settings whose flags default to :class:`SupernetSettings`' own defaults (``None``: not given).
_RECIPE_FLAGS = (
    "epochs",
    "batch_size",
    "lr",
    "random_subnets",
    "warmup_epochs",
    "grad_clip",
    "label_smoothing",
    "head_lr",
)


def add_supernet_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "supernet",
        help="train a weight-sharing supernet that search candidates inherit",
        description="Weight sharing: train one supernet of the space on your data, then run "
        "`optuna-nachos search --supernet DIR` so that every candidate inherits its weights.",
    )
    actions = parser.add_subparsers(dest="supernet_command", metavar="ACTION", title="actions")
    train = actions.add_parser(
        "train",
        help="train (or resume training) a supernet into a folder",
        description="Train a supernet with the sandwich rule and in-place distillation; a "
        "checkpoint is written every epoch and the same command resumes a killed run. Under "
        "torchrun (torchrun --nproc_per_node N -m optuna_nachos.cli supernet train ...) the N "
        "processes train it together, --batch-size being the global batch.",
        formatter_class=HelpFormatter,
    )
    train.add_argument("--dataset", required=True, help="dataset name, e.g. fashion-mnist")
    train.add_argument("--out", required=True, help="folder of the supernet (created)")
    train.add_argument(
        "--data-root", default=None, help="folder of the dataset files (default: the data layer's)"
    )
    train.add_argument("--resolution", type=positive_int, default=32, help="input side, pixels")
    train.add_argument(
        "--data-seed",
        type=int,
        default=0,
        help="seed of the validation split; searches must use the same one",
    )
    train.add_argument(
        "--train-subset",
        type=parse_count,
        default=None,
        help="train on this many images only, e.g. 10K (default: all)",
    )
    train.add_argument(
        "--epochs", type=positive_int, default=None, help="passes over the data (default: 3)"
    )
    train.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        help="images per step, over all processes under torchrun (default: 512)",
    )
    train.add_argument(
        "--lr", type=float, default=None, help="peak learning rate of the backbone (default: 0.1)"
    )
    train.add_argument(
        "--random-subnets",
        type=non_negative_int,
        default=None,
        help="random subnets per step besides the largest and the smallest (default: 1)",
    )
    train.add_argument(
        "--warmup-epochs",
        type=float,
        default=None,
        help="epochs of linear learning-rate warm-up, a fraction allowed (default: 1)",
    )
    train.add_argument(
        "--grad-clip",
        type=float,
        default=None,
        help="maximum gradient norm of the backbone and of the heads; 0 does not clip (default: 1)",
    )
    train.add_argument(
        "--label-smoothing",
        type=float,
        default=None,
        help="label smoothing of the largest subnet (default: 0.1)",
    )
    train.add_argument(
        "--head-lr",
        type=float,
        default=None,
        help="learning rate of the exit heads' own Adam optimizer (default: 0.01)",
    )
    train.add_argument(
        "--half",
        action="store_true",
        help="write the final weights in half precision (half the file size)",
    )
    train.add_argument(
        "--keep-checkpoint",
        action="store_true",
        help="keep the training state (checkpoint.pt) after training has finished",
    )
    train.add_argument("--json", action="store_true", help="print the summary as JSON")
    train.add_argument(
        "--ofa-checkpoint",
        default=None,
        help="start from OFA's published MobileNetV3 checkpoint file and fine-tune it "
        "(default: none, a new supernet)",
    )
    train.add_argument("--seed", type=int, default=0, help="seed of the training randomness")
    train.add_argument(
        "--device",
        default="auto",
        help="auto, cpu, cuda, cuda:1, ...; under torchrun auto or cuda: the GPU of each "
        "process's LOCAL_RANK",
    )
    train.add_argument(
        "--sync-batchnorm",
        action="store_true",
        help="under torchrun on GPUs, normalize over the global batch (SyncBatchNorm) instead "
        "of each process's share",
    )
    train.add_argument(
        "--threads", type=positive_int, default=None, help="torch CPU threads (default: torch's)"
    )
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument(
        "--restart", action="store_true", help="ignore an existing checkpoint in --out"
    )
    train.set_defaults(handler=run_supernet_train)
    parser.set_defaults(handler=lambda args: _print_help(parser))


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run_supernet_train(args: argparse.Namespace) -> int:
    import torch

    from optuna_nachos.data import load_dataset
    from optuna_nachos.supernet import SupernetSettings, import_ofa_checkpoint, train_supernet

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    with settings_errors():  # their ValueErrors check the flags' settings
        data = load_dataset(
            args.dataset,
            root=args.data_root,
            resolution=args.resolution,
            seed=args.data_seed,
            train_subset=args.train_subset,
        )
        given = {name: getattr(args, name) for name in _RECIPE_FLAGS}
        settings = SupernetSettings(
            **{name: value for name, value in given.items() if value is not None},
            keep_checkpoint=args.keep_checkpoint,
            weights_dtype="float16" if args.half else "float32",
            device=args.device,
            sync_batchnorm=args.sync_batchnorm,
            seed=args.seed,
            progress=False if args.no_progress else None,
        )
    start = None
    if args.ofa_checkpoint is not None:
        start = import_ofa_checkpoint(
            args.ofa_checkpoint,
            num_classes=data.num_classes,
            in_channels=data.in_channels,
            resolution=data.resolution,
            exit_heads=settings.exit_heads,
        )
    with supernet_output():
        supernet = train_supernet(
            data,
            args.out,
            settings=settings,
            supernet=start,
            resume=not args.restart,
            metadata={
                "data_seed": args.data_seed,
                "train_subset": args.train_subset,
                "ofa_checkpoint": args.ofa_checkpoint,
            },
        )
    if _rank() == 0:  # under torchrun, rank 0 speaks for all processes
        print(format_supernet_summary(supernet.metadata, folder=args.out, as_json=args.json))
    return 0


def _rank() -> int:
    """This process's rank under torchrun (0 without it)."""
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


@contextlib.contextmanager
def supernet_output() -> Iterator[None]:
    """The package's messages (the plan, the time estimate, one line per epoch) printed above
    the progress bar; Optuna's handler prints them, so it is set up first."""
    import optuna  # noqa: F401  (installs the handler that prints the package's messages)
    from tqdm.contrib.logging import logging_redirect_tqdm

    with logging_redirect_tqdm(loggers=[logging.getLogger(OPTUNA_LOGGER)]):
        yield


def format_supernet_summary(metadata: dict[str, Any], *, folder: str, as_json: bool = False) -> str:
    """What a finished (or stopped) supernet training gives: where, how long, and the
    validation accuracy of every exit of the largest and smallest subnets."""
    history = metadata.get("history") or []
    last = history[-1]["val"] if history else {}
    seconds = sum(record["seconds"] for record in history)
    if as_json:
        return json.dumps(
            {
                "out": folder,
                "epochs": metadata["epochs_done"],
                "complete": metadata["complete"],
                "train_seconds": round(seconds, 1),
                "val_accuracy_largest": last.get("largest", {}).get("final_accuracy"),
                "val_accuracy_smallest": last.get("smallest", {}).get("final_accuracy"),
                "val_exit_accuracies": {
                    name: scores["exit_accuracies"] for name, scores in last.items()
                },
                "weights_sha256": metadata.get("weights_sha256"),
            }
        )
    state = "trained" if metadata["complete"] else "stopped (run the command again to resume)"
    lines = [
        f"Supernet {state}: {folder}",
        f"  epochs {metadata['epochs_done']} of {metadata['settings']['epochs']}, "
        f"{seconds / 60:.1f} min",
    ]
    for name, scores in last.items():
        exits = " / ".join(f"{100 * a:.1f}" for a in scores["exit_accuracies"])
        lines.append(f"  validation accuracy per exit, {name} subnet (%): {exits}")
    if metadata.get("weights_sha256"):
        lines.append(f"  weights sha256 {metadata['weights_sha256']}")
    return "\n".join(lines)
