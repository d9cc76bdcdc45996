"""Benchmark of the cost layer and of dynamic early-exit inference.

Measures, in one run:

(a) per-exit cost evaluations per second of the analytic closed form versus fvcore (build the
    network, trace its all-exits forward) over the same random configurations, checking that
    both give the same numbers. The analytic model is timed warm (per-stage memo tables
    filled, as in a long search) and cold (memo tables emptied before every evaluation).
(b) ``model.predict(x, thresholds=[0] * E)`` (every sample leaves at the first exit) versus the
    all-exits forward ``model(x)`` in eval mode under ``torch.no_grad``, at batch 1 and 256.

Usage::

    python benchmarks/bench_costs.py [--out FILE] [--configs 20] [--threads N]

Writes a JSON file with the figures and the machine (``benchmarks/results/costs.json`` by
default).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from optuna_nachos.benchmark import cpu_model
from optuna_nachos.config import EENNConfig
from optuna_nachos.cost import count_exit_macs, exit_macs
from optuna_nachos.cost._analytic import clear_caches
from optuna_nachos.models import build_eenn

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "costs.json"
NUM_CLASSES = 10


def random_configs(count: int, seed: int, *, resolution: int = 32) -> list[EENNConfig]:
    """``count`` random MobileNetV3 early-exit configurations drawn from ``seed``."""
    rng = random.Random(seed)
    configs = []
    for _ in range(count):
        depths = [rng.choice((2, 3, 4)) for _ in range(5)]
        exits = tuple(s for s in (1, 2, 3, 4) if rng.random() < 0.5) or (rng.randint(1, 4),)
        configs.append(
            EENNConfig(
                depths=depths,
                kernel_sizes=[[rng.choice((3, 5, 7)) for _ in range(d)] for d in depths],
                expand_ratios=[[rng.choice((3, 4, 6)) for _ in range(d)] for d in depths],
                exit_stages=exits,
                resolution=resolution,
                exit_head="nachos",
            )
        )
    return configs


def bench_cost_models(configs: list[EENNConfig], *, analytic_repeats: int) -> dict[str, Any]:
    """Evaluations per second of the analytic and the fvcore cost models."""
    exit_macs(configs[0], num_classes=NUM_CLASSES, method="fvcore")  # warm-up: import, JIT
    expected = []
    started = time.perf_counter()
    for config in configs:
        expected.append(exit_macs(config, num_classes=NUM_CLASSES, method="fvcore"))
    fvcore_seconds = time.perf_counter() - started

    # fvcore alone, the network already built (a lower bound of fvcore's cost)
    models = [build_eenn(config, num_classes=NUM_CLASSES) for config in configs]
    started = time.perf_counter()
    for model, config in zip(models, configs, strict=True):
        count_exit_macs(model, (3, config.resolution, config.resolution))
    trace_seconds = time.perf_counter() - started

    clear_caches()
    for config, costs in zip(configs, expected, strict=True):
        if exit_macs(config, num_classes=NUM_CLASSES) != costs:
            raise AssertionError(f"analytic and fvcore disagree on {config.short_name()}")

    started = time.perf_counter()
    for _ in range(analytic_repeats):
        for config in configs:
            exit_macs(config, num_classes=NUM_CLASSES)
    warm_seconds = time.perf_counter() - started

    started = time.perf_counter()
    for _ in range(max(1, analytic_repeats // 10)):
        for config in configs:
            clear_caches()
            exit_macs(config, num_classes=NUM_CLASSES)
    cold_seconds = time.perf_counter() - started
    cold_evaluations = max(1, analytic_repeats // 10) * len(configs)

    fvcore_rate = len(configs) / fvcore_seconds
    trace_rate = len(configs) / trace_seconds
    warm_rate = analytic_repeats * len(configs) / warm_seconds
    cold_rate = cold_evaluations / cold_seconds
    return {
        "configs": len(configs),
        "agree": True,
        "fvcore_evals_per_s": fvcore_rate,
        "fvcore_trace_only_evals_per_s": trace_rate,
        "analytic_warm_evals_per_s": warm_rate,
        "analytic_cold_evals_per_s": cold_rate,
        "speedup_warm_vs_fvcore": warm_rate / fvcore_rate,
        "speedup_cold_vs_fvcore": cold_rate / fvcore_rate,
        "speedup_cold_vs_fvcore_trace_only": cold_rate / trace_rate,
        "analytic_repeats": analytic_repeats,
    }


def _median_seconds(function: Callable[[], Any], *, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def bench_early_exit(*, repeats_small: int, repeats_large: int) -> dict[str, Any]:
    """Dynamic early exit at the first exit versus the all-exits forward."""
    config = EENNConfig(
        depths=(3,) * 5,
        kernel_sizes=((5, 5, 5),) * 5,
        expand_ratios=((4, 4, 4),) * 5,
        exit_stages=(1, 2, 3, 4),
        resolution=32,
    )
    torch.manual_seed(0)
    model = build_eenn(config, num_classes=NUM_CLASSES).eval()
    thresholds = [0.0] * config.num_early_exits
    costs = exit_macs(config, num_classes=NUM_CLASSES)
    out: dict[str, Any] = {
        "config": config.to_dict(),
        "exit_macs": costs,
        "mac_ratio_final_over_first": costs[-1] / costs[0],
    }
    for batch, repeats in ((1, repeats_small), (256, repeats_large)):
        x = torch.randn(batch, 3, config.resolution, config.resolution)
        with torch.no_grad():
            exits = model.predict(x, thresholds=thresholds).exit_indices
            if not bool((exits == 0).all()):
                raise AssertionError("with thresholds 0 every sample must leave at exit 0")

            def forward(x: torch.Tensor = x) -> Any:
                return model(x)

            def predict(x: torch.Tensor = x) -> Any:
                return model.predict(x, thresholds=thresholds)

            warmup = 5 if batch == 1 else 2
            forward_s = _median_seconds(forward, warmup=warmup, repeats=repeats)
            predict_s = _median_seconds(predict, warmup=warmup, repeats=repeats)
        out[f"batch_{batch}"] = {
            "forward_all_exits_ms": forward_s * 1e3,
            "predict_first_exit_ms": predict_s * 1e3,
            "speedup": forward_s / predict_s,
            "repeats": repeats,
        }
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON file to write")
    parser.add_argument("--configs", type=int, default=20, help="random configurations")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--analytic-repeats", type=int, default=200)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch intra-op threads (default: torch's)"
    )
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()

    # (a) cost models: batch-1 traces are fastest on one thread, which favours fvcore.
    torch.set_num_threads(1)
    costs = bench_cost_models(
        random_configs(args.configs, args.seed), analytic_repeats=args.analytic_repeats
    )
    torch.set_num_threads(threads)
    print(f"(a) cost evaluations per second over {costs['configs']} random configurations")
    print(f"    fvcore (build + trace)       {costs['fvcore_evals_per_s']:12.1f}")
    print(f"    fvcore (trace only)          {costs['fvcore_trace_only_evals_per_s']:12.1f}")
    print(f"    analytic, cold memo tables   {costs['analytic_cold_evals_per_s']:12.1f}")
    print(f"    analytic, warm memo tables   {costs['analytic_warm_evals_per_s']:12.1f}")
    print(
        f"    speed-up vs fvcore: cold {costs['speedup_cold_vs_fvcore']:,.0f}x, "
        f"warm {costs['speedup_warm_vs_fvcore']:,.0f}x "
        f"(cold vs trace only {costs['speedup_cold_vs_fvcore_trace_only']:,.0f}x)"
    )

    # (b) dynamic early exit
    early = bench_early_exit(repeats_small=50, repeats_large=10)
    print(f"(b) predict (all leave at exit 1) vs all-exits forward, {threads} threads")
    print(f"    MACs final/first exit: {early['mac_ratio_final_over_first']:.2f}")
    for batch in (1, 256):
        row = early[f"batch_{batch}"]
        print(
            f"    batch {batch:3d}: forward {row['forward_all_exits_ms']:8.2f} ms, "
            f"predict {row['predict_first_exit_ms']:8.2f} ms, speed-up {row['speedup']:.2f}x"
        )

    result = {
        "cost_models": costs,
        "early_exit": early,
        "machine": {
            "torch": torch.__version__,
            "python": platform.python_version(),
            "cpu": cpu_model(),
            "cpu_count": os.cpu_count(),
            "torch_threads": threads,
            "cost_models_threads": 1,
            "platform": platform.platform(),
        },
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    try:
        import fvcore

        result["machine"]["fvcore"] = getattr(fvcore, "__version__", "unknown")
    except ImportError:  # pragma: no cover
        pass
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
