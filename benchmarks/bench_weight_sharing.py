"""Benchmark of weight sharing on a CPU: the supernet recipe, and what one candidate costs.

Fashion-MNIST at 28x28 (the Debian package ``dataset-fashion-mnist``), data seed 0 (54,000
training, 6,000 validation and 10,000 test images). Parts, each short and writing one small
JSON file under ``--out`` (default ``benchmarks/results/weight_sharing``):

- the supernet itself is trained with the CLI (its log is kept beside it)::

      optuna-nachos supernet train --dataset fashion-mnist --resolution 28 \\
          --out benchmarks/results/weight_sharing/supernet --half --threads 2

- ``cost``: ``--candidates`` drawn the way a search draws them (the space's parameters
  sampled at random, kept when the static guard admits them at the budget 2.7 M), run in
  order in one study through the whole objective (``NachosObjective.__call__``: extraction,
  BatchNorm recalibration, the exit phase, threshold calibration, validation, and the test
  split for the trials that can reach the admissible front), inherited with the settings of
  the flags (``--exit-rows``, ``--exit-epochs``, ``--val-rows``, ``--recalibration-batches``),
  and the first ``--scratch`` of them from scratch with the committed cpu tier's settings
  (4,000 training images, 4 + 1 + 1 epochs), in one process on one thread. Reports seconds
  per candidate (with the evaluation's share), how many were tested, and the ratio
  (``cost_<variant>.json``).
- ``candidates``: the fidelity benchmark's candidates, fixed once (``candidates.json``):
  ``--candidates`` drawn as the search draws them, plus the largest and the smallest subnet
  with every exit.
- ``groundtruth``: each candidate trained from scratch (``--gt-epochs`` epochs of the backbone
  on all training images, then the exit phase, 5 + 5 epochs), scored by the objective:
  validation accuracy at the budget with its exits and calibrated thresholds, and the
  final-exit accuracy. One small JSON file per candidate and seed under ``groundtruth/``;
  ``--timeout`` stops before a candidate that would not finish in time, and a later call
  resumes (seeds 0 and 1; the second on the first ``--ceiling`` candidates: the noise
  ceiling).
- ``inherited``: each candidate through the objective on the supernet with the settings of
  the flags (as ``cost``), into ``inherited/<variant>/``; every candidate is also scored on
  test there (``test_evaluation="every"``), for the final-exit comparison.
- ``fidelity``: per inherited variant, Kendall tau and Spearman rho (bootstrap 95 %
  intervals) between inherited and ground-truth scores, on the objective and on the final
  exit, beside the ceiling (ground truth seed 0 against seed 1); admissibility agreement;
  regret of the inherited choice.
- ``ab``: the first and the new supernet recipe at equal training time on a subset
  (``--train-subset`` images, ``--seconds`` of training each, raised so that the slower
  recipe trains at least ``--min-epochs`` epochs), per-exit validation accuracies of the
  largest and smallest subnets. Its supernets stay under ``ab/`` (not committed).

Usage::

    python benchmarks/bench_weight_sharing.py cost [--candidates 8] [--scratch 2] [knobs]
    python benchmarks/bench_weight_sharing.py ab [--train-subset 5000] [--seconds 300] \\
        [--min-epochs 3]
    python benchmarks/bench_weight_sharing.py candidates [--candidates 32]
    python benchmarks/bench_weight_sharing.py groundtruth [--timeout 2400] [--seed 0]
    python benchmarks/bench_weight_sharing.py inherited [--exit-rows 4096] [--exit-epochs 2] \\
        [--val-rows N] [--recalibration-batches 20]
    python benchmarks/bench_weight_sharing.py fidelity
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


def _admissible(trial: Any) -> bool:
    constraints = trial.constraints or {}
    return bool(constraints) and all(value <= 0 for value in constraints.values())


def _run(objective: Any, params: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from optuna_nachos.record import TIMINGS_ATTR

    study = optuna.create_study(directions=["maximize", "minimize"])
    for values in params:
        study.enqueue_trial(values)
    rows = []
    for index in range(len(params)):
        started = time.perf_counter()
        study.optimize(objective, n_trials=1)
        seconds = time.perf_counter() - started
        trial = study.trials[index]  # the enqueued trials run in order
        rows.append(
            {
                "number": trial.number,
                "state": trial.state.name,
                "seconds": seconds,
                "timings": trial.user_attrs.get(TIMINGS_ATTR),
                "val_accuracy": None if trial.values is None else trial.values[0],
                "val_avg_macs": None if trial.values is None else trial.values[1],
                "test_accuracy": trial.user_attrs.get("test_accuracy"),
                "feasible": _admissible(trial),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def part_cost(args: argparse.Namespace) -> None:
    args.candidates = args.candidates or 8
    from optuna_nachos.data import load_dataset

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data = load_dataset(DATASET, resolution=RESOLUTION, seed=0)
    name, knobs = _variant(args)
    # The test split only where a search reads it (the objective's default): the candidates
    # run in one study, in order, as a search's trials do.
    inherited = _objective(supernet=args.supernet, data=data, **knobs)
    params = draw_candidates(inherited, args.candidates, seed=args.seed)
    record: dict[str, Any] = {
        "environment": _environment(),
        "settings": {
            "budget": BUDGET,
            "floor": FLOOR,
            "candidates": args.candidates,
            "draw_seed": args.seed,
            "variant": name,
            "inherited": knobs,
            "test_evaluation": inherited.test_evaluation,
            "scratch": "cpu tier: 4,000 training images, 4 + 1 + 1 epochs, batch 128",
        },
        "params": params,
    }
    print(f"inherited ({name})", flush=True)
    record["inherited"] = _run(inherited, params)
    scratch_data = load_dataset(DATASET, resolution=RESOLUTION, seed=0, train_subset=4000)
    scratch = _objective(
        supernet=None,
        data=scratch_data,
        backbone_epochs=4,
        warmup_epochs=1,
        exit_epochs=1,
        batch_size=128,
    )
    print("from scratch", flush=True)
    record["scratch"] = _run(scratch, params[: args.scratch])
    record["summary"] = _cost_summary(record)
    print(json.dumps(record["summary"], indent=2))
    _write(args.out / f"cost_{name}.json", record)


def _cost_summary(record: dict[str, Any]) -> dict[str, Any]:
    def seconds(rows: list[dict[str, Any]]) -> dict[str, float]:
        total = [r["seconds"] for r in rows]
        evaluation = [r["timings"]["calibration_seconds"] for r in rows if r["timings"]]
        return {
            "mean": statistics.fmean(total),
            "min": min(total),
            "max": max(total),
            "evaluation_mean": statistics.fmean(evaluation) if evaluation else None,
            "tested_on_test": sum(r["test_accuracy"] is not None for r in rows),
            "count": len(rows),
        }

    summary = {name: seconds(record[name]) for name in ("inherited", "scratch")}
    summary["speedup"] = summary["scratch"]["mean"] / summary["inherited"]["mean"]
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

    torch.set_num_threads(args.threads)
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
    # Equal time: each recipe trains as many epochs as fit in the same time at its step cost,
    # measured on the same machine in the same run, the time raised so that the slower recipe
    # trains at least --min-epochs epochs.
    epoch_seconds = {
        name: _step_seconds(data, settings) * -(-len(data.train) // settings.batch_size)
        for name, settings in recipes.items()
    }
    seconds = max(args.seconds, args.min_epochs * max(epoch_seconds.values()))
    record: dict[str, Any] = {
        "environment": _environment(),
        "settings": {
            "train_subset": args.train_subset,
            "seconds": seconds,
            "min_epochs": args.min_epochs,
        },
        "recipes": {},
    }
    for name, settings in recipes.items():
        epochs = max(1, round(seconds / epoch_seconds[name]))
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
            "epoch_seconds_estimate": epoch_seconds[name],
            "epochs": epochs,
            "train_seconds": sum(r["train_seconds"] for r in history),
            "val": history[-1]["val"],
        }
        print(name, json.dumps(record["recipes"][name]), flush=True)
    _write(args.out / "ab.json", record)


_OBJECTIVE_KNOBS = ("exit_rows", "val_rows", "recalibration_batches", "test_evaluation")
"""Settings of ``NachosObjective`` that ``_objective`` takes beside the training ones."""


def _objective(*, supernet: Any, data: Any, budget: float = BUDGET, **train: Any) -> Any:
    from optuna_nachos import MobileNetV3Space, NachosObjective, TrainConfig

    options = {name: train.pop(name) for name in _OBJECTIVE_KNOBS if name in train}
    return NachosObjective(
        dataset=data,
        max_avg_macs=budget,
        min_accuracy=FLOOR,
        space=MobileNetV3Space(resolutions=(RESOLUTION,)),
        supernet=supernet,
        train_config=TrainConfig(device="cpu", progress=False, **train),
        **options,
    )


_UNBOUNDED = 1e12
"""The budget of the largest and smallest subnets, scored on their final exits only (their
first exits may cost more than the search's budget)."""


def _budget(entry: dict[str, Any]) -> float:
    return _UNBOUNDED if entry["name"] in ("largest", "smallest") else BUDGET


def _extreme_params(space: Any, which: str) -> dict[str, Any]:
    """Parameters of the largest or the smallest subnet with every early exit."""
    pick = max if which == "largest" else min
    params = {}
    for name, distribution in space.distributions().items():
        choices = distribution.choices
        params[name] = True if name.startswith("exit_after") else pick(choices)
    return params


def part_candidates(args: argparse.Namespace) -> None:
    from optuna_nachos.data import load_dataset

    args.candidates = args.candidates or 32
    path = args.out / "candidates.json"
    if path.exists():
        print(f"{path} exists: the candidates are fixed once")
        return
    data = load_dataset(DATASET, resolution=RESOLUTION, seed=0, train_subset=1000)
    objective = _objective(supernet=None, data=data)
    drawn = draw_candidates(objective, args.candidates, seed=args.seed)
    entries = [{"name": f"c{i:02d}", "params": p} for i, p in enumerate(drawn)]
    for which in ("largest", "smallest"):
        entries.append({"name": which, "params": _extreme_params(objective.space, which)})
    _write(path, {"budget": BUDGET, "floor": FLOOR, "draw_seed": args.seed, "candidates": entries})


def _candidates(args: argparse.Namespace) -> list[dict[str, Any]]:
    path = args.out / "candidates.json"
    if not path.exists():
        raise SystemExit(f"{path} is missing: run the part 'candidates' first")
    return json.loads(path.read_text())["candidates"]


def _score(objective: Any, params: dict[str, Any]) -> dict[str, Any]:
    """One candidate through ``objective``: the objective's figures and the final exit's."""
    from optuna_nachos.record import ACCURACY_PER_EXIT_ATTR, TIMINGS_ATTR

    study = optuna.create_study(directions=["maximize", "minimize"])
    study.enqueue_trial(params)
    started = time.perf_counter()
    study.optimize(objective, n_trials=1)
    trial = study.trials[-1]
    attrs = trial.user_attrs
    return {
        "state": trial.state.name,
        "seconds": time.perf_counter() - started,
        "val_accuracy": None if trial.values is None else trial.values[0],
        "val_avg_macs": None if trial.values is None else trial.values[1],
        "admissible": _admissible(trial),
        "final_test_accuracy": (attrs.get(ACCURACY_PER_EXIT_ATTR) or [None])[-1],
        "test_accuracy": attrs.get("test_accuracy"),
        "test_exit_accuracies": attrs.get(ACCURACY_PER_EXIT_ATTR),
        "skip_reason": attrs.get("skip_reason"),
        "timings": attrs.get(TIMINGS_ATTR),
    }


def _run_parts(
    args: argparse.Namespace, folder: Path, jobs: list[tuple[str, Any]], estimate: float
) -> None:
    """Run ``jobs`` (file name, callable giving a record) whose file is missing, stopping
    before one that would not finish within ``args.timeout`` seconds."""
    started = time.perf_counter()
    durations: list[float] = []
    for name, job in jobs:
        path = folder / f"{name}.json"
        if path.exists():
            continue
        expected = max(durations) if durations else estimate
        if args.timeout and time.perf_counter() - started + expected > args.timeout:
            print(f"stopping before {name}: the time limit would pass (run again to resume)")
            return
        began = time.perf_counter()
        record = job()
        durations.append(time.perf_counter() - began)
        _write(path, {"environment": _environment(), **record})
    print("all done")


def part_groundtruth(args: argparse.Namespace) -> None:
    from optuna_nachos.data import load_dataset

    torch.set_num_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data = load_dataset(DATASET, resolution=RESOLUTION, seed=0)
    candidates = _candidates(args)
    jobs = []
    for seed, count in ((0, len(candidates)), (1, args.ceiling)):
        train = {
            "backbone_epochs": args.gt_epochs,
            "lr": args.gt_lr,
            "batch_size": 128,
            "seed": seed,
        }
        for entry in candidates[:count]:

            def job(entry: dict[str, Any] = entry, train: dict[str, Any] = train) -> dict:
                objective = _objective(supernet=None, data=data, budget=_budget(entry), **train)
                return {
                    "candidate": entry["name"],
                    "train": train,
                    "budget": _budget(entry),
                    **_score(objective, entry["params"]),
                }

            jobs.append((f"{entry['name']}_seed{seed}", job))
    _run_parts(args, args.out / "groundtruth", jobs, estimate=900.0)


def _variant(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The inherited candidates' settings from the flags, and the name of their folder."""
    knobs = {
        "warmup_epochs": args.exit_epochs,
        "exit_epochs": args.exit_epochs,
        "exit_rows": args.exit_rows,
        "val_rows": args.val_rows,
        "recalibration_batches": args.recalibration_batches,
    }
    name = (
        f"rows{args.exit_rows or 'all'}_epochs{args.exit_epochs}_val{args.val_rows or 'all'}"
        f"_bn{args.recalibration_batches}"
    )
    return name, knobs


def part_inherited(args: argparse.Namespace) -> None:
    from optuna_nachos.data import load_dataset

    torch.set_num_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data = load_dataset(DATASET, resolution=RESOLUTION, seed=0)
    name, train = _variant(args)
    # Every candidate is scored on test too: the fidelity compares final-exit test accuracies.
    objectives = {
        budget: _objective(
            supernet=args.supernet, data=data, budget=budget, test_evaluation="every", **train
        )
        for budget in (BUDGET, _UNBOUNDED)
    }
    jobs = [
        (
            entry["name"],
            lambda entry=entry: {
                "candidate": entry["name"],
                "variant": name,
                "train": train,
                "budget": _budget(entry),
                **_score(objectives[_budget(entry)], entry["params"]),
            },
        )
        for entry in _candidates(args)
    ]
    _run_parts(args, args.out / "inherited" / name, jobs, estimate=60.0)


def _bootstrap(x: list[float], y: list[float], statistic: Any, *, seed: int = 0) -> list[float]:
    generator = torch.Generator().manual_seed(seed)
    values = []
    n = len(x)
    for _ in range(2000):
        index = torch.randint(n, (n,), generator=generator).tolist()
        value = statistic([x[i] for i in index], [y[i] for i in index]).statistic
        if value == value:  # not NaN (a resample with no spread)
            values.append(float(value))
    values.sort()
    return [values[int(0.025 * len(values))], values[int(0.975 * len(values)) - 1]]


def _agreement(pairs: list[tuple[float, float]]) -> dict[str, Any]:
    x, y = [p[0] for p in pairs], [p[1] for p in pairs]
    return {
        "n": len(pairs),
        "kendall_tau": float(stats.kendalltau(x, y).statistic),
        "kendall_tau_95ci": _bootstrap(x, y, stats.kendalltau),
        "spearman_rho": float(stats.spearmanr(x, y).statistic),
        "spearman_rho_95ci": _bootstrap(x, y, stats.spearmanr),
    }


def part_fidelity(args: argparse.Namespace) -> None:
    def load(folder: str, suffix: str = "") -> dict[str, dict[str, Any]]:
        found = {}
        for path in sorted((args.out / folder).glob(f"*{suffix}.json")):
            record = json.loads(path.read_text())
            found[record["candidate"]] = record
        return found

    truth = load("groundtruth", "_seed0")
    second = load("groundtruth", "_seed1")
    names = [e["name"] for e in _candidates(args)]
    searched = [n for n in names if n.startswith("c")]
    record: dict[str, Any] = {
        "environment": _environment(),
        "complete": {
            "groundtruth_seed0": len(truth),
            "groundtruth_seed1": len(second),
            "candidates": len(names),
        },
        "ceiling_seed1_vs_seed0": {},
        "variants": {},
    }

    def pairs(a: dict, b: dict, key: str, among: list[str]) -> list[tuple[float, float]]:
        return [
            (a[n][key], b[n][key])
            for n in among
            if n in a and n in b and a[n][key] is not None and b[n][key] is not None
        ]

    keys = (("val_accuracy", searched), ("final_test_accuracy", names))
    for key, among in keys:
        ceiling_pairs = pairs(second, truth, key, among)
        if len(ceiling_pairs) >= 5:
            record["ceiling_seed1_vs_seed0"][key] = _agreement(ceiling_pairs)
    for folder in sorted(p for p in (args.out / "inherited").glob("*") if p.is_dir()):
        inherited = load(f"inherited/{folder.name}")
        entry: dict[str, Any] = {"inherited": len(inherited)}
        seconds = [r["seconds"] for r in inherited.values()]
        if seconds:
            entry["seconds_mean"] = statistics.fmean(seconds)
        for key, among in keys:
            inherited_pairs = pairs(inherited, truth, key, among)
            if len(inherited_pairs) >= 5:
                entry[key] = _agreement(inherited_pairs)
        entry.update(_choice(inherited, truth, searched))
        entry["standalone"] = _standalone(inherited, truth)
        record["variants"][folder.name] = entry
    ab = args.out / "ab.json"
    if ab.exists():
        record["ab"] = _ab_summary(json.loads(ab.read_text()))
    _write(args.out / "fidelity.json", record)
    (args.out / "fidelity.md").write_text(_fidelity_markdown(record))


def _standalone(
    inherited: dict[str, dict[str, Any]], truth: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """Per-exit test accuracies of the largest and smallest subnets, inherited (the supernet's
    backbone and final classifier, the exits fitted by the variant) against trained alone."""
    out = {}
    for name in ("largest", "smallest"):
        if name in inherited and name in truth:
            shared = inherited[name]["test_exit_accuracies"]
            alone = truth[name]["test_exit_accuracies"]
            out[name] = {
                "inherited": shared,
                "standalone": alone,
                "final_gap_points": 100 * (alone[-1] - shared[-1]),
            }
    return out


def _ab_summary(ab: dict[str, Any]) -> dict[str, Any]:
    """Per recipe of the A/B: epochs, training seconds, per-exit validation accuracies."""
    return {
        name: {
            "epochs": recipe["epochs"],
            "train_seconds": recipe["train_seconds"],
            **{
                f"{which}_exits": figures["exit_accuracies"]
                for which, figures in recipe["val"].items()
            },
        }
        for name, recipe in ab["recipes"].items()
    }


def _interval(agreement: dict[str, Any] | None, key: str) -> str:
    if not agreement:
        return "n/a"
    low, high = agreement[f"{key}_95ci"]
    return f"{agreement[key]:.2f} [{low:.2f}, {high:.2f}] (n={agreement['n']})"


def _percent(values: list[float]) -> str:
    return " / ".join(f"{100 * v:.1f}" for v in values)


def _fidelity_markdown(record: dict[str, Any]) -> str:
    """The fidelity record as tables: agreement per variant beside the ceiling, the largest
    and smallest subnets against stand-alone training, and the recipe A/B."""
    done = record["complete"]
    lines = [
        "# Weight-sharing fidelity",
        "",
        f"Ground truth: {done['groundtruth_seed0']} of {done['candidates']} candidates (seed 0), "
        f"{done['groundtruth_seed1']} with a second seed (the noise ceiling). Objective: "
        "validation accuracy at the budget with the candidate's exits and thresholds; final "
        "exit: test accuracy of the last classifier. Kendall tau and Spearman rho with bootstrap "
        "95 % intervals.",
        "",
        "| variant | s/candidate | tau, objective | rho, objective | tau, final exit | "
        "admissibility agreement | regret (points) |",
        "|---|---|---|---|---|---|---|",
    ]
    ceiling = record["ceiling_seed1_vs_seed0"]
    lines.append(
        f"| ceiling (seed 1 vs 0) | | {_interval(ceiling.get('val_accuracy'), 'kendall_tau')} | "
        f"{_interval(ceiling.get('val_accuracy'), 'spearman_rho')} | "
        f"{_interval(ceiling.get('final_test_accuracy'), 'kendall_tau')} | | |"
    )
    for name, entry in record["variants"].items():
        regret = entry.get("regret")
        regret_text = "n/a" if regret is None else f"{regret['points']:.2f}"
        agreement = entry.get("admissibility_agreement")
        lines.append(
            f"| {name} | {entry.get('seconds_mean', float('nan')):.1f} | "
            f"{_interval(entry.get('val_accuracy'), 'kendall_tau')} | "
            f"{_interval(entry.get('val_accuracy'), 'spearman_rho')} | "
            f"{_interval(entry.get('final_test_accuracy'), 'kendall_tau')} | "
            f"{'n/a' if agreement is None else f'{100 * agreement:.0f} %'} | "
            f"{regret_text} |"
        )
    lines += [
        "",
        "## The largest and smallest subnets against stand-alone training",
        "",
        "Per-exit test accuracies (%), inherited from the supernet (exits fitted by the variant) "
        "and trained alone from scratch on the same data.",
        "",
        "| variant | subnet | inherited | stand-alone | final-exit gap (points) |",
        "|---|---|---|---|---|",
    ]
    for name, entry in record["variants"].items():
        for subnet, row in entry.get("standalone", {}).items():
            lines.append(
                f"| {name} | {subnet} | {_percent(row['inherited'])} | "
                f"{_percent(row['standalone'])} | {row['final_gap_points']:.2f} |"
            )
    if "ab" in record:
        lines += [
            "",
            "## The recipe A/B at equal training time",
            "",
            "| recipe | epochs | training s | largest, per exit (%) | smallest, per exit (%) |",
            "|---|---|---|---|---|",
        ]
        for name, row in record["ab"].items():
            lines.append(
                f"| {name} | {row['epochs']} | {row['train_seconds']:.0f} | "
                f"{_percent(row.get('largest_exits', []))} | "
                f"{_percent(row.get('smallest_exits', []))} |"
            )
    return "\n".join(lines) + "\n"


def _choice(
    inherited: dict[str, dict[str, Any]], truth: dict[str, dict[str, Any]], searched: list[str]
) -> dict[str, Any]:
    """Admissibility agreement and the regret of the candidate the inherited scores choose."""
    both = [n for n in searched if n in inherited and n in truth]
    if not both:
        return {}
    agree = [inherited[n]["admissible"] == truth[n]["admissible"] for n in both]
    found: dict[str, Any] = {"admissibility_agreement": sum(agree) / len(agree)}
    admissible = [n for n in both if inherited[n]["admissible"]]
    truly = [n for n in both if truth[n]["admissible"]]
    if admissible and truly:
        chosen = max(admissible, key=lambda n: inherited[n]["val_accuracy"])
        best = max(truly, key=lambda n: truth[n]["val_accuracy"])
        found["regret"] = {
            "chosen": chosen,
            "best": best,
            "points": 100 * (truth[best]["val_accuracy"] - truth[chosen]["val_accuracy"]),
            "chosen_truly_admissible": truth[chosen]["admissible"],
        }
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "part", choices=["cost", "ab", "candidates", "groundtruth", "inherited", "fidelity"]
    )
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--supernet", default=str(OUT / "supernet"))
    parser.add_argument("--candidates", type=int, default=None)
    parser.add_argument("--scratch", type=int, default=2)
    parser.add_argument("--exit-rows", type=int, default=4096)
    parser.add_argument("--exit-epochs", type=int, default=2)
    parser.add_argument("--val-rows", type=int, default=None)
    parser.add_argument("--recalibration-batches", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-subset", type=int, default=5_000)
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--min-epochs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=2400.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--gt-epochs", type=int, default=3)
    parser.add_argument("--gt-lr", type=float, default=0.05)
    parser.add_argument("--ceiling", type=int, default=16)
    args = parser.parse_args()
    parts = {
        "cost": part_cost,
        "ab": part_ab,
        "candidates": part_candidates,
        "groundtruth": part_groundtruth,
        "inherited": part_inherited,
        "fidelity": part_fidelity,
    }
    parts[args.part](args)


if __name__ == "__main__":
    main()
