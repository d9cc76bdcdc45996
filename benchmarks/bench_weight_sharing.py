"""Benchmark of weight sharing on a CPU: the supernet recipe, and what one candidate costs.

Fashion-MNIST at 28x28 (the Debian package ``dataset-fashion-mnist``), data seed 0 (54,000
training, 6,000 validation and 10,000 test images). Parts, each short and writing one small
JSON file under ``--out`` (default ``benchmarks/results/weight_sharing``):

- the supernet itself is trained with the CLI (its log is kept beside it)::

      optuna-nachos supernet train --dataset fashion-mnist --resolution 28 \\
          --out benchmarks/results/weight_sharing/supernet --half --threads 2

- ``cost``: candidates drawn the way a search draws them (the space's parameters sampled at
  random, kept when the static guard admits them at the budget 2.7 M), each run through the
  whole objective (``NachosObjective.__call__``: extraction, BatchNorm recalibration, the
  exit phase, threshold calibration, validation and test evaluation) three ways, in one
  process on one thread: inherited with the full exit phase (all training images, 5 + 5
  exit epochs), inherited with the bounded exit phase (``--exit-rows`` images, ``--exit-epochs``
  warm-up + support epochs), and from scratch with the committed cpu tier's settings (4,000
  training images, 4 + 1 + 1 epochs). Reports seconds per candidate (with the evaluation's
  share, test included), the ratio, and how closely the bounded inheritance's validation
  scores follow the full one's (Kendall tau, mean absolute difference).
- ``ab``: the first and the new supernet recipe at equal training time on a subset
  (``--train-subset`` images, ``--seconds`` of training each), per-exit validation accuracies
  of the largest and smallest subnets.

Usage::

    python benchmarks/bench_weight_sharing.py cost [--candidates 6] [--scratch 2]
    python benchmarks/bench_weight_sharing.py ab [--train-subset 5000] [--seconds 300]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import optuna
import torch
from scipy import stats

DATASET = "fashion-mnist"
RESOLUTION = 28
BUDGET = 2.7e6
FLOOR = 0.60
OUT = Path(__file__).parent / "results" / "weight_sharing"


def _environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "optuna": optuna.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average": list(os.getloadavg()),
        "commit": os.popen("git rev-parse HEAD").read().strip(),
    }


def _write(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    print(f"wrote {path}")


def draw_candidates(objective: Any, count: int, *, seed: int) -> list[dict[str, Any]]:
    """Parameters of ``count`` configurations drawn as a search draws them: the space's
    parameters at random, kept when the static guard admits them."""
    from optuna_nachos.cost import cost_profile

    study = optuna.create_study(
        directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=seed)
    )
    drawn: list[dict[str, Any]] = []
    while len(drawn) < count:
        trial = study.ask()
        config = objective.space.suggest(trial)
        profile = cost_profile(
            config,
            num_classes=objective.data.num_classes,
            in_channels=objective.data.in_channels,
            convention=objective.cost_convention,
        )
        static = objective._static_constraints(config, profile)
        study.tell(trial, [0.0, 0.0])
        if all(value <= 0 for value in static.values()):
            drawn.append(dict(trial.params))
    return drawn


def _run(objective: Any, params: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from optuna_nachos.record import TIMINGS_ATTR

    study = optuna.create_study(directions=["maximize", "minimize"])
    for values in params:
        study.enqueue_trial(values)
    rows = []
    for _ in params:
        started = time.perf_counter()
        study.optimize(objective, n_trials=1)
        seconds = time.perf_counter() - started
        trial = study.trials[-1]
        rows.append(
            {
                "number": trial.number,
                "state": trial.state.name,
                "seconds": seconds,
                "timings": trial.user_attrs.get(TIMINGS_ATTR),
                "val_accuracy": None if trial.values is None else trial.values[0],
                "val_avg_macs": None if trial.values is None else trial.values[1],
                "test_accuracy": trial.user_attrs.get("test_accuracy"),
                "feasible": all(v <= 0 for v in trial.constraints) if trial.constraints else None,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def part_cost(args: argparse.Namespace) -> None:
    from optuna_nachos import MobileNetV3Space, NachosObjective, TrainConfig
    from optuna_nachos.data import load_dataset

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = MobileNetV3Space(resolutions=(RESOLUTION,))
    data = load_dataset(DATASET, resolution=RESOLUTION, seed=0)
    full = NachosObjective(
        dataset=data,
        max_avg_macs=BUDGET,
        min_accuracy=FLOOR,
        space=space,
        supernet=args.supernet,
        train_config=TrainConfig(device="cpu", progress=False),
    )
    bounded = NachosObjective(
        dataset=data,
        max_avg_macs=BUDGET,
        min_accuracy=FLOOR,
        space=space,
        supernet=full.supernet,
        exit_rows=args.exit_rows,
        train_config=TrainConfig(
            device="cpu",
            progress=False,
            warmup_epochs=args.exit_epochs,
            exit_epochs=args.exit_epochs,
        ),
    )
    params = draw_candidates(full, args.candidates, seed=args.seed)
    record: dict[str, Any] = {
        "environment": _environment(),
        "settings": {
            "budget": BUDGET,
            "floor": FLOOR,
            "candidates": args.candidates,
            "draw_seed": args.seed,
            "exit_rows": args.exit_rows,
            "exit_epochs": [args.exit_epochs, args.exit_epochs],
            "scratch": "cpu tier: 4,000 training images, 4 + 1 + 1 epochs, batch 128",
        },
        "params": params,
    }
    print("bounded inheritance", flush=True)
    record["bounded"] = _run(bounded, params)
    print("full inheritance", flush=True)
    record["full"] = _run(full, params)
    scratch_data = load_dataset(DATASET, resolution=RESOLUTION, seed=0, train_subset=4000)
    scratch = NachosObjective(
        dataset=scratch_data,
        max_avg_macs=BUDGET,
        min_accuracy=FLOOR,
        space=space,
        train_config=TrainConfig(
            device="cpu",
            progress=False,
            backbone_epochs=4,
            warmup_epochs=1,
            exit_epochs=1,
            batch_size=128,
        ),
    )
    print("from scratch", flush=True)
    record["scratch"] = _run(scratch, params[: args.scratch])
    record["summary"] = _cost_summary(record)
    print(json.dumps(record["summary"], indent=2))
    _write(args.out / "cost.json", record)


def _cost_summary(record: dict[str, Any]) -> dict[str, Any]:
    def seconds(rows: list[dict[str, Any]]) -> dict[str, float]:
        total = [r["seconds"] for r in rows]
        evaluation = [r["timings"]["calibration_seconds"] for r in rows if r["timings"]]
        return {
            "mean": statistics.fmean(total),
            "min": min(total),
            "max": max(total),
            "evaluation_mean": statistics.fmean(evaluation) if evaluation else None,
        }

    summary = {name: seconds(record[name]) for name in ("bounded", "full", "scratch")}
    scratch = summary["scratch"]["mean"]
    summary["speedup_bounded_vs_scratch"] = scratch / summary["bounded"]["mean"]
    summary["speedup_full_vs_scratch"] = scratch / summary["full"]["mean"]
    pairs = [
        (b["val_accuracy"], f["val_accuracy"])
        for b, f in zip(record["bounded"], record["full"])
        if b["val_accuracy"] is not None and f["val_accuracy"] is not None
    ]
    if len(pairs) >= 3:
        tau = stats.kendalltau([p[0] for p in pairs], [p[1] for p in pairs])
        summary["bounded_vs_full"] = {
            "kendall_tau": float(tau.statistic),
            "mean_abs_difference": statistics.fmean(abs(a - b) for a, b in pairs),
            "pairs": len(pairs),
        }
    return summary


def _step_seconds(data: Any, settings: Any, *, steps: int = 3) -> float:
    """Median seconds of a sandwich step of ``settings`` (heads included) on ``data``."""
    from optuna_nachos.supernet import Supernet
    from optuna_nachos.supernet._train import _sandwich_step

    supernet = Supernet(num_classes=10, in_channels=1, resolution=RESOLUTION).train()
    supernet.to(memory_format=torch.channels_last)
    loader = torch.utils.data.DataLoader(data.train, batch_size=settings.batch_size)
    generator = torch.Generator().manual_seed(0)
    durations = []
    for index, (images, targets) in enumerate(loader):
        if index > steps:
            break
        started = time.perf_counter()
        _sandwich_step(
            supernet,
            images.contiguous(memory_format=torch.channels_last),
            targets,
            settings=settings,
            generator=generator,
            use_amp=False,
        )
        supernet.zero_grad(set_to_none=True)
        durations.append(time.perf_counter() - started)
    return statistics.median(durations[1:])


def part_ab(args: argparse.Namespace) -> None:
    from optuna_nachos.data import load_dataset
    from optuna_nachos.supernet import SupernetSettings, train_supernet

    torch.set_num_threads(2)
    data = load_dataset(DATASET, resolution=RESOLUTION, seed=0, train_subset=args.train_subset)
    recipes = {
        # The first recipe: heads on the backbone's SGD from the first step, no warm-up, no
        # clipping, no label smoothing, all gammas 1 (at its own defaults: batch 128, lr 0.05,
        # two random subnets).
        "first": SupernetSettings(
            batch_size=128,
            lr=0.05,
            random_subnets=2,
            warmup_epochs=0,
            grad_clip=0,
            label_smoothing=0,
            zero_init_residual=False,
            head_lr=None,
            head_confidence_weight=1.0,
            head_batch_fraction=1.0,
        ),
        "new": SupernetSettings(),
    }
    record: dict[str, Any] = {
        "environment": _environment(),
        "settings": {"train_subset": args.train_subset, "seconds": args.seconds},
        "recipes": {},
    }
    for name, settings in recipes.items():
        # Equal time: as many epochs as fit in the time at the recipe's measured step cost.
        step_seconds = _step_seconds(data, settings)
        steps_per_epoch = -(-len(data.train) // settings.batch_size)
        epochs = max(1, round(args.seconds / (step_seconds * steps_per_epoch)))
        warmup = min(settings.warmup_epochs, 1.0 if epochs > 1 else 0.0)
        trained = train_supernet(
            data,
            args.out / "ab" / name,
            settings=dataclasses.replace(
                settings, epochs=epochs, warmup_epochs=warmup, device="cpu", progress=False
            ),
            resume=False,
        )
        history = trained.metadata["history"]
        record["recipes"][name] = {
            "settings": trained.metadata["settings"],
            "step_seconds": step_seconds,
            "epochs": epochs,
            "train_seconds": sum(r["train_seconds"] for r in history),
            "val": history[-1]["val"],
        }
        print(name, json.dumps(record["recipes"][name]), flush=True)
    _write(args.out / "ab.json", record)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["cost", "ab"])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--supernet", default=str(OUT / "supernet"))
    parser.add_argument("--candidates", type=int, default=6)
    parser.add_argument("--scratch", type=int, default=2)
    parser.add_argument("--exit-rows", type=int, default=4096)
    parser.add_argument("--exit-epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-subset", type=int, default=5_000)
    parser.add_argument("--seconds", type=float, default=300.0)
    args = parser.parse_args()
    {"cost": part_cost, "ab": part_ab}[args.part](args)


if __name__ == "__main__":
    main()
