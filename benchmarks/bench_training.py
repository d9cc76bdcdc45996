"""Benchmark of the NACHOS training layer on Fashion-MNIST.

Trains one fixed mid-size NACHOS configuration (below, ``CONFIG``) with the reference recipe
(10 backbone epochs, 5 warm-up and 5 support epochs of the exits, frozen backbone, SGD lr 0.01,
batch 128, cosine per epoch, every loss weight 1) on a 10,000-image stratified subset of the
Fashion-MNIST training data at 32x32, then chooses the exit thresholds on the validation split
(6,000 images, held out from the full training data) under the average-MAC budget and reports
on the official test split (10,000 images). It measures, in the same run:

- training throughput (images/s) of phase A (backbone) and of phase B (exits);
- the time of one multi-exit training step relative to one backbone-only step: from the
  training itself (mean step time, data loading excluded) and from a controlled measurement
  after training (the two steps interleaved on the same batch, median of repeats), with the
  frozen backbone (the default) and, for reference, with joint fine-tuning;
- test accuracy, exit ratios, average MACs (exit costs from ``optuna_nachos.cost.exit_macs``)
  of the calibrated network, for the default threshold search and for the reference's
  ``"nachos"`` rule.

Usage::

    python benchmarks/bench_training.py [--quick] [--budget 2.7e6] [--min-accuracy A]
                                        [--out FILE] [--threads N] [--device auto]

The data come from the Debian package ``dataset-fashion-mnist`` (``apt-get install -y
dataset-fashion-mnist``). Writes ``benchmarks/results/training.json`` by default.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from optuna_nachos import EENNConfig, __version__, build_eenn
from optuna_nachos.benchmark import cpu_model
from optuna_nachos.cost import exit_macs
from optuna_nachos.data import load_dataset
from optuna_nachos.train import (
    NachosLoss,
    TrainConfig,
    calibrate_and_evaluate,
    calibrate_thresholds,
    collect_exit_outputs,
    evaluate,
    fit,
    operating_curve,
)
from optuna_nachos.train._datasets import resolve_device, to_device

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "training.json"

CONFIG = EENNConfig(
    depths=(2, 3, 4, 3, 2),
    kernel_sizes=((3, 5), (7, 3, 5), (7, 3, 5, 7), (3, 5, 7), (3, 5)),
    expand_ratios=((3, 4), (6, 3, 4), (6, 3, 4, 6), (3, 4, 6), (3, 4)),
    exit_stages=(1, 2, 3, 4),
    resolution=32,
    exit_head="nachos",
)
"""A mid-size network of the MobileNetV3 space (depth 14 of 4..20), every early exit on."""

DATASET = "fashion-mnist"
TRAIN_SUBSET = 10_000


def _load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:  # pragma: no cover
        return None


def _fixed_batch(dataset: Any, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    positions = torch.randperm(len(dataset), generator=generator)[:size].tolist()
    items = [dataset[i] for i in positions]
    return torch.stack([x for x, _ in items]), torch.tensor([y for _, y in items])


def measure_step_ratio(
    model: torch.nn.Module,
    batch: tuple[torch.Tensor, torch.Tensor],
    *,
    costs: list[int],
    budget: float,
    support_accuracy: torch.Tensor | None,
    device: torch.device,
    repeats: int,
) -> dict[str, float]:
    """Median seconds of a backbone-only and of a multi-exit training step (SGD update
    included), interleaved on the same batch, on copies of the trained model."""
    images, targets = to_device(batch[0], device), batch[1].to(device)
    accuracy = None if support_accuracy is None else support_accuracy[:, :-1].to(device)
    loss_fn = NachosLoss(exit_costs=costs, max_avg_macs=budget).to(device)

    backbone_model = copy.deepcopy(model).train()
    backbone_opt = torch.optim.SGD(backbone_model.backbone_parameters(), lr=1e-4, momentum=0.9)

    frozen_model = copy.deepcopy(model).train()
    for p in frozen_model.backbone_parameters():
        p.requires_grad_(False)
    for module in frozen_model.backbone_modules():
        module.eval()
    frozen_opt = torch.optim.SGD(frozen_model.exit_head_parameters(), lr=1e-4, momentum=0.9)

    joint_model = copy.deepcopy(model).train()
    joint_opt = torch.optim.SGD(joint_model.parameters(), lr=1e-4, momentum=0.9)

    def backbone_step() -> None:
        loss = F.cross_entropy(backbone_model.forward_backbone(images), targets)
        backbone_opt.zero_grad(set_to_none=True)
        loss.backward()
        backbone_opt.step()

    def frozen_step() -> None:
        output = frozen_model(images, backbone_grad=False)
        terms = loss_fn(output, targets, support_accuracy=accuracy)
        frozen_opt.zero_grad(set_to_none=True)
        terms.total.backward()
        frozen_opt.step()

    def joint_step() -> None:
        terms = loss_fn(joint_model(images), targets, support_accuracy=accuracy)
        joint_opt.zero_grad(set_to_none=True)
        terms.total.backward()
        joint_opt.step()

    steps = {"backbone": backbone_step, "frozen": frozen_step, "joint": joint_step}
    times: dict[str, list[float]] = {name: [] for name in steps}
    for repeat in range(repeats + 2):
        for name, step in steps.items():
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if repeat >= 2:  # the first two are warm-up
                times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(values) for name, values in times.items()}
    return {
        "batch_size": int(images.shape[0]),
        "repeats": repeats,
        "backbone_step_s": medians["backbone"],
        "multi_exit_step_frozen_s": medians["frozen"],
        "multi_exit_step_joint_s": medians["joint"],
        "ratio_frozen": medians["frozen"] / medians["backbone"],
        "ratio_joint": medians["joint"] / medians["backbone"],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON file to write")
    parser.add_argument(
        "--quick", action="store_true", help="2+1+1 epochs on 2,000 images (a smoke run)"
    )
    parser.add_argument("--budget", type=float, default=2.7e6, help="max average MACs")
    parser.add_argument("--min-accuracy", type=float, default=None, help="accuracy floor")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=10, help="repeats of the step timing")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch intra-op threads (default: torch's)"
    )
    parser.add_argument("--progress", action="store_true", help="show progress bars")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    wall_start = time.perf_counter()
    load_before = _load_average()

    subset = 2_000 if args.quick else TRAIN_SUBSET
    data = load_dataset(DATASET, resolution=CONFIG.resolution, train_subset=subset, seed=args.seed)
    settings = TrainConfig(
        seed=args.seed,
        device=args.device,
        progress=args.progress or None,
        **(dict(backbone_epochs=2, warmup_epochs=1, exit_epochs=1) if args.quick else {}),
    )
    device = resolve_device(settings.device)
    costs = exit_macs(CONFIG, num_classes=data.num_classes, in_channels=data.in_channels)
    print(f"{DATASET}: {len(data.train)} train / {len(data.val)} val / {len(data.test)} test")
    print(f"network {CONFIG.short_name()}")
    print(f"exit costs (MMACs): {[round(c / 1e6, 3) for c in costs]}, budget {args.budget:.4g}")

    torch.manual_seed(args.seed)
    model = build_eenn(CONFIG, num_classes=data.num_classes, in_channels=data.in_channels)
    result = fit(model, data, config=settings, exit_costs=costs, max_avg_macs=args.budget)
    ips_a = result.images_per_second("backbone")
    ips_b = result.images_per_second("warmup", "exits")
    step_a = result.step_seconds("backbone")
    step_b = result.step_seconds("warmup", "exits")
    print(f"phase A: {ips_a:8.1f} images/s, step {step_a * 1e3:7.1f} ms")
    print(f"phase B: {ips_b:8.1f} images/s, step {step_b * 1e3:7.1f} ms")

    calibration_start = time.perf_counter()
    report = calibrate_and_evaluate(
        model,
        data,
        costs,
        max_avg_macs=args.budget,
        min_accuracy=args.min_accuracy,
        device=device,
    )
    calibration_seconds = time.perf_counter() - calibration_start
    # the same cached outputs serve the reference rule and the operating curve
    val_outputs = collect_exit_outputs(model, data.val, device=device)
    test_outputs = collect_exit_outputs(model, data.test, device=device)
    search_start = time.perf_counter()
    calibrate_thresholds(
        val_outputs, costs, max_avg_macs=args.budget, min_accuracy=args.min_accuracy
    )
    search_seconds = time.perf_counter() - search_start
    nachos = calibrate_thresholds(
        val_outputs,
        costs,
        max_avg_macs=args.budget,
        min_accuracy=args.min_accuracy,
        method="nachos",
    )
    nachos_test = evaluate(test_outputs, nachos.thresholds, costs)
    curve = operating_curve(val_outputs, costs)

    steps = measure_step_ratio(
        model,
        _fixed_batch(data.train, settings.batch_size),
        costs=costs,
        budget=args.budget,
        support_accuracy=result.support_accuracy,
        device=device,
        repeats=args.repeats,
    )
    test = report.test
    print(f"step ratio multi-exit / backbone-only (in training): {step_b / step_a:.3f}")
    print(
        f"step ratio, controlled: frozen backbone {steps['ratio_frozen']:.3f}, "
        f"joint fine-tuning {steps['ratio_joint']:.3f}"
    )
    print(f"thresholds (search, on val): {[round(t, 4) for t in report.thresholds]}")
    print(
        f"val: accuracy {report.validation.accuracy:.4f}, avg MACs "
        f"{report.validation.avg_macs / 1e6:.3f} M, feasible {report.feasible}"
        + (f" ({report.calibration.reason})" if report.calibration.reason else "")
    )
    print(
        f"test: accuracy {test.accuracy:.4f} (backbone {test.backbone_accuracy:.4f}), "
        f"avg MACs {test.avg_macs / 1e6:.3f} M, peak {test.peak_macs / 1e6:.3f} M"
    )
    print(f"test exit ratios: {[round(r, 4) for r in test.exit_ratios]}")
    print(f"test exit accuracies: {[round(a, 4) for a in test.exit_accuracies]}")
    print(
        f"nachos rule: thresholds {[round(t, 2) for t in nachos.thresholds]}, test accuracy "
        f"{nachos_test.accuracy:.4f}, avg MACs {nachos_test.avg_macs / 1e6:.3f} M, feasible on "
        f"val {nachos.feasible}"
    )

    output = {
        "benchmark": "training",
        "dataset": {
            "name": DATASET,
            "resolution": CONFIG.resolution,
            "train": len(data.train),
            "val": len(data.val),
            "test": len(data.test),
            "train_subset": subset,
        },
        "network": CONFIG.to_dict(),
        "exit_costs": [int(c) for c in costs],
        "max_avg_macs": args.budget,
        "min_accuracy": args.min_accuracy,
        "quick": args.quick,
        "train_config": settings.to_dict(),
        "throughput": {
            "phase_a_images_per_s": ips_a,
            "phase_b_images_per_s": ips_b,
            "phase_b_warmup_images_per_s": result.images_per_second("warmup"),
            "phase_b_support_images_per_s": result.images_per_second("exits"),
            "phase_a_step_s": step_a,
            "phase_b_step_s": step_b,
            "step_ratio_in_training": step_b / step_a,
        },
        "step_timing_controlled": steps,
        "phase_seconds": result.phase_seconds,
        "fit_seconds": result.total_seconds,
        "calibrate_and_evaluate_seconds": calibration_seconds,
        "threshold_search_seconds": search_seconds,
        "search": report.to_dict(),
        "nachos_rule": {"calibration": nachos.to_dict(), "test": nachos_test.to_dict()},
        "operating_curve_val": [p.to_dict() for p in curve],
        "records": [r.to_dict() for r in result.records],
        "machine": {
            "torch": torch.__version__,
            "optuna_nachos": __version__,
            "python": platform.python_version(),
            "cpu": cpu_model(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "device": str(device),
            "load_average_before": load_before,
            "load_average_after": _load_average(),
            "platform": platform.platform(),
        },
        "wall_seconds": time.perf_counter() - wall_start,
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(output, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({output['wall_seconds']:.0f} s)")
    return output


if __name__ == "__main__":
    main(sys.argv[1:])
