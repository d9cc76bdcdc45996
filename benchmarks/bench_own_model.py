"""Benchmark: an exit search on your own model, a torchvision ResNet-18 on Fashion-MNIST.

The set-up of an existing pipeline: a backbone the user already trained, exits searched on
it with the backbone frozen.

1. A torchvision ResNet-18 (random initialisation, first convolution taking one channel) is
   trained briefly on a subset of Fashion-MNIST at 32x32 (plain cross-entropy, SGD).
2. Its stages come from ``cut_stages`` (after ``layer1``, ``layer2``, ``layer3``); the
   ``BackboneExitSpace`` searches which of them carry an exit and which head each exit uses
   (NACHOS head, pooling + linear, small MBConv): 64 configurations.
3. A 20-trial search with ``NachosSampler`` (8 random feasible trials, then rounds of 4
   proposals) and ``ExitObjective``: exit heads trained with the NACHOS loss (1 warm-up and
   1 support epoch, backbone frozen), thresholds chosen on the validation subset, test figures
   recorded. Budget: ``--budget-fraction`` of the plain backbone's MACs; accuracy floor: the
   plain backbone's validation accuracy minus ``--floor-margin``.
4. Reported: the admissible front (validation objective values and test figures) against the
   plain backbone's test accuracy and MACs.

Sizes (defaults, sized for at most 15 minutes on one CPU thread): 1,000 training images,
400 validation images (held out from the training data), 800 test images (official test
split), 32x32 inputs; the backbone trains 4 epochs.

Usage::

    python benchmarks/bench_own_model.py [--trials 20] [--train 1000] [--val 400]
        [--test 800] [--backbone-epochs 4] [--out benchmarks/results/own_model.json]

The data come from the Debian package ``dataset-fashion-mnist``. Writes a JSON file and a
Markdown table beside it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
import torch
import torchvision
from torch import nn

import optuna_nachos as nachos
from optuna_nachos.data import load_dataset
from optuna_nachos.record import (
    ACCURACY_INDEX,
    COST_INDEX,
    EXIT_MACS_ATTR,
    EXITS_CONFIG_ATTR,
    SKIP_REASON_ATTR,
    TEST_ACCURACY_ATTR,
    TEST_AVG_MACS_ATTR,
    TEST_EXIT_RATIOS_ATTR,
    TRIAL_SECONDS_ATTR,
)
from optuna_nachos.train import collect_exit_outputs


def _subset(dataset: Any, size: int, seed: int) -> Any:
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))
    return dataset.subset(order[:size])


def _plain_backbone(data: Any, *, epochs: int, seed: int) -> tuple[nn.Module, dict[str, Any]]:
    torch.manual_seed(seed)
    model = torchvision.models.resnet18(num_classes=data.num_classes)
    model.conv1 = nn.Conv2d(data.in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    stages = nachos.cut_stages(model, input_shape=(data.in_channels, 32, 32))
    single = nachos.attach_exits(
        stages.segments,
        stages.final_head,
        exit_after=[],
        num_classes=data.num_classes,
        input_shape=stages.input_shape,
    )
    started = time.perf_counter()
    nachos.train.fit(
        single,
        data,
        config=nachos.TrainConfig(
            backbone_epochs=epochs,
            warmup_epochs=0,
            exit_epochs=0,
            lr=0.05,
            progress=False,
            seed=seed,
        ),
    )
    seconds = time.perf_counter() - started
    single.eval()
    figures = {}
    for split in ("val", "test"):
        outputs = collect_exit_outputs(single, getattr(data, split))
        figures[f"{split}_accuracy"] = float(outputs.correct[:, -1].double().mean())
    figures["macs"] = int(nachos.exit_macs(single)[-1])
    figures["params"] = int(sum(p.numel() for p in single.parameters()))
    figures["train_seconds"] = seconds
    return model, figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--train", type=int, default=1000, help="training images")
    parser.add_argument("--val", type=int, default=400, help="validation images")
    parser.add_argument("--test", type=int, default=800, help="test images")
    parser.add_argument("--backbone-epochs", type=int, default=4)
    parser.add_argument("--budget-fraction", type=float, default=0.6)
    parser.add_argument("--floor-margin", type=float, default=0.05)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "own_model.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.perf_counter()

    data = load_dataset(
        "fashion-mnist", resolution=32, train_subset=args.train, seed=args.seed, augment=False
    )
    data = dataclasses.replace(
        data, val=_subset(data.val, args.val, args.seed), test=_subset(data.test, args.test, 1)
    )
    model, plain = _plain_backbone(data, epochs=args.backbone_epochs, seed=args.seed)
    print(f"plain backbone: {plain}", flush=True)

    stages = nachos.cut_stages(model, input_shape=(data.in_channels, 32, 32))
    space = nachos.BackboneExitSpace(stages, num_classes=data.num_classes)
    budget = args.budget_fraction * plain["macs"]
    floor = plain["val_accuracy"] - args.floor_margin
    objective = nachos.ExitObjective(
        space=space,
        data=data,
        max_avg_macs=budget,
        min_accuracy=floor,
        train_config=nachos.TrainConfig(
            backbone_epochs=0, warmup_epochs=1, exit_epochs=1, progress=False, seed=args.seed
        ),
    )
    sampler = nachos.NachosSampler(
        **objective.sampler_options(), n_startup_trials=8, batch_size=4, seed=args.seed
    )
    with tempfile.TemporaryDirectory() as tmp:
        study = optuna.create_study(
            storage=f"sqlite:///{Path(tmp) / 'own_model.db'}",
            study_name="resnet18-fashion-mnist-exits",
            directions=["maximize", "minimize"],
            sampler=sampler,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(["accuracy", "avg_macs"])
        search_started = time.perf_counter()
        study.optimize(objective, n_trials=args.trials)
        search_seconds = time.perf_counter() - search_started
        front = nachos.admissible_trials(study)
        trials = study.get_trials(deepcopy=False)

    def row(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
        attrs = trial.user_attrs
        return {
            "number": trial.number,
            "exits": attrs[EXITS_CONFIG_ATTR],
            "skipped": attrs.get(SKIP_REASON_ATTR),
            "val_accuracy": trial.values[ACCURACY_INDEX] if trial.values else None,
            "val_avg_macs": trial.values[COST_INDEX] if trial.values else None,
            "test_accuracy": attrs.get(TEST_ACCURACY_ATTR),
            "test_avg_macs": attrs.get(TEST_AVG_MACS_ATTR),
            "test_exit_ratios": attrs.get(TEST_EXIT_RATIOS_ATTR),
            "exit_macs": attrs[EXIT_MACS_ATTR],
            "feasible": all(v <= 0 for v in trial.constraints.values()),
            "trial_seconds": attrs.get(TRIAL_SECONDS_ATTR),
        }

    results = {
        "benchmark": "exit search on a torchvision ResNet-18, Fashion-MNIST",
        "sizes": {
            "train": len(data.train),
            "val": len(data.val),
            "test": len(data.test),
            "resolution": 32,
        },
        "settings": {
            "trials": args.trials,
            "backbone_epochs": args.backbone_epochs,
            "exit_epochs": "1 warm-up + 1 support",
            "max_avg_macs": budget,
            "min_accuracy": floor,
            "sampler": "NachosSampler(n_startup_trials=8, batch_size=4)",
            "space": space.settings(),
            "threads": args.threads,
        },
        "plain_backbone": plain,
        "front": [row(t) for t in sorted(front, key=lambda t: t.values[COST_INDEX])],
        "trials": [row(t) for t in trials if t.values is not None],
        "search_seconds": search_seconds,
        "total_seconds": time.perf_counter() - started,
        "machine": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    out.with_suffix(".md").write_text(_markdown(results))
    print(_markdown(results))
    return 0


def _markdown(results: dict[str, Any]) -> str:
    plain = results["plain_backbone"]
    sizes = results["sizes"]
    lines = [
        "# Exit search on a torchvision ResNet-18 (Fashion-MNIST)",
        "",
        f"{sizes['train']:,} training, {sizes['val']:,} validation and {sizes['test']:,} test "
        f"images at {sizes['resolution']}x{sizes['resolution']}; backbone trained "
        f"{results['settings']['backbone_epochs']} epochs, then frozen; "
        f"{results['settings']['trials']} trials of NachosSampler on the exits; budget "
        f"{results['settings']['max_avg_macs'] / 1e6:.2f} M MACs, floor "
        f"{results['settings']['min_accuracy']:.3f} (validation). Search time "
        f"{results['search_seconds'] / 60:.1f} min, total {results['total_seconds'] / 60:.1f} "
        f"min on {results['settings']['threads']} thread(s).",
        "",
        "| network | exits (stage:head) | val acc | test acc | test avg MACs (M) | of backbone |",
        "|---|---|---|---|---|---|",
        f"| plain backbone | none | {plain['val_accuracy']:.4f} | {plain['test_accuracy']:.4f} "
        f"| {plain['macs'] / 1e6:.2f} | 100 % |",
    ]
    for row in results["front"]:
        exits = ",".join(
            f"{s}:{h}" for s, h in zip(row["exits"]["exit_stages"], row["exits"]["exit_heads"])
        )
        lines.append(
            f"| trial {row['number']} | {exits} | {row['val_accuracy']:.4f} | "
            f"{row['test_accuracy']:.4f} | {row['test_avg_macs'] / 1e6:.2f} | "
            f"{100 * row['test_avg_macs'] / plain['macs']:.0f} % |"
        )
    if not results["front"]:
        lines.append("| (no admissible network) | | | | | |")
    skipped = sum(1 for r in results["trials"] if r["skipped"])
    lines += [
        "",
        f"{len(results['trials'])} finished trials, {skipped} rejected by the static guard "
        f"(not trained), {len(results['front'])} on the admissible front.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
