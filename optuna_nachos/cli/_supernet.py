"""The ``supernet`` command: train a weight-sharing supernet once, for every later search."""

from __future__ import annotations

import argparse
import json

from optuna_nachos.cli._format import (
    HelpFormatter,
    non_negative_int,
    parse_count,
    positive_int,
    settings_errors,
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
        "checkpoint is written every epoch and the same command resumes a killed run.",
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
    train.add_argument("--epochs", type=positive_int, default=10, help="passes over the data")
    train.add_argument("--batch-size", type=positive_int, default=128, help="images per step")
    train.add_argument("--lr", type=float, default=0.05, help="initial learning rate")
    train.add_argument(
        "--random-subnets",
        type=non_negative_int,
        default=2,
        help="random subnets per step besides the largest and the smallest",
    )
    train.add_argument(
        "--ofa-checkpoint",
        default=None,
        help="start from OFA's published MobileNetV3 checkpoint file and fine-tune it "
        "(default: none, a new supernet)",
    )
    train.add_argument("--seed", type=int, default=0, help="seed of the training randomness")
    train.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
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
        settings = SupernetSettings(
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            random_subnets=args.random_subnets,
            device=args.device,
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
    last = supernet.metadata["history"][-1]["val"]
    print(
        json.dumps(
            {
                "out": args.out,
                "epochs": supernet.metadata["epochs_done"],
                "val_accuracy_largest": last["largest"]["final_accuracy"],
                "val_accuracy_smallest": last["smallest"]["final_accuracy"],
                "weights_sha256": supernet.weights_sha256,
            }
        )
    )
    return 0
