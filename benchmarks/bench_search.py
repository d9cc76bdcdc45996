"""Wall time and plugin overhead of the README's main command (packaged search on digits).

Runs ``optuna-nachos search`` with the README's arguments in a fresh folder, then reads the
study back and reports:

* the wall time of the command;
* for every trained trial, the fraction of the trial (from its start to its completion in the
  storage) spent outside training and threshold calibration: building, costing, the guard,
  storage writes, the artifact upload and the sampler's work for the next trial are all in it;
* the admissible Pareto front it found.

The thread count is the command's own (the README's sets ``--threads 1``, which makes the
run reproducible: the same values under any load) unless ``--threads`` overrides it; the record
keeps the thread count used, the one-minute load average before and after the run (the other
work on the machine), every trial's figures, the software versions and the CPU kernels torch
used (``cpu_capability``: the same figures need the same kernels, since other vector widths
sum in another order). To see what another CPU would give, force other kernels with the
environment, for example ``ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41``.

Usage: ``python benchmarks/bench_search.py [--threads auto|N] [--out FILE.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import tempfile
import time
from pathlib import Path

import optuna
import torch

import optuna_nachos
from optuna_nachos.record import (
    ACCURACY_INDEX,
    CONFIG_ATTR,
    COST_INDEX,
    EXIT_RATIOS_ATTR,
    SKIP_REASON_ATTR,
    THRESHOLDS_ATTR,
    TIMINGS_ATTR,
)

README_ARGS = [
    "search", "--dataset", "digits", "--resolution", "16", "--n-trials", "8",
    "--sampler", "motpe", "--max-avg-macs", "3M", "--min-accuracy", "0.65",
    "--backbone-epochs", "6", "--warmup-epochs", "2", "--exit-epochs", "2",
    "--batch-size", "64", "--threads", "1", "--storage", "sqlite:///nachos.db",
]  # fmt: skip


_KERNEL_VARIABLES = (
    "ATEN_CPU_CAPABILITY",
    "ONEDNN_MAX_CPU_ISA",
    "MKL_CBWR",
    "MKL_ENABLE_INSTRUCTIONS",
)
"""Environment variables that choose the CPU kernels torch runs."""


def _flag(args: list[str], name: str, default: str) -> str:
    """The value of ``name`` in a command line (its last occurrence), else ``default``."""
    values = [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == name]
    return values[-1] if values else default


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "search_digits.json")
    )
    parser.add_argument(
        "--threads",
        default=None,
        help="override the command's --threads (default: the README command's own, 1)",
    )
    parser.add_argument(
        "--search-args",
        default=None,
        help="other search arguments to time instead of the README's, as one string",
    )
    args = parser.parse_args()
    search_args = README_ARGS if args.search_args is None else shlex.split(args.search_args)

    from optuna_nachos.cli import main as cli_main
    from optuna_nachos.results import admissible_trials, hypervolume

    with tempfile.TemporaryDirectory() as tmp:
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            load_before = os.getloadavg()
            started = time.perf_counter()
            threads = [] if args.threads is None else ["--threads", args.threads]
            code = cli_main([*search_args, "--no-progress", *threads])
            wall = time.perf_counter() - started
            load_after = os.getloadavg()
            study = optuna.load_study(study_name="nachos", storage="sqlite:///nachos.db")
        finally:
            os.chdir(cwd)

    trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    overhead = []
    for trial in trials:
        timings = trial.user_attrs.get(TIMINGS_ATTR)
        if timings is None:
            continue
        duration = (trial.datetime_complete - trial.datetime_start).total_seconds()
        inside = timings["train_seconds"] + timings["calibration_seconds"]
        overhead.append(
            {
                "trial": trial.number,
                "trial_seconds": duration,
                "train_seconds": timings["train_seconds"],
                "calibration_seconds": timings["calibration_seconds"],
                "outside_fraction": (duration - inside) / duration,
            }
        )
    front = [
        {
            "trial": t.number,
            "accuracy": t.values[ACCURACY_INDEX],
            "avg_macs": t.values[COST_INDEX],
            "exit_stages": t.user_attrs[CONFIG_ATTR]["exit_stages"],
            "exit_ratios": t.user_attrs.get(EXIT_RATIOS_ATTR),
            "thresholds": t.user_attrs.get(THRESHOLDS_ATTR),
        }
        for t in admissible_trials(study)
    ]
    figures = [
        {
            "trial": t.number,
            "architecture": t.user_attrs[CONFIG_ATTR].get("depths"),
            "exit_stages": t.user_attrs[CONFIG_ATTR]["exit_stages"],
            "accuracy": t.values[ACCURACY_INDEX],
            "avg_macs": t.values[COST_INDEX],
            "test_accuracy": t.user_attrs.get("test_accuracy"),
        }
        for t in trials
        if CONFIG_ATTR in t.user_attrs
    ]
    fractions = [o["outside_fraction"] for o in overhead]
    result = {
        "command": "optuna-nachos " + " ".join(search_args),
        "threads_setting": args.threads or _flag(search_args, "--threads", "auto"),
        "exit_code": code,
        "wall_seconds": wall,
        "trials": len(study.trials),
        "trained_trials": len(overhead),
        "skipped_by_static_guard": sum(SKIP_REASON_ATTR in t.user_attrs for t in trials),
        "outside_fraction_median": statistics.median(fractions) if fractions else None,
        "outside_fraction_max": max(fractions) if fractions else None,
        "per_trial": overhead,
        "hypervolume": hypervolume(study),
        "admissible_front": front,
        "trial_figures": figures,
        "machine": {
            "torch": torch.__version__,
            "optuna": optuna.__version__,
            "optuna_nachos": optuna_nachos.__version__,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "kernel_environment": {
                name: os.environ[name] for name in _KERNEL_VARIABLES if name in os.environ
            },
            "threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_before": load_before,
            "load_average_after": load_after,
        },
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"wall time {wall:.1f} s for {len(study.trials)} trials "
        f"({len(overhead)} trained, {result['skipped_by_static_guard']} skipped by the guard)"
    )
    if fractions:
        print(
            "time outside training and calibration: "
            f"median {100 * result['outside_fraction_median']:.2f} %, "
            f"max {100 * result['outside_fraction_max']:.2f} %"
        )
    print(f"hypervolume {result['hypervolume']:.4f}; admissible front:")
    for row in front:
        print(
            f"  trial {row['trial']}: accuracy {row['accuracy']:.4f}, "
            f"avg MACs {row['avg_macs'] / 1e6:.3f} M, exits {row['exit_stages']}"
        )


if __name__ == "__main__":
    main()
