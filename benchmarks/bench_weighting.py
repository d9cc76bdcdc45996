"""Classification weighting and backbone initialization, measured on Fashion-MNIST.

Trains the fixed configuration of ``bench_training.py`` (``CONFIG``: every early exit on) with
the reference recipe, once per backbone initialization, and then trains its exits (phase B) once
per classification weighting of ``L_cls`` from that same backbone:

- initializations: ``"torchvision"`` (what :func:`optuna_nachos.build_eenn` does: Kaiming
  fan-out convolutions, BatchNorm 1/0, linear normal(0, 0.01)) and ``"pytorch"`` (every layer of
  the backbone and the final classifier reset to PyTorch's per-layer default, the earlier
  behaviour);
- weightings: every entry of :data:`optuna_nachos.train.CLS_WEIGHTINGS`.

For each pair it reports the test accuracy of every exit on its own (all samples leaving
there) and the admissible accuracy: thresholds chosen on the validation split for the most
accurate operating point within the average-MAC budget (2.7 M by default), reported on the test
split. Exit costs use the product's convention (``"nachos"``: the heads a sample passed count).

Usage::

    python benchmarks/bench_weighting.py [--train-subset 10000] [--seeds 0 1]
                                         [--backbone-epochs 10] [--warmup-epochs 5]
                                         [--exit-epochs 5] [--device auto] [--out FILE]

Writes ``benchmarks/results/weighting.json`` by default.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_training import CONFIG  # noqa: E402

from optuna_nachos import __version__, build_eenn  # noqa: E402
from optuna_nachos.cost import exit_macs  # noqa: E402
from optuna_nachos.data import load_dataset  # noqa: E402
from optuna_nachos.train import CLS_WEIGHTINGS, TrainConfig, calibrate_and_evaluate, fit  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "weighting.json"
INITIALIZATIONS = ("torchvision", "pytorch")


def pytorch_default_init(model: nn.Module) -> None:
    """Reset the backbone and the final classifier to PyTorch's per-layer defaults."""
    for part in model.backbone_modules():
        for layer in part.modules():
            if isinstance(layer, (nn.Conv2d, nn.Linear, nn.BatchNorm2d)):
                layer.reset_parameters()


def run(args: argparse.Namespace) -> dict[str, Any]:
    data = load_dataset(
        "fashion-mnist", resolution=CONFIG.resolution, seed=0, train_subset=args.train_subset
    )
    costs = [float(c) for c in exit_macs(CONFIG, num_classes=data.num_classes, in_channels=1)]
    base = TrainConfig(
        backbone_epochs=args.backbone_epochs,
        warmup_epochs=args.warmup_epochs,
        exit_epochs=args.exit_epochs,
        device=args.device,
        progress=False,
    )
    rows = []
    for seed in args.seeds:
        for init in INITIALIZATIONS:
            torch.manual_seed(seed)
            model = build_eenn(CONFIG, num_classes=data.num_classes, in_channels=1)
            if init == "pytorch":
                pytorch_default_init(model)
            started = time.perf_counter()
            backbone_only = dataclasses.replace(base, warmup_epochs=0, exit_epochs=0, seed=seed)
            fit(model, data, config=backbone_only)
            backbone_seconds = time.perf_counter() - started
            for weighting in CLS_WEIGHTINGS:
                started = time.perf_counter()
                trained = copy.deepcopy(model)
                exits_only = dataclasses.replace(
                    base, backbone_epochs=0, cls_weighting=weighting, seed=seed
                )
                fit(trained, data, config=exits_only, exit_costs=costs, max_avg_macs=args.budget)
                result = calibrate_and_evaluate(
                    trained,
                    data,
                    costs,
                    max_avg_macs=args.budget,
                    device=args.device,
                    batch_size=512,
                )
                row = {
                    "seed": seed,
                    "init": init,
                    "weighting": weighting,
                    "exit_accuracies": [round(a, 4) for a in result.test.exit_accuracies],
                    "admissible_accuracy": round(result.test.accuracy, 4),
                    "admissible_avg_macs": round(result.test.avg_macs),
                    "val_accuracy": round(result.validation.accuracy, 4),
                    "feasible_on_validation": bool(result.feasible),
                    "exit_ratios": [round(r, 4) for r in result.test.exit_ratios],
                    "backbone_seconds": round(backbone_seconds, 1),
                    "exit_seconds": round(time.perf_counter() - started, 1),
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
    return {
        "benchmark": "weighting",
        "dataset": {
            "name": "fashion-mnist",
            "resolution": CONFIG.resolution,
            "train": len(data.train),
            "val": len(data.val),
            "test": len(data.test),
        },
        "network": CONFIG.to_dict(),
        "exit_costs": costs,
        "cost_convention": "nachos",
        "max_avg_macs": args.budget,
        "train_config": base.to_dict(),
        "rows": rows,
        "machine": {
            "torch": torch.__version__,
            "optuna_nachos": __version__,
            "python": platform.python_version(),
            "device": str(args.device),
            "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        },
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-subset", type=int, default=10_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--backbone-epochs", type=int, default=10)
    parser.add_argument("--warmup-epochs", type=int, default=5)
    parser.add_argument("--exit-epochs", type=int, default=5)
    parser.add_argument("--budget", type=float, default=2.7e6)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    report = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    return report


if __name__ == "__main__":
    main()
