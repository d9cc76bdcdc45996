"""Supernet training throughput on one process and on several (torchrun, gloo), same global batch.

Each configuration trains the same small supernet with ``train_supernet`` (2 epochs, no
warm-up, so every step trains the heads too) from a fresh folder, one after the other; the
figure is the training images per second of the second epoch (the first pays one-time
costs), read from the run's own record (``train_seconds``, which leaves out the validation
after each epoch). ``PxT`` is P processes of T torch threads: ``1x1`` one process of one
thread, ``2x1`` two processes (``torchrun --nproc_per_node 2``) of one thread each, ``1x2``
one process using two cores through its threads.

On a 2-core machine two processes can at best double the throughput of one single-threaded
process, and they pay an all-reduce of the gradients every step; other work on the machine
takes its share of the two cores. The record keeps the load average before and after each
run.

Usage::

    python benchmarks/bench_distributed.py [--configs 1x1,2x1] [--batch-size 256] \
        [--steps 3] [--dataset fashion-mnist --resolution 28] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "distributed" / "cpu_throughput.json"


def _settings(args: argparse.Namespace) -> dict:
    return {
        "epochs": 2,
        "batch_size": args.batch_size,
        "warmup_epochs": 0.0,
        "random_subnets": 1,
        "recalibration_batches": 1,
        "device": "cpu",
        "progress": False,
        "seed": 0,
    }


def worker(args: argparse.Namespace) -> None:
    """One process of one configuration (run directly, or by torchrun)."""
    import torch

    from optuna_nachos.data import load_dataset
    from optuna_nachos.supernet import SupernetSettings, train_supernet

    torch.set_num_threads(args.threads)
    data = load_dataset(
        args.dataset,
        resolution=args.resolution,
        seed=0,
        val_fraction=0.01,  # the validation after each epoch is not what is measured
        train_subset=args.batch_size * args.steps,
    )
    settings = SupernetSettings.from_dict(_settings(args))
    supernet = train_supernet(data, args.folder, settings=settings, resume=False)
    if int(os.environ.get("RANK", "0")) == 0:
        Path(args.result).write_text(json.dumps(supernet.metadata))


def _git_commit() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _run(config: str, args: argparse.Namespace, work: Path) -> dict:
    processes, threads = (int(part) for part in config.split("x"))
    folder = work / f"sn-{config}"
    result = work / f"result-{config}.json"
    own = [
        str(Path(__file__).resolve()),
        "--worker",
        "--folder",
        str(folder),
        "--result",
        str(result),
        "--threads",
        str(threads),
        "--batch-size",
        str(args.batch_size),
        "--steps",
        str(args.steps),
        "--dataset",
        args.dataset,
        "--resolution",
        str(args.resolution),
    ]
    if processes == 1:
        command = [sys.executable, *own]
    else:
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            str(processes),
            *own,
        ]
    environment = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    subprocess.run(command, env=environment, check=True, timeout=args.timeout)
    wall = time.perf_counter() - started
    metadata = json.loads(result.read_text())
    epoch = metadata["history"][-1]
    images = metadata["train_size"]
    return {
        "processes": processes,
        "threads_per_process": threads,
        "per_process_batch": args.batch_size // processes,
        "images_per_second": images / epoch["train_seconds"],
        "epoch_train_seconds": epoch["train_seconds"],
        "first_epoch_train_seconds": metadata["history"][0]["train_seconds"],
        "wall_seconds": wall,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg()[0],
        "final_losses": epoch["losses"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="1x1,2x1", help="PxT: processes x threads, ...")
    parser.add_argument("--batch-size", type=int, default=256, help="global batch per step")
    parser.add_argument("--steps", type=int, default=3, help="steps per epoch")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--resolution", type=int, default=28)
    parser.add_argument("--timeout", type=float, default=600, help="seconds per configuration")
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    import torch

    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    runs = {}
    with tempfile.TemporaryDirectory(prefix="nachos-bench-distributed-") as tmp:
        for config in configs:
            runs[config] = _run(config, args, Path(tmp))
            print(
                f"{config}: {runs[config]['images_per_second']:.1f} images/s "
                f"(load {runs[config]['load_average_before']:.1f} before)",
                flush=True,
            )
    reference = runs[configs[0]]["images_per_second"]
    result = {
        "what": "supernet training images per second, second epoch, same global batch",
        "command": " ".join(["python benchmarks/bench_distributed.py", *sys.argv[1:]]),
        "dataset": args.dataset,
        "resolution": args.resolution,
        "global_batch": args.batch_size,
        "steps_per_epoch": args.steps,
        "settings": _settings(args),
        "runs": runs,
        "speedup_over_" + configs[0]: {
            config: run["images_per_second"] / reference for config, run in runs.items()
        },
        "gpu": "not measured (no GPU on this machine)",
        "machine": {
            "cpu": _cpu_model(),
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "backend": "gloo",
        },
        "git_commit": _git_commit(),
        "date": time.strftime("%Y-%m-%d"),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["speedup_over_" + configs[0]]))


if __name__ == "__main__":
    main()
