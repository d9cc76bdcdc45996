"""Benchmark of weight sharing: is a candidate inherited from the supernet worth its score?

Parts (each resumable or short; run them in order, the results accumulate in one JSON file):

- ``train``: train the supernet on Fashion-MNIST (28x28, the whole training split minus the
  6,000-image validation split) with the default sandwich settings.
- ``fidelity``: architectures spread over the cost range (the largest, the smallest and
  evenly spaced quantiles of the final-exit MACs of 4,000 random configurations), each
  (1) inherited: extracted, BatchNorm recalibrated, scored on the validation split, and
  (2) trained stand-alone from scratch (phase A only, as many epochs as the supernet had,
  same optimizer settings), scored the same way. Reports Kendall tau and Spearman rho between
  the two accuracy lists (rank fidelity) and, for the largest, smallest and three middle
  architectures, the gap inherited minus stand-alone (quality). Stand-alone trainings run
  in parallel worker processes (``--workers``).
- ``cost``: wall time of one candidate inherited (extraction, recalibration, phase B on the
  cached backbone outputs with the reference exit epochs 5 + 5, calibration, evaluation)
  against the same candidate from scratch with the reference epochs (10 + 5 + 5).
- ``search``: a NachosSampler search (100 random + 10 x 8 proposed candidates) with
  inheritance, budget 2.7 M average MACs, floor 0.60, as the committed cpu tier; resumable
  (``--timeout`` per call, the study lives in SQLite).
- ``summarize``: the figures above, plus the comparison with the committed from-scratch cpu
  tier (``benchmarks/results/cpu/results.json``), into JSON and Markdown.

Usage::

    python benchmarks/bench_supernet.py train --supernet DIR [--epochs 12] [--device auto]
    python benchmarks/bench_supernet.py fidelity --supernet DIR --results FILE [--workers 8]
    python benchmarks/bench_supernet.py cost --supernet DIR --results FILE
    python benchmarks/bench_supernet.py search --supernet DIR --results FILE --storage URL
    python benchmarks/bench_supernet.py summarize --results FILE --markdown FILE

The data come from the Debian package ``dataset-fashion-mnist``.
"""

from __future__ import annotations

import argparse
import dataclasses
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

from optuna_nachos.record import (
    ACCURACY_INDEX,
    COST_INDEX,
    TIMINGS_ATTR,
)

DATASET = "fashion-mnist"
RESOLUTION = 28
BUDGET = 2.7e6
FLOOR = 0.60
CPU_TIER = Path(__file__).parent / "results" / "cpu" / "results.json"


def _environment(device: torch.device) -> dict[str, Any]:
    env = {
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _load(results: Path) -> dict[str, Any]:
    return json.loads(results.read_text()) if results.is_file() else {}


def _save(results: Path, data: dict[str, Any]) -> None:
    results.parent.mkdir(parents=True, exist_ok=True)
    tmp = results.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, results)


def _data(seed: int = 0, train_subset: int | None = None):
    from optuna_nachos.data import load_dataset

    return load_dataset(DATASET, resolution=RESOLUTION, seed=seed, train_subset=train_subset)


# ----------------------------------------------------------------------------------- train


def part_train(args: argparse.Namespace) -> None:
    from optuna_nachos.supernet import SupernetSettings, train_supernet

    data = _data(train_subset=args.train_subset)
    epochs = args.epochs
    if args.time_budget:
        epochs = _epochs_within(args.time_budget, data, args)
    settings = SupernetSettings(
        epochs=epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        device=args.device,
        progress=False,
    )
    started = time.perf_counter()
    supernet = train_supernet(
        data,
        args.supernet,
        settings=settings,
        metadata={"data_seed": 0, "train_subset": args.train_subset},
    )
    seconds = time.perf_counter() - started
    history = supernet.metadata["history"]
    print(
        json.dumps(
            {
                "seconds_this_call": round(seconds, 1),
                "train_seconds_total": round(sum(r["seconds"] for r in history), 1),
                "last": history[-1]["val"],
            }
        )
    )


