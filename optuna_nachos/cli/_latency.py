"""The ``latency`` command: profile a latency lookup table on this machine."""

from __future__ import annotations

import argparse
import json
import sys

from optuna_nachos.cli._format import (
    CommandError,
    HelpFormatter,
    LazyChoices,
    non_negative_int,
    positive_int,
)


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers such as '1,8', got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def positive_float(text: str) -> float:
    """Parse a positive number (milliseconds)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def add_latency_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "latency",
        help="measure a latency lookup table of the search space on this machine",
        description="Latency lookup tables: per-block latencies measured on the target device, "
        "from which the per-exit latency of any network of the space is predicted.",
    )
    commands = parser.add_subparsers(dest="latency_command", metavar="ACTION", required=True)
    profile = commands.add_parser(
        "profile",
        help="measure every distinct block of the space and write the table as JSON",
        description="Measure every distinct block of the search space (stem, stage layers for "
        "every kernel, expand ratio and resolution, exit heads, final classifier) with torch "
        "and onnxruntime at batch size 1 and a second batch size, then calibrate the table on "
        "whole random networks timed as deployed (blocks cost more inside a network than "
        "alone); record the method, the device and the software versions.",
        formatter_class=HelpFormatter,
    )
    profile.add_argument("--out", required=True, help="JSON file to write, e.g. lut.json")
    profile.add_argument(
        "--space", choices=("mobilenetv3", "edanas"), default="mobilenetv3", help="search space"
    )
    profile.add_argument(
        "--resolutions",
        type=_int_list,
        default=None,
        help="input resolutions, e.g. '32' or '28,32' (default: the space's)",
    )
    profile.add_argument(
        "--num-classes", type=positive_int, default=10, help="classes of the final classifier"
    )
    profile.add_argument(
        "--in-channels", type=positive_int, default=3, help="channels of the input images"
    )
    profile.add_argument(
        "--backends",
        nargs="+",
        choices=LazyChoices("optuna_nachos.cost", "list_latency_backends"),
        metavar="BACKEND",
        default=None,
        help="back ends to measure (default: every registered one)",
    )
    profile.add_argument(
        "--batch-sizes", type=_int_list, default=[1, 8], help="batch sizes, e.g. '1,8'"
    )
    profile.add_argument("--warmup", type=non_negative_int, default=10, help="untimed rounds")
    profile.add_argument("--repeats", type=positive_int, default=50, help="timed rounds")
    profile.add_argument("--threads", type=positive_int, default=1, help="CPU threads")
    profile.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    profile.add_argument(
        "--clock",
        choices=("wall", "thread"),
        default="wall",
        help="wall time, or the CPU time of the calling thread (a shared machine; with "
        "--threads 1)",
    )
    profile.add_argument(
        "--calibration-networks",
        type=non_negative_int,
        default=40,
        help="random whole networks timed to calibrate the table (0: keep the blocks timed alone)",
    )
    profile.add_argument(
        "--calibration-rounds",
        type=positive_int,
        default=10,
        help="timed rounds over the calibration networks",
    )
    profile.add_argument("--quiet", action="store_true", help="no progress on stderr")
    profile.set_defaults(handler=run_latency_profile_command)


def run_latency_profile_command(args: argparse.Namespace) -> int:
    from optuna_nachos.cost import profile_latency
    from optuna_nachos.space import get_space

    space = get_space(args.space)
    resolutions = args.resolutions or list(space.resolutions)
    if args.num_classes < 2:
        raise CommandError("--num-classes must be at least 2")

    def progress(done: int, total: int, what: str) -> None:
        if not args.quiet:
            print(f"[{done}/{total}] {what}", file=sys.stderr)

    table = profile_latency(
        resolutions=resolutions,
        kernel_sizes=space.kernel_sizes,
        expand_ratios=space.expand_ratios,
        exit_heads=space.exit_heads,
        exit_stages=space.exit_stages,
        num_classes=args.num_classes,
        in_channels=args.in_channels,
        backends=args.backends,
        batch_sizes=args.batch_sizes,
        warmup=args.warmup,
        repeats=args.repeats,
        threads=args.threads,
        seed=args.seed,
        clock=args.clock,
        progress=progress,
    )
    summary: dict[str, object] = {"blocks": len(table.blocks)}
    if args.calibration_networks:
        from optuna_nachos.cost import calibrate_latency

        table = calibrate_latency(
            table,
            networks=args.calibration_networks,
            rounds=args.calibration_rounds,
            seed=args.seed,
            progress=lambda line: None if args.quiet else print(line, file=sys.stderr),
        )
        summary["calibration_mape"] = {
            backend: {
                size: {k: round(fit[k], 4) for k in ("mape_alone", "mape_calibrated")}
                for size, fit in sizes.items()
            }
            for backend, sizes in table.calibration["fit"].items()
        }
    path = table.save(args.out)
    print(json.dumps({"out": str(path), **summary}))
    return 0
