"""Benchmark of the latency cost model and of early-exit inference on onnxruntime.

Measures, in one run on one CPU thread:

(a) a latency lookup table of the default space at 32x32 (``profile_latency``: torch eager
    and onnxruntime, batch sizes 1 and 8), then the same table calibrated on whole networks
    (``calibrate_latency``: random networks of another seed, timed as deployed);
(b) for random configurations, the per-exit latency at batch 1 predicted by three models
    against the latency measured on the whole network as deployed (``measure_exit_latency``:
    PyTorch eager ``EarlyExitNetwork.predict`` and the onnxruntime segment chain
    ``OnnxEENN.predict``, thresholds that send the sample to that exit, rounds interleaved over
    all networks, median per exit). The models: the blocks timed alone; the table calibrated
    in its own phase (as a user calibrates it); and the same fit on other random networks
    timed in the very rounds of the evaluation, so that the speed of a shared machine, which
    drifts by tens of percent between phases minutes apart, does not enter its error. Mean
    absolute percentage error per back end and model, the ratio of predicted to measured
    latency (the level) and the error once it is removed, the measurement's own noise
    (medians of the even against the odd rounds), and Kendall tau between the MAC rank and
    the latency rank of the configurations (final exit and first exit);
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
from optuna_nachos.cost import (
    CALL_TERM,
    CLOCKS,
    FIXED_TERM,
    LatencyTable,
    calibrate_latency,
    exit_block_counts,
    exit_latency,
    exit_macs,
    fit_term_latencies,
    list_latency_backends,
    make_session,
    measure_exit_latency,
    onnx_bytes,
    profile_latency,
    random_table_configs,
)
from optuna_nachos.data import load_dataset
from optuna_nachos.deploy import OnnxEENN, export_onnx
from optuna_nachos.record import (
    ACCURACY_INDEX,
    ARTIFACT_ATTR,
    EXIT_RATIOS_ATTR,
)
from optuna_nachos.study import is_feasible

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "latency.json"
REGULARIZATION = 0.05
PREDICTORS = ("alone", "calibrated", "calibrated_same_rounds")
NUM_CLASSES = 10
RESOLUTION = 32
BACKENDS = tuple(list_latency_backends())
"""The back ends measured: every registered one (PyTorch eager and onnxruntime)."""


def _ape(predicted: float, measured: float) -> float:
    return abs(predicted - measured) / measured


def _split_half_ape(runs: list[float]) -> float:
    """Disagreement of the medians of the even and the odd rounds: the measurement's own noise."""
    even, odd = statistics.median(runs[0::2]), statistics.median(runs[1::2])
    return abs(even - odd) / odd


def _same_rounds_fit(
    table: LatencyTable, configs, times: dict[str, list[list[list[float]]]]
) -> dict[str, dict[str, float]]:
    """Per back end, the table's terms fitted (batch 1) to ``configs`` timed in ``times``."""
    paths = [
        path
        for config in configs
        for path in exit_block_counts(config, num_classes=NUM_CLASSES, in_channels=3)
    ]
    fitted = {}
    for backend in BACKENDS:
        measured = [statistics.median(run) for network in times[backend] for run in network]
        prior = {
            term: table.term_ms(term, backend=backend)
            for term in (*table.blocks, CALL_TERM, FIXED_TERM)
        }
        fitted[backend], _ = fit_term_latencies(
            paths, measured, prior, regularization=REGULARIZATION
        )
    return fitted


def _predictor_figures(
    predicted: list[float], measured: list[float], finals: tuple[list[float], list[float]]
) -> dict[str, float]:
    errors = [_ape(p, m) for p, m in zip(predicted, measured)]
    ratios = np.array(predicted) / np.array(measured)
    level = float(np.median(ratios))
    return {
        "mape_all_exits": float(np.mean(errors)),
        "median_ape_all_exits": float(np.median(errors)),
        "p90_ape_all_exits": float(np.percentile(errors, 90)),
        "mape_final_exit": float(np.mean([_ape(p, m) for p, m in zip(*finals)])),
        "median_ratio_predicted_over_measured": level,
        "mape_after_removing_the_median_ratio": float(np.mean(np.abs(ratios / level - 1))),
        "kendall_tau_predicted_vs_measured_final": float(kendalltau(*finals).statistic),
        "kendall_tau_predicted_vs_measured_all_exits": float(
            kendalltau(predicted, measured).statistic
        ),
    }