def _epochs_within(budget: float, data: Any, args: argparse.Namespace) -> int:
    """Epochs that fit ``budget`` seconds, from the time of a few sandwich steps."""
    import math

    from optuna_nachos.supernet import Supernet, SupernetSettings
    from optuna_nachos.supernet._train import _sandwich_step

    device = _device(args.device)
    settings = SupernetSettings(batch_size=args.batch_size, device=str(device))
    probe = Supernet(num_classes=10, in_channels=1, resolution=RESOLUTION).to(
        device, memory_format=torch.channels_last
    )
    loader = torch.utils.data.DataLoader(data.train, batch_size=args.batch_size, shuffle=True)
    generator = torch.Generator().manual_seed(0)
    times = []
    for step, (images, targets) in enumerate(loader):
        if step == 12:
            break
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        images = images.to(device, memory_format=torch.channels_last)
        _sandwich_step(
            probe,
            images,
            targets.to(device),
            settings=settings,
            generator=generator,
            use_amp=device.type == "cuda",
        )
        probe.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    step_seconds = statistics.median(times[2:])
    epoch_seconds = math.ceil(len(data.train) / args.batch_size) * step_seconds
    # Per-epoch evaluation (two extractions, recalibration, validation) and loading: ~15 %.
    epochs = max(1, int(budget / (1.15 * epoch_seconds)))
    print(
        json.dumps(
            {"probe_step_seconds": step_seconds, "epoch_seconds": epoch_seconds, "epochs": epochs}
        ),
        flush=True,
    )
    return epochs


# -------------------------------------------------------------------------------- fidelity


def _architectures(count: int, *, seed: int = 0) -> list[tuple[str, Any]]:
    """The largest, the smallest and ``count - 2`` configurations at evenly spaced quantiles
    of the final-exit cost of 4,000 random configurations."""
    from optuna_nachos.cost import exit_macs
    from optuna_nachos.supernet import (
        largest_config,
        random_config,
        smallest_config,
    )

    generator = torch.Generator().manual_seed(seed)
    pool = [random_config(generator, resolution=RESOLUTION) for _ in range(4000)]
    costed = sorted(
        ((exit_macs(c, num_classes=10, in_channels=1)[-1], i) for i, c in enumerate(pool)),
    )
    middle = count - 2
    picks = [costed[round((k + 1) * (len(costed) - 1) / (middle + 1))][1] for k in range(middle)]
    chosen = [
        (
            "largest",
            largest_config(resolution=RESOLUTION),
        ),
        (
            "smallest",
            smallest_config(resolution=RESOLUTION),
        ),
    ]
    chosen += [(f"q{k + 1:02d}", pool[index]) for k, index in enumerate(picks)]
    return chosen


@torch.no_grad()
def _final_accuracy(model: torch.nn.Module, dataset: Any, device: torch.device) -> float:
    from optuna_nachos.train import collect_exit_outputs

    outputs = collect_exit_outputs(model, dataset, batch_size=512, device=device)
    return float((outputs.predictions[:, -1] == outputs.labels).float().mean())


def _standalone_worker(payload: dict[str, Any]) -> dict[str, Any]:
    """Train one architecture from scratch (phase A only) in a worker process."""
    from optuna_nachos import EENNConfig, build_eenn
    from optuna_nachos.train import TrainConfig, fit

    torch.set_num_threads(payload["threads"])
    device = _device(payload["device"])
    data = _data(train_subset=payload["train_subset"])
    config = EENNConfig.from_dict(payload["config"])
    torch.manual_seed(payload["seed"])
    model = build_eenn(config, num_classes=10, in_channels=1)
    started = time.perf_counter()
    fit(
        model,
        data,
        config=TrainConfig(
            backbone_epochs=payload["epochs"],
            warmup_epochs=0,
            exit_epochs=0,
            lr=payload["lr"],
            batch_size=payload["batch_size"],
            device=str(device),
            seed=payload["seed"],
            progress=False,
        ),
    )
    seconds = time.perf_counter() - started
    return {
        "name": payload["name"],
        "val_accuracy": _final_accuracy(model, data.val, device),
        "test_accuracy": _final_accuracy(model, data.test, device),
        "train_seconds": seconds,
    }


