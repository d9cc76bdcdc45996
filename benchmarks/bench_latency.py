"""Benchmark of the latency cost model and of early-exit inference on onnxruntime.

Measures, in one run on one CPU thread:

(a) a latency lookup table of the default space at 32x32 (``profile_latency``: torch eager
    and onnxruntime, batch sizes 1 and 8);
(b) for random configurations, the per-exit latency at batch 1 predicted by the table
    (``exit_latency``) against the latency measured on the whole network: PyTorch eager
    (``EarlyExitNetwork.predict`` with thresholds that send the sample to that exit) and
    onnxruntime (the exported segment chain, ``OnnxEENN.predict`` likewise); mean absolute
    percentage error per back end, and Kendall tau between the MAC rank and the latency rank
    of the configurations (final exit and first exit);
(c) one EENN found by a small search on the digits data: measured latency per test image at
    batch 1 with early exiting on onnxruntime, against the whole network as one ONNX graph, the
    ratio of peak to average MACs of that exit distribution, and PyTorch eager.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_latency.py [--configs 50] [--out FILE]

Writes a JSON file with the figures, the machine and its load
(``benchmarks/results/latency.json`` by default).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
from bench_costs import random_configs
from scipy.stats import kendalltau

import optuna_nachos as nachos
from optuna_nachos.benchmark import cpu_model
from optuna_nachos.config import EENNConfig
from optuna_nachos.cost import exit_latency, exit_macs, make_session, onnx_bytes, profile_latency
from optuna_nachos.cost._latency import CLOCKS
from optuna_nachos.data import load_dataset
from optuna_nachos.deploy import OnnxEENN, export_onnx
from optuna_nachos.models import build_eenn
from optuna_nachos.record import (
    ACCURACY_INDEX,
    ARTIFACT_ATTR,
    EXIT_RATIOS_ATTR,
)
from optuna_nachos.study import is_feasible

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "latency.json"
NUM_CLASSES = 10
RESOLUTION = 32


def _forced(num_early: int, exit_index: int) -> list[float]:
    """Thresholds that send every sample to ``exit_index`` (1 disables an exit, 0 takes it)."""
    return [0.0 if j == exit_index else 1.0 for j in range(num_early)]


def _measure_exits(
    config: EENNConfig, *, warmup: int, repeats: int, clock: str
) -> dict[str, list[float]]:
    """Measured latency (ms, batch 1) of leaving at each exit, torch eager and onnxruntime.

    Rounds go through the exits in turn (warm-up rounds untimed), so that every exit is timed
    under the same machine load; each exit keeps its median.
    """
    model = build_eenn(config, num_classes=NUM_CLASSES).eval()
    early = model.num_exits - 1
    x = torch.randn(1, 3, RESOLUTION, RESOLUTION)
    xn = x.numpy()
    with tempfile.TemporaryDirectory() as folder:
        export_onnx(folder, model, [1.0] * early, in_channels=3)
        runtime = OnnxEENN(folder, threads=1)
        runs = []
        for j in range(model.num_exits):
            eps = _forced(early, j)
            runs.append(("torch", j, lambda eps=eps: model.predict(x, eps)))
            runs.append(("onnxruntime", j, lambda eps=eps: runtime.predict(xn, eps)))
        for _ in range(warmup):
            for _, _, run in runs:
                run()
        times: dict[tuple[str, int], list[float]] = {(b, j): [] for b, j, _ in runs}
        now = CLOCKS[clock]
        for _ in range(repeats):
            for backend, j, run in runs:
                start = now()
                run()
                times[backend, j].append((now() - start) / 1e6)
    return {
        backend: [statistics.median(times[backend, j]) for j in range(model.num_exits)]
        for backend in ("torch", "onnxruntime")
    }


def _ape(predicted: float, measured: float) -> float:
    return abs(predicted - measured) / measured


def bench_prediction(table, configs, *, warmup: int, repeats: int, clock: str) -> dict[str, Any]:
    rows = []
    for index, config in enumerate(configs):
        measured = _measure_exits(config, warmup=warmup, repeats=repeats, clock=clock)
        rows.append(
            {
                "config": config.to_dict(),
                "exit_macs": exit_macs(config, num_classes=NUM_CLASSES),
                "predicted_ms": {
                    b: exit_latency(config, table, backend=b) for b in ("torch", "onnxruntime")
                },
                "measured_ms": measured,
            }
        )
        print(f"  configuration {index + 1}/{len(configs)} measured", flush=True)
    summary: dict[str, Any] = {}
    for backend in ("torch", "onnxruntime"):
        errors = [
            _ape(p, m)
            for row in rows
            for p, m in zip(row["predicted_ms"][backend], row["measured_ms"][backend])
        ]
        finals = [_ape(r["predicted_ms"][backend][-1], r["measured_ms"][backend][-1]) for r in rows]
        summary[backend] = {
            "mape_all_exits": float(np.mean(errors)),
            "median_ape_all_exits": float(np.median(errors)),
            "mape_final_exit": float(np.mean(finals)),
            "exits_measured": len(errors),
            "kendall_tau_predicted_vs_measured_final": float(
                kendalltau(
                    [r["predicted_ms"][backend][-1] for r in rows],
                    [r["measured_ms"][backend][-1] for r in rows],
                ).statistic
            ),
        }
        for label, index in (("final", -1), ("first", 0)):
            summary[backend][f"kendall_tau_macs_vs_measured_{label}"] = float(
                kendalltau(
                    [r["exit_macs"][index] for r in rows],
                    [r["measured_ms"][backend][index] for r in rows],
                ).statistic
            )
    return {"configs": len(configs), "summary": summary, "rows": rows}


class _Backbone(torch.nn.Module):
    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.forward_backbone(x)


def bench_searched(
    *, n_trials: int, budget: float, seed: int, clock: str, epochs: int
) -> dict[str, Any]:
    """A small search on digits, then the admissible network with the most accuracy per MAC."""
    digits = load_dataset("digits", resolution=RESOLUTION, seed=0)
    space = nachos.MobileNetV3Space(resolutions=(RESOLUTION,))
    with tempfile.TemporaryDirectory() as folder:
        store = optuna.artifacts.FileSystemArtifactStore(folder)
        objective = nachos.NachosObjective(
            dataset=digits,
            space=space,
            max_avg_macs=budget,
            min_accuracy=0.5,
            artifact_store=store,
            train_config=nachos.TrainConfig(
                backbone_epochs=epochs,
                warmup_epochs=max(epochs // 2, 1),
                exit_epochs=max(epochs // 2, 1),
                progress=False,
                seed=seed,
            ),
        )
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = nachos.create_study(
            storage=None, study_name=None, sampler=optuna.samplers.RandomSampler(seed=seed)
        )
        study.optimize(objective, n_trials=n_trials)
        trained = [
            t
            for t in study.trials
            if ARTIFACT_ATTR in t.user_attrs
            and any(r > 0 for r in t.user_attrs[EXIT_RATIOS_ATTR][:-1])
        ]
        if not trained:
            raise RuntimeError("no trained network uses an early exit; raise --search-trials.")
        trial = max(trained, key=lambda t: (is_feasible(t), t.values[ACCURACY_INDEX]))
        deployed = nachos.load_eenn(trial, artifact_store=store)
    model, thresholds = deployed.model, list(deployed.thresholds)
    images = torch.stack([digits.test[i][0] for i in range(len(digits.test))])
    labels = torch.tensor([digits.test[i][1] for i in range(len(digits.test))])
    macs = exit_macs(model.config, num_classes=NUM_CLASSES)
    with tempfile.TemporaryDirectory() as folder:
        export_onnx(
            folder,
            model,
            thresholds,
            in_channels=digits.in_channels,
            preprocessing={"mean": list(digits.test.mean), "std": list(digits.test.std)},
        )
        runtime = OnnxEENN(folder, threads=1)
        full = make_session(onnx_bytes(_Backbone(model), images[:1]), threads=1)
        torch_pred = model.predict(images, thresholds)
        onnx_pred = runtime.predict(images.numpy())
        with torch.no_grad():
            all_logits = model(images).logits
        left = torch.stack(
            [all_logits[int(j)][i] for i, j in enumerate(torch_pred.exit_indices)]
        ).numpy()
        max_logit_diff = float(np.abs(onnx_pred.logits - left).max())
        same = bool(
            np.array_equal(onnx_pred.exit_indices, torch_pred.exit_indices.numpy())
            and np.array_equal(onnx_pred.predictions, torch_pred.predictions.numpy())
        )
        ratios = np.bincount(onnx_pred.exit_indices, minlength=model.num_exits) / len(images)
        avg_macs = float(np.dot(ratios, macs))
        singles = [images[i : i + 1] for i in range(len(images))]
        singles_np = [s.numpy() for s in singles]

        def loop(run, inputs):
            return lambda: [run(x) for x in inputs]

        runs = {
            "onnx_early_exit": loop(runtime.predict, singles_np),
            "onnx_full_network": loop(lambda x: full.run(None, {"input": x}), singles_np),
            "torch_early_exit": loop(lambda x: model.predict(x, thresholds), singles),
            "torch_full_network": loop(model.forward_backbone, singles),
        }
        per_image: dict[str, list[float]] = {name: [] for name in runs}
        with torch.inference_mode():
            for _ in range(1):
                for run in runs.values():
                    run()
            now = CLOCKS[clock]
            for _ in range(3):  # rounds through the four ways, for the same load on each
                for name, run in runs.items():
                    start = now()
                    run()
                    per_image[name].append((now() - start) / 1e6 / len(images))
    latency = {name: statistics.median(values) for name, values in per_image.items()}
    mac_ratio = macs[-1] / avg_macs
    onnx_speedup = latency["onnx_full_network"] / latency["onnx_early_exit"]
    return {
        "trial": trial.number,
        "config": model.config.to_dict(),
        "test_images": len(images),
        "accuracy": float((onnx_pred.predictions == labels.numpy()).mean()),
        "thresholds": thresholds,
        "exit_ratios": ratios.tolist(),
        "exit_macs": macs,
        "avg_macs": avg_macs,
        "mac_ratio_peak_over_avg": mac_ratio,
        "latency_ms_per_image": latency,
        "onnx_early_exit_speedup": onnx_speedup,
        "onnx_speedup_over_mac_ratio": onnx_speedup / mac_ratio,
        "torch_early_exit_speedup": latency["torch_full_network"] / latency["torch_early_exit"],
        "onnx_early_exit_vs_torch_early_exit": latency["torch_early_exit"]
        / latency["onnx_early_exit"],
        "onnx_matches_predict": same,
        "max_abs_logit_difference": max_logit_diff,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", type=int, default=50, help="random configurations")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds per network")
    parser.add_argument("--profile-repeats", type=int, default=15, help="LUT timed rounds")
    parser.add_argument("--search-trials", type=int, default=3)
    parser.add_argument("--budget", type=float, default=2.5e6, help="search MAC budget")
    parser.add_argument("--epochs", type=int, default=3, help="backbone epochs of the search")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--clock",
        choices=tuple(CLOCKS),
        default="thread",
        help="thread: CPU time of the (single) computing thread, robust to other processes on "
        "a shared machine (default); wall: wall time, for a quiet machine",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    started = time.perf_counter()
    load_start = list(os.getloadavg())
    print("(a) profiling the latency table", flush=True)
    table = profile_latency(
        resolutions=(RESOLUTION,),
        num_classes=NUM_CLASSES,
        batch_sizes=(1, 8),
        warmup=5,
        repeats=args.profile_repeats,
        threads=1,
        seed=args.seed,
        clock=args.clock,
    )
    table_path = args.out.with_name(args.out.stem + "_lut.json")
    table.save(table_path)
    profile_seconds = time.perf_counter() - started
    print(f"(b) {args.configs} random configurations, predicted vs measured", flush=True)
    prediction = bench_prediction(
        table,
        random_configs(args.configs, args.seed, resolution=RESOLUTION),
        warmup=2,
        repeats=args.repeats,
        clock=args.clock,
    )
    print("(c) one searched EENN on digits: early exiting on onnxruntime", flush=True)
    searched = bench_searched(
        n_trials=args.search_trials,
        budget=args.budget,
        seed=args.seed,
        clock=args.clock,
        epochs=args.epochs,
    )
    result = {
        "benchmark": "latency",
        "machine": {
            "cpu": cpu_model(),
            "cpu_count": os.cpu_count(),
            "threads": 1,
            "clock": args.clock,
            "load_average_start": [round(v, 2) for v in load_start],
            "load_average_end": [round(v, 2) for v in os.getloadavg()],
            "table_device": dict(table.device),
        },
        "table": {
            "file": table_path.name,
            "blocks": len(table.blocks),
            "method": dict(table.method),
            "seconds": profile_seconds,
        },
        "prediction": prediction,
        "searched": searched,
        "seconds": time.perf_counter() - started,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    for backend, figures in prediction["summary"].items():
        print(
            f"{backend}: MAPE {figures['mape_all_exits']:.1%} over {figures['exits_measured']} "
            f"exits (median APE {figures['median_ape_all_exits']:.1%}); Kendall tau MACs vs "
            f"latency, final exit {figures['kendall_tau_macs_vs_measured_final']:.3f}, "
            f"predicted vs measured {figures['kendall_tau_predicted_vs_measured_final']:.3f}"
        )
    print(
        f"searched EENN: MAC ratio {searched['mac_ratio_peak_over_avg']:.2f}, onnx early-exit "
        f"speed-up {searched['onnx_early_exit_speedup']:.2f} "
        f"({searched['onnx_speedup_over_mac_ratio']:.2f} of the MAC ratio); per image "
        + ", ".join(f"{k} {v:.3f} ms" for k, v in searched["latency_ms_per_image"].items())
    )
    print(f"total {result['seconds']:.0f} s; load {load_start} -> {os.getloadavg()}")
    return result


if __name__ == "__main__":
    main()