def bench_prediction(
    table: LatencyTable,
    calibrated: LatencyTable,
    configs,
    *,
    calibration_networks: int,
    seed: int,
    warmup: int,
    rounds: int,
    clock: str,
) -> dict[str, Any]:
    """Per-exit latency predicted by three models against the latency measured as deployed.

    The models: the blocks timed alone (``alone``); the table calibrated in its own phase, as a
    user calibrates it (``calibrated``); and the same fit made on other random networks timed
    in the very rounds of the evaluation (``calibrated_same_rounds``), whose error is the
    model's own, free of the drift of a shared machine's speed between phases.
    """
    fit_configs = random_table_configs(table, calibration_networks, seed=seed + 2)
    times = measure_exit_latency(
        [*fit_configs, *configs],
        num_classes=NUM_CLASSES,
        backends=BACKENDS,
        batch_size=1,
        warmup=warmup,
        rounds=rounds,
        threads=1,
        clock=clock,
        seed=0,
    )
    split = len(fit_configs)
    same_rounds = _same_rounds_fit(table, fit_configs, {b: t[:split] for b, t in times.items()})
    rows = []
    for index, config in enumerate(configs):
        counts = exit_block_counts(config, num_classes=NUM_CLASSES, in_channels=3)
        rows.append(
            {
                "config": config.to_dict(),
                "exit_macs": exit_macs(config, num_classes=NUM_CLASSES),
                "predicted_ms": {
                    "alone": {b: exit_latency(config, table, backend=b) for b in BACKENDS},
                    "calibrated": {
                        b: exit_latency(config, calibrated, backend=b) for b in BACKENDS
                    },
                    "calibrated_same_rounds": {
                        b: [sum(n * same_rounds[b][t] for t, n in c.items()) for c in counts]
                        for b in BACKENDS
                    },
                },
                "measured_ms": {
                    b: [statistics.median(run) for run in times[b][split + index]] for b in BACKENDS
                },
                "split_half_ape": {
                    b: [_split_half_ape(run) for run in times[b][split + index]] for b in BACKENDS
                },
            }
        )
    summary: dict[str, Any] = {}
    for backend in BACKENDS:
        measured = [m for row in rows for m in row["measured_ms"][backend]]
        finals = [row["measured_ms"][backend][-1] for row in rows]
        figures: dict[str, Any] = {
            "exits_measured": len(measured),
            "measurement_noise_mape": float(
                np.mean([e for row in rows for e in row["split_half_ape"][backend]])
            ),
        }
        for name in PREDICTORS:
            predicted = [p for row in rows for p in row["predicted_ms"][name][backend]]
            predicted_finals = [row["predicted_ms"][name][backend][-1] for row in rows]
            figures[name] = _predictor_figures(predicted, measured, (predicted_finals, finals))
        for label, index in (("final", -1), ("first", 0)):
            figures[f"kendall_tau_macs_vs_measured_{label}"] = float(
                kendalltau(
                    [r["exit_macs"][index] for r in rows],
                    [r["measured_ms"][backend][index] for r in rows],
                ).statistic
            )
        summary[backend] = figures
    return {
        "configs": len(configs),
        "rounds": rounds,
        "same_rounds_fit_networks": calibration_networks,
        "summary": summary,
        "rows": rows,
    }


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
        onnx_pred = runtime.predict(images.numpy(), preprocess=False)  # normalized already
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
            "onnx_early_exit": loop(lambda x: runtime.predict(x, preprocess=False), singles_np),
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
    parser.add_argument(
        "--rounds", type=int, default=10, help="timed rounds over all networks (prediction)"
    )
    parser.add_argument(
        "--calibration-networks", type=int, default=40, help="networks of the calibration"
    )
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
    profile_seconds = time.perf_counter() - started
    print(f"    calibrating on {args.calibration_networks} whole networks", flush=True)
    calibrated = calibrate_latency(
        table,
        networks=args.calibration_networks,
        rounds=args.rounds,
        regularization=REGULARIZATION,
        seed=args.seed + 1,
    )
    table_path = args.out.with_name(args.out.stem + "_lut.json")
    calibrated.save(table_path)
    calibration_seconds = time.perf_counter() - started - profile_seconds
    print(f"(b) {args.configs} random configurations, predicted vs measured", flush=True)
    prediction = bench_prediction(
        table,
        calibrated,
        random_configs(args.configs, args.seed, resolution=RESOLUTION),
        calibration_networks=args.calibration_networks,
        seed=args.seed,
        warmup=2,
        rounds=args.rounds,
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
            "calibration": {k: v for k, v in calibrated.calibration.items() if k != "alone"},
            "calibration_seconds": calibration_seconds,
        },
        "prediction": prediction,
        "searched": searched,
        "seconds": time.perf_counter() - started,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    for backend, figures in prediction["summary"].items():
        print(
            f"{backend}: {figures['exits_measured']} exits, measurement noise "
            f"{figures['measurement_noise_mape']:.1%}; Kendall tau MACs vs latency, final exit "
            f"{figures['kendall_tau_macs_vs_measured_final']:.3f}"
        )
        for name in PREDICTORS:
            table_figures = figures[name]
            print(
                f"  {name}: MAPE {table_figures['mape_all_exits']:.1%} (median "
                f"{table_figures['median_ape_all_exits']:.1%}; predicted/measured "
                f"{table_figures['median_ratio_predicted_over_measured']:.2f}, "
                f"{table_figures['mape_after_removing_the_median_ratio']:.1%} without it), "
                f"Kendall tau predicted vs measured, final exit "
                f"{table_figures['kendall_tau_predicted_vs_measured_final']:.3f}"
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