def part_fidelity(args: argparse.Namespace) -> None:
    from scipy.stats import kendalltau, spearmanr

    from optuna_nachos.cost import exit_macs
    from optuna_nachos.supernet import load_supernet

    device = _device(args.device)
    supernet = load_supernet(args.supernet, device=device)
    epochs = args.standalone_epochs or int(supernet.metadata["epochs_done"])
    settings = supernet.metadata["settings"]
    data = _data(train_subset=args.train_subset)
    architectures = _architectures(args.count)
    rows: dict[str, dict[str, Any]] = {}
    for name, config in architectures:
        started = time.perf_counter()
        model = supernet.extract(
            config, calibration_data=data, batches=settings["recalibration_batches"]
        )
        rows[name] = {
            "config": config.to_dict(),
            "final_macs": int(exit_macs(config, num_classes=10, in_channels=1)[-1]),
            "inherited_val_accuracy": _final_accuracy(model, data.val, device),
            "inherited_test_accuracy": _final_accuracy(model, data.test, device),
            "inherit_seconds": time.perf_counter() - started,
        }
    payloads = [
        {
            "name": name,
            "config": config.to_dict(),
            "epochs": epochs,
            "lr": settings["lr"],
            "batch_size": settings["batch_size"],
            "seed": 0,
            "train_subset": args.train_subset,
            "device": str(device),
            "threads": 1 if device.type == "cuda" else torch.get_num_threads(),
        }
        for name, config in architectures
    ]
    started = time.perf_counter()
    if args.standalone_from is not None:
        # Stand-alone accuracies do not depend on the supernet: reuse those of an earlier run
        # of the same architectures (checked by configuration and epochs).
        earlier = json.loads(Path(args.standalone_from).read_text())["fidelity"]
        if earlier["standalone_epochs"] != epochs:
            raise SystemExit(f"{args.standalone_from} has other stand-alone epochs")
        standalone = []
        for name, config in architectures:
            row = earlier["architectures"][name]
            if row["config"] != config.to_dict():
                raise SystemExit(f"{args.standalone_from}: {name} is another architecture")
            standalone.append(
                {
                    "name": name,
                    "val_accuracy": row["standalone_val_accuracy"],
                    "test_accuracy": row["standalone_test_accuracy"],
                    "train_seconds": row["standalone_train_seconds"],
                }
            )
    elif args.workers > 1:
        context = torch.multiprocessing.get_context("spawn")
        with context.Pool(args.workers) as pool:
            standalone = pool.map(_standalone_worker, payloads)
    else:
        standalone = [_standalone_worker(p) for p in payloads]
    wall = time.perf_counter() - started
    for result in standalone:
        rows[result["name"]].update(
            standalone_val_accuracy=result["val_accuracy"],
            standalone_test_accuracy=result["test_accuracy"],
            standalone_train_seconds=result["train_seconds"],
        )
    inherited = [rows[n]["inherited_val_accuracy"] for n, _ in architectures]
    alone = [rows[n]["standalone_val_accuracy"] for n, _ in architectures]
    tau = kendalltau(inherited, alone)
    rho = spearmanr(inherited, alone)
    by_cost = sorted(
        (name for name, _ in architectures if name.startswith("q")),
        key=lambda n: rows[n]["final_macs"],
    )
    middle = [
        by_cost[len(by_cost) // 4],
        by_cost[len(by_cost) // 2],
        by_cost[3 * len(by_cost) // 4],
    ]
    quality = {
        name: {
            "inherited_test": rows[name]["inherited_test_accuracy"],
            "standalone_test": rows[name]["standalone_test_accuracy"],
            "gap_points": 100
            * (rows[name]["inherited_test_accuracy"] - rows[name]["standalone_test_accuracy"]),
        }
        for name in ("largest", "smallest", *middle)
    }
    results = _load(args.results)
    results["fidelity"] = {
        "train_subset": args.train_subset,
        "architectures": rows,
        "standalone_epochs": epochs,
        "kendall_tau": float(tau.statistic),
        "kendall_p": float(tau.pvalue),
        "spearman_rho": float(rho.statistic),
        "quality": quality,
        "standalone_wall_seconds": wall,
        "workers": args.workers,
        "environment": _environment(device),
    }
    _save(args.results, results)
    print(json.dumps({"kendall_tau": float(tau.statistic), "quality": quality}, indent=1))


# ------------------------------------------------------------------------------------ cost


def part_cost(args: argparse.Namespace) -> None:
    from optuna_nachos import build_eenn
    from optuna_nachos.cost import exit_macs
    from optuna_nachos.supernet import load_supernet
    from optuna_nachos.train import TrainConfig, calibrate_and_evaluate, fit, fit_exits

    device = _device(args.device)
    supernet = load_supernet(args.supernet, device=device)
    data = _data(train_subset=args.train_subset)
    config = dataclasses.replace(_architectures(5)[3][1], exit_stages=(1, 3))
    costs = [float(c) for c in exit_macs(config, num_classes=10, in_channels=1)]
    train = TrainConfig(device=str(device), progress=False)

    def evaluate(model: torch.nn.Module) -> dict[str, Any]:
        evaluation = calibrate_and_evaluate(
            model, data, costs, max_avg_macs=BUDGET, min_accuracy=FLOOR, device=str(device)
        )
        return {
            "val_accuracy": float(evaluation.validation.accuracy),
            "test_accuracy": float(evaluation.test.accuracy),
            "test_avg_macs": float(evaluation.test.avg_macs),
        }

    timings: dict[str, Any] = {}
    started = time.perf_counter()
    model = supernet.extract(
        config,
        calibration_data=data,
        batches=supernet.metadata["settings"]["recalibration_batches"],
    )
    extracted = time.perf_counter()
    fit_exits(model, data, config=train, exit_costs=costs, max_avg_macs=BUDGET)
    trained = time.perf_counter()
    metrics = evaluate(model)
    done = time.perf_counter()
    timings["inherited"] = {
        "extract_and_recalibrate_seconds": extracted - started,
        "exit_phase_seconds": trained - extracted,
        "calibration_and_evaluation_seconds": done - trained,
        "total_seconds": done - started,
        **metrics,
    }
    torch.manual_seed(0)
    scratch = build_eenn(config, num_classes=10, in_channels=1)
    started = time.perf_counter()
    fit(scratch, data, config=train, exit_costs=costs, max_avg_macs=BUDGET)
    trained = time.perf_counter()
    metrics = evaluate(scratch)
    done = time.perf_counter()
    timings["scratch_reference_epochs"] = {
        "train_seconds": trained - started,
        "calibration_and_evaluation_seconds": done - trained,
        "total_seconds": done - started,
        **metrics,
    }
    timings["speedup"] = (
        timings["scratch_reference_epochs"]["total_seconds"] / timings["inherited"]["total_seconds"]
    )
    timings["config"] = config.to_dict()
    timings["train_subset"] = args.train_subset
    timings["supernet_train_seconds"] = sum(r["seconds"] for r in supernet.metadata["history"])
    timings["environment"] = _environment(device)
    results = _load(args.results)
    results.setdefault("cost", {})[device.type] = timings
    _save(args.results, results)
    print(json.dumps(timings, indent=1))


# ---------------------------------------------------------------------------------- search


def part_search(args: argparse.Namespace) -> None:
    import optuna_nachos as nachos
    from optuna_nachos.train import TrainConfig

    device = _device(args.device)
    data = _data(train_subset=args.train_subset)
    objective = nachos.NachosObjective(
        dataset=data,
        space=nachos.MobileNetV3Space(resolutions=(RESOLUTION,)),
        max_avg_macs=BUDGET,
        min_accuracy=FLOOR,
        train_config=TrainConfig(
            warmup_epochs=args.warmup_epochs,
            exit_epochs=args.exit_epochs,
            device=str(device),
            progress=False,
        ),
        supernet=args.supernet,
    )
    sampler = nachos.create_sampler(
        "nachos",
        space=objective.space,
        seed=args.seed,
        n_startup_trials=args.startup_trials,
        **objective.sampler_options(),
    )
    study = nachos.create_study(
        study_name=f"supernet-nachos-{args.seed}",
        storage=args.storage,
        sampler=sampler,
        settings=objective.settings(),
    )
    started = time.perf_counter()
    nachos.run_search(study, objective, n_trials=args.n_trials, timeout=args.timeout)
    seconds = time.perf_counter() - started
    results = _load(args.results)
    search = results.setdefault("search", {"calls": []})
    search["calls"].append({"seconds": seconds, "trials_after": len(study.trials)})
    search.update(
        storage=args.storage,
        study_name=study.study_name,
        n_trials=args.n_trials,
        warmup_epochs=args.warmup_epochs,
        exit_epochs=args.exit_epochs,
        train_subset=args.train_subset,
        environment=_environment(device),
    )
    _save(args.results, results)
    print(json.dumps({"trials": len(study.trials), "seconds_this_call": round(seconds, 1)}))


# ------------------------------------------------------------------------------- summarize


def _search_figures(storage: str, study_name: str) -> dict[str, Any]:
    import optuna

    import optuna_nachos as nachos

    study = optuna.load_study(study_name=study_name, storage=storage)
    finished = [t for t in study.trials if t.state.is_finished()]
    admissible = nachos.admissible_trials(study)
    best = max(admissible, key=lambda t: t.values[ACCURACY_INDEX], default=None)
    seconds = [
        t.user_attrs[TIMINGS_ATTR]["trial_seconds"]
        for t in finished
        if TIMINGS_ATTR in t.user_attrs
    ]
    return {
        "trials": len(finished),
        "trained": len(seconds),
        "admissible": len(admissible),
        "hypervolume": nachos.hypervolume(study, min_accuracy=FLOOR, max_avg_macs=BUDGET),
        "best": None
        if best is None
        else {
            "trial": best.number,
            "accuracy": best.values[ACCURACY_INDEX],
            "avg_macs": best.values[COST_INDEX],
            "user_attrs": {
                k: best.user_attrs.get(k)
                for k in ("val_accuracy", "val_avg_macs", "exit_ratios", "accuracy_per_exit")
            },
        },
        "median_trained_trial_seconds": statistics.median(seconds) if seconds else None,
        "trained_trial_seconds_total": sum(seconds),
    }


def part_summarize(args: argparse.Namespace) -> None:
    results = _load(args.results)
    search = results.get("search")
    if search:
        search["figures"] = _search_figures(search["storage"], search["study_name"])
        search["wall_seconds"] = sum(call["seconds"] for call in search["calls"])
    if CPU_TIER.is_file():
        cpu = json.loads(CPU_TIER.read_text())
        results["cpu_tier_reference"] = _cpu_tier_nachos(cpu)
    _save(args.results, results)
    Path(args.markdown).write_text(_markdown(results))
    print(Path(args.markdown).read_text())


def _cpu_tier_nachos(cpu: dict[str, Any]) -> dict[str, Any]:
    """The committed from-scratch cpu tier's NachosSampler experiment, as summarized there."""
    experiment = next((e for e in cpu.get("experiments", []) if e.get("name") == "nachos"), {})
    return {
        "summary": experiment.get("summary"),
        "runs": [
            {"seed": r.get("seed"), "hypervolume": r.get("hypervolume"), "best": r.get("best")}
            for r in experiment.get("runs", [])
        ],
        "part_seconds": cpu.get("parts", {}).get("nachos", {}).get("seconds"),
    }


def _fmt(value: Any, digits: int = 4) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return "–" if value is None else str(value)


def _markdown(results: dict[str, Any]) -> str:
    lines = ["# Weight sharing on Fashion-MNIST (28x28)", ""]
    fidelity = results.get("fidelity")
    if fidelity:
        env = fidelity["environment"]
        lines += [
            "## Rank fidelity and quality",
            "",
            f"{len(fidelity['architectures'])} architectures; stand-alone: "
            f"{fidelity['standalone_epochs']} epochs from scratch (phase A), on "
            f"{env.get('gpu', env['device'])}.",
            "",
            f"- Kendall tau (validation accuracy, inherited vs stand-alone): "
            f"**{fidelity['kendall_tau']:.3f}** (p = {fidelity['kendall_p']:.2g}); "
            f"Spearman rho {fidelity['spearman_rho']:.3f}",
            "",
            "| architecture | final-exit MACs | inherited val | stand-alone val | "
            "inherited test | stand-alone test |",
            "|---|---|---|---|---|---|",
        ]
        for name, row in sorted(
            fidelity["architectures"].items(), key=lambda item: item[1]["final_macs"]
        ):
            lines.append(
                f"| {name} | {row['final_macs'] / 1e6:.2f} M | "
                f"{row['inherited_val_accuracy']:.4f} | {row['standalone_val_accuracy']:.4f} | "
                f"{row['inherited_test_accuracy']:.4f} | {row['standalone_test_accuracy']:.4f} |"
            )
        lines += [
            "",
            "| quality (test) | inherited | stand-alone | gap (points) |",
            "|---|---|---|---|",
        ]
        for name, row in fidelity["quality"].items():
            lines.append(
                f"| {name} | {row['inherited_test']:.4f} | {row['standalone_test']:.4f} | "
                f"{row['gap_points']:+.2f} |"
            )
        lines.append("")
    for device, cost in sorted(results.get("cost", {}).items()):
        inherited, scratch = cost["inherited"], cost["scratch_reference_epochs"]
        lines += [
            f"## Cost of one candidate ({device})",
            "",
            "| | total s | val acc | test acc | test avg MACs |",
            "|---|---|---|---|---|",
            f"| inherited (recalibration, exits 5 + 5 on cached outputs, calibration) | "
            f"{inherited['total_seconds']:.1f} | {inherited['val_accuracy']:.4f} | "
            f"{inherited['test_accuracy']:.4f} | {inherited['test_avg_macs'] / 1e6:.3f} M |",
            f"| from scratch, reference epochs 10 + 5 + 5 | {scratch['total_seconds']:.1f} | "
            f"{scratch['val_accuracy']:.4f} | {scratch['test_accuracy']:.4f} | "
            f"{scratch['test_avg_macs'] / 1e6:.3f} M |",
            "",
            f"Speed-up {cost['speedup']:.1f}x; supernet training "
            f"{cost['supernet_train_seconds'] / 60:.1f} min.",
            "",
        ]
    search = results.get("search")
    if search and "figures" in search:
        figures = search["figures"]
        best = figures["best"] or {}
        lines += [
            "## Search with inheritance",
            "",
            f"{figures['trials']} candidates ({figures['trained']} trained), budget "
            f"{BUDGET / 1e6:.1f} M, floor {FLOOR}; exit phase {search['warmup_epochs']} + "
            f"{search['exit_epochs']} epochs; wall time {search['wall_seconds'] / 60:.1f} min on "
            f"{search['environment'].get('gpu', search['environment']['device'])}.",
            "",
            f"- admissible: {figures['admissible']}; hypervolume {_fmt(figures['hypervolume'])}",
            f"- best admissible: accuracy {_fmt(best.get('accuracy'))}, average MACs "
            f"{_fmt((best.get('avg_macs') or 0) / 1e6, 3)} M",
            "",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parts = parser.add_subparsers(dest="part", required=True)
    for name in ("train", "fidelity", "cost", "search", "summarize"):
        part = parts.add_parser(name)
        part.add_argument("--results", type=Path, default=Path("benchmarks/results/supernet.json"))
        part.add_argument("--device", default="auto")
        part.add_argument("--threads", type=int, default=None)
        if name != "summarize":
            part.add_argument("--supernet", required=True)
        if name != "summarize":
            part.add_argument("--train-subset", type=int, default=None)
        if name == "train":
            part.add_argument("--epochs", type=int, default=12)
            part.add_argument("--batch-size", type=int, default=128)
            part.add_argument("--lr", type=float, default=0.05)
            part.add_argument(
                "--time-budget",
                type=float,
                default=None,
                help="choose the epochs that fit this many seconds (overrides --epochs)",
            )
        if name == "fidelity":
            part.add_argument("--count", type=int, default=16)
            part.add_argument("--workers", type=int, default=1)
            part.add_argument("--standalone-epochs", type=int, default=None)
            part.add_argument(
                "--standalone-from",
                default=None,
                help="reuse the stand-alone accuracies of an earlier results file",
            )
        if name == "search":
            part.add_argument("--storage", required=True)
            part.add_argument("--n-trials", type=int, default=180)
            part.add_argument("--startup-trials", type=int, default=100)
            part.add_argument("--warmup-epochs", type=int, default=5)
            part.add_argument("--exit-epochs", type=int, default=5)
            part.add_argument("--timeout", type=float, default=None)
            part.add_argument("--seed", type=int, default=0)
        if name == "summarize":
            part.add_argument(
                "--markdown", type=Path, default=Path("benchmarks/results/supernet.md")
            )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    {
        "train": part_train,
        "fidelity": part_fidelity,
        "cost": part_cost,
        "search": part_search,
        "summarize": part_summarize,
    }[args.part](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
