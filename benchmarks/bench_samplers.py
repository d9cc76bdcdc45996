"""Benchmark of NachosSampler against Optuna's samplers on an EENN search shaped like the real one.

What is real and what is modelled (stated in every output):

* **Costs are real**: the per-exit MACs of every MobileNetV3 EENN come from
  :func:`optuna_nachos.cost.exit_macs` (analytic, equal to fvcore's count; 10 classes, RGB
  32x32, the ``nachos`` cost convention).
* **Accuracy is a model, not training**: a linear model of per-exit accuracy fitted on real
  measurements made with ``python benchmarks/bench_samplers.py measure``: 16 random
  configurations of the space, trained briefly from scratch on a class-balanced subset of
  ``cifar10-jpeg`` (5,000 training, 1,000 test images; backbone 4 epochs, then each NACHOS exit
  head 4 epochs on the frozen backbone), stored in ``benchmarks/data/accuracy_measurements.json``.
  Among three families (one accuracy per exit stage; the same plus a slope on ``ln`` of the
  backbone MACs up to the exit; intercept and slope on ``ln`` MACs only) the one with the lowest
  leave-one-configuration-out error is used. With these measurements that is the per-stage
  family: exits after stages 1, 2 and 3+ reach about 0.40, 0.40 and 0.44, and, after so little
  training, the network's size adds nothing measurable. The landscape is therefore flatter than
  the real one (where larger networks are more accurate), and the numbers are NOT comparable with
  the paper's.
* **Average MACs = an exit-ratio model applied to the real per-exit costs**: simulated samples
  of uniform difficulty, exit ``j`` right iff difficulty < its modelled accuracy, confidences
  ranking the samples with a noise fitted on the measured precision-at-coverage curves; the most
  accurate operating point within the budget over a grid of per-exit coverages is kept, as the
  threshold search of the real objective does (see :func:`operating_point`).
* The static guard of the real objective is reproduced: a network whose first exit costs more
  than the budget, or without an early exit, is not "trained" (accuracy 0, its first-exit cost,
  violated constraints, user attribute ``skipped_training``).

Constraints: ``max_avg_macs`` 2.7 M (the paper's) and ``min_accuracy`` = the median accuracy of
random, statically feasible networks under this model (printed). Metric: hypervolume of the
admissible front (feasible Pareto trials), accuracy in [0, 1] and average MACs divided by the
budget, reference point (``min_accuracy``, 1.0), against the number of trials, over 5 seeds.

Usage::

    python benchmarks/bench_samplers.py measure --cifar-dir <folder of cifar10-jpeg>  # once
    python benchmarks/bench_samplers.py run --seeds 5 --n-trials 200

``run`` writes ``benchmarks/results/samplers.json`` and ``benchmarks/results/samplers.md``.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import math
import os
import tarfile
import time
from pathlib import Path

import numpy as np

from optuna_nachos.data._cifar import CIFAR10_CLASSES, CIFAR10_MEAN, CIFAR10_STD
from optuna_nachos.record import (
    ACCURACY_INDEX,
    COST_INDEX,
    EXIT_MACS_ATTR,
    EXIT_RATIOS_ATTR,
    SKIP_REASON_ATTR,
)

HERE = Path(__file__).resolve().parent
DATA_DIR = HERE / "data"
MEASUREMENTS = DATA_DIR / "accuracy_measurements.json"
RESULTS_DIR = HERE / "results"

COVERAGES = tuple(round(0.05 * i, 2) for i in range(1, 21))


# --------------------------------------------------------------------------------------------
# Measurements: brief real training of a few configurations on a CIFAR-10 (JPEG copy) subset
# --------------------------------------------------------------------------------------------


def _load_cifar10_jpeg(folder: Path, *, n_train: int, n_test: int, seed: int):
    """A class-balanced subset of the offline JPEG copy of CIFAR-10, as float arrays."""
    from PIL import Image

    archive = folder / "cifar10-jpeg-images.tar.gz"
    classes = CIFAR10_CLASSES
    rng = np.random.default_rng(seed)
    per_class = {"train": n_train // 10, "test": n_test // 10}
    members: dict[tuple[str, int], list[str]] = {}
    with tarfile.open(archive, "r:gz") as tar:
        blobs = {}
        for member in tar:
            if not member.isfile():
                continue
            split, cls, _ = member.name.split("/")
            members.setdefault((split, classes.index(cls)), []).append(member.name)
            blobs[member.name] = tar.extractfile(member).read()
    out = {}
    for split in ("train", "test"):
        images, labels = [], []
        for label in range(10):
            names = sorted(members[(split, label)])
            picked = rng.choice(len(names), size=per_class[split], replace=False)
            for index in sorted(picked):
                with Image.open(io.BytesIO(blobs[names[index]])) as image:
                    images.append(np.asarray(image.convert("RGB")).transpose(2, 0, 1))
                labels.append(label)
        x = np.stack(images).astype(np.float32) / 255.0
        x = (x - np.array(CIFAR10_MEAN, dtype=np.float32)[:, None, None]) / np.array(
            CIFAR10_STD, dtype=np.float32
        )[:, None, None]
        out[split] = (x, np.array(labels, dtype=np.int64))
    return out


def _measure_one(config, data, *, epochs: int, head_epochs: int, seed: int) -> dict:
    """Phase A: backbone and final head; phase B: exit heads on the frozen backbone."""
    import torch
    import torch.nn.functional as F

    from optuna_nachos.models import build_eenn

    torch.manual_seed(seed)
    model = build_eenn(config, num_classes=10)
    x_train, y_train = (torch.from_numpy(a) for a in data["train"])
    x_test, y_test = (torch.from_numpy(a) for a in data["test"])
    generator = torch.Generator().manual_seed(seed)

    def train(params, forward, inputs, epochs_):
        optimizer = torch.optim.SGD(params, lr=0.05, momentum=0.9, weight_decay=5e-5)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs_)
        for _ in range(epochs_):
            order = torch.randperm(len(y_train), generator=generator)
            for start in range(0, len(order), 128):
                index = order[start : start + 128]
                loss = F.cross_entropy(forward(inputs[index]), y_train[index])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            scheduler.step()

    def flip(xb):
        mask = torch.rand(len(xb), generator=generator) < 0.5
        return torch.where(mask[:, None, None, None], xb.flip(3), xb)

    started = time.perf_counter()
    model.train()
    train(model.backbone_parameters(), lambda xb: model.forward_backbone(flip(xb)), x_train, epochs)
    model.eval()
    with torch.no_grad():
        cached_train, cached_test = [], []
        for inputs, cache in ((x_train, cached_train), (x_test, cached_test)):
            feats = inputs
            for segment in model.segments[:-1]:
                feats = torch.cat([segment(feats[i : i + 500]) for i in range(0, len(feats), 500)])
                cache.append(feats)
    for position, head in zip(model.exit_positions, model.exit_heads):
        head.train()
        train(
            list(head.parameters()),
            lambda fb, h=head: h(fb)[:, :-1],
            cached_train[position],
            head_epochs,
        )
        head.eval()
    train_seconds = time.perf_counter() - started
    with torch.no_grad():
        logits = [h(cached_test[p])[:, :-1] for p, h in zip(model.exit_positions, model.exit_heads)]
        logits.append(model.forward_backbone(x_test))
        probs = [torch.softmax(z, dim=1) for z in logits]
        conf = torch.stack([p.max(dim=1).values for p in probs], dim=1).numpy()
        corr = torch.stack([p.argmax(dim=1) == y_test for p in probs], dim=1).numpy()
    exits = []
    for j in range(conf.shape[1]):
        order = np.argsort(-conf[:, j], kind="stable")
        ranked = corr[order, j]
        curve = [float(ranked[: max(1, int(round(c * len(ranked))))].mean()) for c in COVERAGES]
        final_correct = corr[:, -1]
        exits.append(
            {
                "accuracy": float(corr[:, j].mean()),
                "precision_at_coverage": curve,
                "final_correct_given_correct": float(final_correct[corr[:, j]].mean())
                if corr[:, j].any()
                else None,
                "final_correct_given_wrong": float(final_correct[~corr[:, j]].mean())
                if (~corr[:, j]).any()
                else None,
            }
        )
    return {"exits": exits, "train_seconds": train_seconds}


def measure(args: argparse.Namespace) -> None:
    """Train ``--n-configs`` configurations briefly and store per-exit accuracies."""
    import torch

    from optuna_nachos.space import MobileNetV3Space

    torch.set_num_threads(args.threads)
    folder = Path(
        args.cifar_dir or os.path.join(os.environ.get("NACHOS_DATA", "data"), "cifar10-jpeg")
    )
    data = _load_cifar10_jpeg(folder, n_train=args.n_train, n_test=args.n_test, seed=0)
    space = MobileNetV3Space()
    dists = space.distributions()
    rng = np.random.default_rng(args.seed)
    records = []
    if MEASUREMENTS.exists() and args.resume:
        records = json.loads(MEASUREMENTS.read_text())["records"]
    for index in range(args.n_configs):
        params = {name: d.choices[rng.integers(len(d.choices))] for name, d in dists.items()}
        for stage in space.exit_stages:
            params[f"exit_after_stage{stage}"] = True
        if index < len(records):
            continue
        config = space.config_from_params(params)
        result = _measure_one(
            config,
            data,
            epochs=args.epochs,
            head_epochs=args.head_epochs,
            seed=args.seed + index,
        )
        records.append({"config": config.to_dict(), **result})
        print(
            f"[{index + 1}/{args.n_configs}] {config.short_name()} "
            + " ".join(f"{e['accuracy']:.3f}" for e in result["exits"])
            + f" ({result['train_seconds']:.0f} s)",
            flush=True,
        )
        payload = {
            "what": (
                "Per-exit test accuracy of MobileNetV3-space EENNs (exits after stages 1-4 and "
                "the final one) trained from scratch on a class-balanced subset of cifar10-jpeg "
                f"({args.n_train} training and {args.n_test} test images, 32x32): phase A "
                f"trains the backbone and final head for {args.epochs} epochs (random flips), "
                f"phase B each NACHOS exit head for {args.head_epochs} epochs on the frozen "
                "backbone's features; SGD lr 0.05 momentum 0.9 weight decay 5e-5, cosine per "
                "epoch, batch 128; confidence = max softmax of each exit."
            ),
            "coverages": list(COVERAGES),
            "settings": vars(args) | {"cifar_dir": None},
            "records": records,
        }
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        MEASUREMENTS.write_text(json.dumps(payload, indent=1))


# --------------------------------------------------------------------------------------------
# The benchmark objective: real analytic per-exit MACs, an accuracy model fitted on the
# measurements, and an exit-ratio model for the operating point
# --------------------------------------------------------------------------------------------

STAGES = (1, 2, 3, 4, 5)  # 5 = the final exit
N_SAMPLES = 512  # simulated validation samples of the operating-point model
COVERAGE_GRID = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def _prefix_macs(config) -> list[float]:
    """MACs of the backbone up to each stage 1..4 and of the whole single-exit network.

    Computed exactly with :func:`optuna_nachos.cost.exit_macs` on the same backbone with exits
    after every stage, cheap global-pool heads and the reference cost convention (the heads'
    few hundred MACs are negligible).
    """
    from dataclasses import replace

    from optuna_nachos.cost import exit_macs

    probe = replace(config, exit_stages=(1, 2, 3, 4), exit_head="pool_linear", exit_thresholds=None)
    return [float(m) for m in exit_macs(probe, num_classes=10, convention="reference")]


FAMILIES = ("stage", "stage+macs", "macs")


def _design(stages: np.ndarray, log_macs: np.ndarray, family: str) -> np.ndarray:
    columns = []
    if family.startswith("stage"):
        columns += [(stages == s).astype(float) for s in STAGES]
    else:
        columns.append(np.ones(len(stages)))
    if family.endswith("macs"):
        columns.append(log_macs)
    return np.stack(columns, axis=1)


class AccuracyModel:
    """Per-exit accuracy, a linear model fitted on the measurements.

    Families: ``stage`` (one accuracy per exit stage 1-4 and final), ``stage+macs`` (plus a
    common slope on ``ln`` of the backbone MACs up to the exit) and ``macs`` (intercept and
    slope on ``ln`` MACs). The family with the lowest leave-one-configuration-out error is used,
    refitted on all measurements by least squares. The confidence noise ``sigma`` of the
    operating-point model is fitted so that simulated precision-at-coverage curves match the
    measured ones (max-softmax confidence).
    """

    def __init__(self, payload: dict) -> None:
        from optuna_nachos.config import EENNConfig

        records = payload["records"]
        groups, stages, log_macs, targets = [], [], [], []
        curves = []
        for index, record in enumerate(records):
            config = EENNConfig.from_dict(record["config"])
            prefix = _prefix_macs(config)
            for stage, (macs, exit_) in enumerate(zip(prefix, record["exits"]), start=1):
                groups.append(index)
                stages.append(stage)
                log_macs.append(math.log(macs))
                targets.append(exit_["accuracy"])
                curves.append((exit_["accuracy"], exit_["precision_at_coverage"]))
        groups, stages = np.array(groups), np.array(stages)
        log_macs, y = np.array(log_macs), np.array(targets)
        self.loco_rmse = {}
        for family in FAMILIES:
            x = _design(stages, log_macs, family)
            errors = []
            for group in np.unique(groups):
                train = groups != group
                coef, *_ = np.linalg.lstsq(x[train], y[train], rcond=None)
                errors.append((x[~train] @ coef - y[~train]) ** 2)
            self.loco_rmse[family] = float(np.sqrt(np.mean(np.concatenate(errors))))
        self.family = min(FAMILIES, key=lambda f: self.loco_rmse[f])
        x = _design(stages, log_macs, self.family)
        self.coef, *_ = np.linalg.lstsq(x, y, rcond=None)
        residual = y - x @ self.coef
        self.r2 = float(1 - residual.var() / y.var())
        self.residual_std = float(residual.std())
        self.n_configs = len(records)
        self.coverages = np.array(payload["coverages"])
        self.sigma = self._fit_sigma(curves)
        self.u = (np.arange(N_SAMPLES) + 0.5) / N_SAMPLES
        self.noise = np.random.default_rng(12345).normal(size=(len(STAGES), N_SAMPLES))

    def _fit_sigma(self, curves: list[tuple[float, list[float]]]) -> float:
        u = (np.arange(2000) + 0.5) / 2000
        noise = np.random.default_rng(0).normal(size=2000)
        best, best_err = 0.0, math.inf
        for sigma in np.linspace(0.02, 1.0, 50):
            order = np.argsort(u + sigma * noise)
            err = 0.0
            for accuracy, measured in curves:
                correct = (u < accuracy)[order]
                simulated = [correct[: max(1, int(round(c * 2000)))].mean() for c in self.coverages]
                err += float(np.sum((np.array(simulated) - np.array(measured)) ** 2))
            if err < best_err:
                best, best_err = float(sigma), err
        return best

    def exit_accuracies(self, config) -> list[float]:
        """Accuracy of each exit of ``config`` (early exits, then the final one)."""
        prefix = _prefix_macs(config)
        stages = np.array(list(config.exit_stages) + [5])
        log_macs = np.array([math.log(prefix[s - 1]) for s in stages])
        values = _design(stages, log_macs, self.family) @ self.coef
        return [float(v) for v in np.clip(values, 0.1, 0.99)]

    def describe(self) -> str:
        coef = [round(float(c), 4) for c in self.coef]
        if self.family == "stage":
            formula = f"accuracy of an exit = {coef} for exits after stages 1-4 and the final one"
        elif self.family == "stage+macs":
            formula = (
                f"accuracy of an exit = {coef[:-1]} (stages 1-4, final) + {coef[-1]} * "
                "ln(backbone MACs up to the exit)"
            )
        else:
            formula = f"accuracy of an exit = {coef[0]} + {coef[1]} * ln(backbone MACs up to it)"
        errors = ", ".join(f"{f} {e:.4f}" for f, e in self.loco_rmse.items())
        return (
            f"{formula}; family '{self.family}' chosen by leave-one-configuration-out RMSE "
            f"({errors}) on {self.n_configs} measured configurations x 5 exits; residual std "
            f"{self.residual_std:.3f}; confidence-ranking noise sigma {self.sigma:.2f} fitted on "
            "the measured precision-at-coverage curves"
        )


def operating_point(
    model: AccuracyModel, accuracies: list[float], costs: list[float], budget: float
) -> tuple[float, float, list[float]]:
    """The most accurate operating point within the budget, as the threshold search does.

    Exit-ratio model: ``N_SAMPLES`` validation samples of difficulty ``u`` uniform in (0, 1);
    exit ``j`` classifies a sample correctly iff ``u < a_j``; its confidence ranks samples by
    ``u + sigma * noise`` (noise fixed per exit). Each early exit takes, of the samples still
    present, those ranked among its ``q``-quantile most confident, ``q`` in
    ``COVERAGE_GRID``; the others go on to the final exit. Every combination is tried; the
    most accurate one with average MACs within ``budget`` is kept (the cheapest one if none
    is). Average MACs = sum of exit ratios times the real per-exit costs.

    Returns:
        Accuracy, average MACs and exit ratios.
    """
    n_early = len(accuracies) - 1
    u = model.u
    correct = np.array([u < a for a in accuracies])  # (exits, N)
    costs_arr = np.array(costs)
    if n_early == 0:
        return float(correct[0].mean()), float(costs[0]), [1.0]
    scores = u[None, :] + model.sigma * model.noise[:n_early]
    thresholds = np.array(
        [
            [-np.inf if q == 0 else np.quantile(s, q) if q < 1 else np.inf for q in COVERAGE_GRID]
            for s in scores
        ]
    )  # (early exits, levels)
    takes = scores[:, None, :] <= thresholds[:, :, None]  # (early, levels, N)
    combos = np.array(list(itertools.product(range(len(COVERAGE_GRID)), repeat=n_early)))
    leave = np.stack([takes[j, combos[:, j]] for j in range(n_early)], axis=1)  # (C, early, N)
    leave = np.concatenate([leave, np.ones((len(combos), 1, len(u)), dtype=bool)], axis=1)
    exit_index = np.argmax(leave, axis=1)  # first exit that takes the sample, (C, N)
    acc = correct[exit_index, np.arange(len(u))[None, :]].mean(axis=1)
    avg = costs_arr[exit_index].mean(axis=1)
    within = avg <= budget
    if within.any():
        candidates = np.flatnonzero(within)
        best = candidates[np.lexsort((avg[candidates], -acc[candidates]))[0]]
    else:
        best = int(np.argmin(avg))
    ratios = np.bincount(exit_index[best], minlength=n_early + 1) / len(u)
    return float(acc[best]), float(avg[best]), [float(r) for r in ratios]


class BenchObjective:
    """Objective of the benchmark, shaped like :class:`~optuna_nachos.objective.NachosObjective`.

    Real per-exit MACs (:func:`optuna_nachos.cost.exit_macs`, analytic, 10 classes, RGB 32x32),
    the static guard (first exit over budget or too few exits: not "trained", accuracy 0, the
    first exit's cost, positive constraints, user attribute ``skipped_training``), then the
    accuracy model and the operating-point model instead of training.
    """

    def __init__(self, model: AccuracyModel, *, space, budget: float, min_accuracy: float):
        self.model = model
        self.space = space
        self.budget = budget
        self.min_accuracy = min_accuracy

    def evaluate(self, config) -> dict:
        from optuna_nachos.cost import exit_macs

        costs = [float(m) for m in exit_macs(config, num_classes=10)]
        deficit = self.space.exit_deficit(config)
        if costs[0] > self.budget or deficit > 0:
            return {
                "skipped": True,
                "accuracy": 0.0,
                "avg_macs": costs[0],
                "costs": costs,
                "deficit": deficit,
            }
        accuracies = self.model.exit_accuracies(config)
        accuracy, average, ratios = operating_point(self.model, accuracies, costs, self.budget)
        return {
            "skipped": False,
            "accuracy": accuracy,
            "avg_macs": average,
            "costs": costs,
            "deficit": deficit,
            "exit_ratios": ratios,
        }

    def __call__(self, trial) -> tuple[float, float]:
        config = self.space.suggest(trial)
        out = self.evaluate(config)
        trial.set_user_attr(EXIT_MACS_ATTR, [int(c) for c in out["costs"]])
        if out["skipped"]:
            trial.set_user_attr(SKIP_REASON_ATTR, "static guard")
            trial.set_constraint("max_avg_macs", out["costs"][0] - self.budget)
            trial.set_constraint("min_accuracy", self.min_accuracy)
        else:
            trial.set_user_attr(EXIT_RATIOS_ATTR, out["exit_ratios"])
            trial.set_constraint("max_avg_macs", out["avg_macs"] - self.budget)
            trial.set_constraint("min_accuracy", self.min_accuracy - out["accuracy"])
        trial.set_constraint("min_exits", float(out["deficit"]))
        return out["accuracy"], out["avg_macs"]


# --------------------------------------------------------------------------------------------
# Runs and hypervolume
# --------------------------------------------------------------------------------------------

SAMPLERS = ("nachos", "nachos_whole_start", "random", "tpe", "nsga2")


def hypervolume(points: list[tuple[float, float]], min_accuracy: float) -> float:
    """2-D hypervolume of (accuracy, MACs / budget) points, maximizing accuracy.

    Reference point: accuracy ``min_accuracy``, MACs = budget (normalized 1.0).
    """
    pts = sorted((m, a) for a, m in points if a > min_accuracy and m < 1.0)
    volume, best = 0.0, min_accuracy
    # Sweep from the cheapest point; each point adds the strip it improves on.
    for macs, acc in pts:
        if acc > best:
            volume += (acc - best) * (1.0 - macs)
            best = acc
    return volume


def _make_sampler(
    name: str, seed: int, *, space, budget: float, min_accuracy: float, n_startup: int
):
    import optuna

    from optuna_nachos.samplers import NachosSampler

    if name in ("nachos", "nachos_whole_start"):
        # nachos_whole_start: the reference's random start over the whole space.
        return NachosSampler(
            space=space,
            num_classes=10,
            max_avg_macs=budget,
            min_accuracy=min_accuracy,
            n_startup_trials=n_startup,
            seed=seed,
            feasible_startup=name == "nachos",
        )
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(multivariate=True, group=True, seed=seed)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    raise ValueError(name)


def _run_one(job: tuple) -> dict:
    import warnings

    import optuna

    from optuna_nachos.samplers import round_diagnostics
    from optuna_nachos.space import MobileNetV3Space

    name, seed, n_trials, budget, min_accuracy, n_startup, measurements = job
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore")
    model = AccuracyModel(json.loads(Path(measurements).read_text()))
    space = MobileNetV3Space()
    objective = BenchObjective(model, space=space, budget=budget, min_accuracy=min_accuracy)
    sampler = _make_sampler(
        name, seed, space=space, budget=budget, min_accuracy=min_accuracy, n_startup=n_startup
    )
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    study.set_metric_names(["accuracy", "avg_macs"])
    started = time.perf_counter()
    study.optimize(objective, n_trials=n_trials)
    seconds = time.perf_counter() - started
    trials = []
    for t in study.trials:
        feasible = bool(t.constraints) and all(v <= 0 for v in t.constraints.values())
        trials.append(
            {
                "accuracy": t.values[ACCURACY_INDEX],
                "avg_macs": t.values[COST_INDEX],
                "feasible": feasible,
            }
        )
    rounds = round_diagnostics(study)
    return {
        "sampler": name,
        "seed": seed,
        "seconds": seconds,
        "trials": trials,
        "rounds": len(rounds),
        "surrogates": [r["surrogates"].get("accuracy", {}).get("surrogate") for r in rounds],
    }


def _hv_curve(trials: list[dict], checkpoints, budget: float, min_accuracy: float):
    out = []
    for n in checkpoints:
        points = [(t["accuracy"], t["avg_macs"] / budget) for t in trials[:n] if t["feasible"]]
        out.append(hypervolume(points, min_accuracy))
    return out


def _choose_min_accuracy(model: AccuracyModel, budget: float, quantile: float) -> float:
    """The ``quantile`` of the accuracy of random, statically feasible configurations."""
    from optuna_nachos.space import MobileNetV3Space

    space = MobileNetV3Space()
    objective = BenchObjective(model, space=space, budget=budget, min_accuracy=0.0)
    dists = space.distributions()
    rng = np.random.default_rng(0)
    values = []
    while len(values) < 400:
        params = {n: d.choices[rng.integers(len(d.choices))] for n, d in dists.items()}
        out = objective.evaluate(space.config_from_params(params))
        if not out["skipped"]:
            values.append(out["accuracy"])
    return round(float(np.quantile(values, quantile)), 3)


def bench(args: argparse.Namespace) -> None:
    """Run every sampler on every seed and write the results."""
    measurements = json.loads(Path(args.measurements).read_text())
    model = AccuracyModel(measurements)
    budget = args.max_avg_macs
    min_accuracy = (
        args.min_accuracy
        if args.min_accuracy is not None
        else _choose_min_accuracy(model, budget, args.min_accuracy_quantile)
    )
    checkpoints = [c for c in args.checkpoints if c <= args.n_trials]
    jobs = [
        (name, seed, args.n_trials, budget, min_accuracy, args.n_startup, args.measurements)
        for seed in range(args.seeds)
        for name in args.samplers
    ]
    print(f"accuracy model: {model.describe()}", flush=True)
    print(f"budget {budget:,.0f} MACs, min_accuracy {min_accuracy}", flush=True)
    results = []
    if args.jobs > 1:
        import multiprocessing

        with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
            for result in pool.imap_unordered(_run_one, jobs):
                results.append(result)
                print(
                    f"  {result['sampler']:>6} seed {result['seed']}: {result['seconds']:.0f} s",
                    flush=True,
                )
    else:
        for job in jobs:
            result = _run_one(job)
            results.append(result)
            print(
                f"  {result['sampler']:>6} seed {result['seed']}: {result['seconds']:.0f} s",
                flush=True,
            )
    summary = {}
    for name in args.samplers:
        runs = sorted((r for r in results if r["sampler"] == name), key=lambda r: r["seed"])
        curves = np.array([_hv_curve(r["trials"], checkpoints, budget, min_accuracy) for r in runs])
        summary[name] = {
            "hv_mean": curves.mean(axis=0).round(5).tolist(),
            "hv_std": curves.std(axis=0).round(5).tolist(),
            "hv_per_seed": curves.round(5).tolist(),
            "feasible_fraction": float(
                np.mean([np.mean([t["feasible"] for t in r["trials"]]) for r in runs])
            ),
            "seconds_mean": float(np.mean([r["seconds"] for r in runs])),
        }
        if name.startswith("nachos"):
            summary[name]["surrogates_chosen"] = [r["surrogates"] for r in runs]
    target = None
    if "random" in summary and 100 in checkpoints:
        target = summary["random"]["hv_mean"][checkpoints.index(100)]
        for name in summary:
            curve = summary[name]["hv_mean"]
            reached = [c for c, hv in zip(checkpoints, curve) if hv >= target]
            summary[name]["trials_to_random_100"] = reached[0] if reached else None
    payload = {
        "what": (
            "Hypervolume of the admissible front (feasible Pareto trials) against trials, "
            f"mean and std over {args.seeds} seeds; objectives normalized: accuracy in [0, 1] "
            "(maximized), average MACs divided by the budget (minimized); reference point "
            f"(accuracy {min_accuracy}, MACs / budget 1.0)."
        ),
        "objective": {
            "costs": "real analytic per-exit MACs of the MobileNetV3 EENN (optuna_nachos.cost."
            "exit_macs, 10 classes, RGB 32x32, nachos convention)",
            "accuracy_model": model.describe(),
            "measurements": measurements["what"],
            "average_macs": (
                "exit-ratio model: the most accurate operating point within the budget over a "
                "grid of per-exit coverages, on simulated samples (see operating_point); "
                "average MACs = sum of exit ratios x real per-exit costs"
            ),
            "static_guard": "first-exit cost > budget or no early exit: not trained, accuracy 0",
        },
        "settings": {
            "max_avg_macs": budget,
            "min_accuracy": min_accuracy,
            "n_trials": args.n_trials,
            "seeds": args.seeds,
            "nachos_n_startup_trials": args.n_startup,
            "nachos": "batch_size 8, population_size 40, n_generations 20, selection "
            "'hypervolume', exploration 0.125 (defaults); random start among "
            "statically feasible networks (nachos_whole_start: over the whole space, "
            "as the reference)",
            "tpe": "TPESampler(multivariate=True, group=True), defaults otherwise",
            "nsga2": "NSGAIISampler defaults (population 50)",
        },
        "checkpoints": checkpoints,
        "random_hv_at_100": target,
        "samplers": summary,
    }
    payload["notes"] = _notes(payload)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "samplers.json").write_text(json.dumps(payload, indent=1))
    (RESULTS_DIR / "samplers.md").write_text(_markdown(payload))
    print(_markdown(payload))


def _notes(payload: dict) -> list[str]:
    """Plain statements about the results, derived from them."""
    best = max(
        max(max(run) for run in info["hv_per_seed"]) for info in payload["samplers"].values()
    )
    notes = [
        f"Largest hypervolume reached by any run: {best:.5f}. Under this accuracy model the "
        "accuracy takes few distinct levels (one per exit stage, mixed by the exit ratios), so "
        "the admissible front is nearly a single point: the most accurate level at the "
        "cheapest network that reaches it within the budget. The hypervolume therefore "
        "saturates; the benchmark measures how fast a sampler finds cheap admissible networks "
        "of the best accuracy level, not how well it resolves a long front.",
    ]
    target = payload.get("random_hv_at_100")
    if target is not None:
        reach = {n: i.get("trials_to_random_100") for n, i in payload["samplers"].items()}
        notes.append(
            f"Random sampling's hypervolume at 100 trials ({target:.5f}) is reached (mean over "
            "seeds, at the checkpoints) after: "
            + ", ".join(f"{n} {r if r else 'never'}" for n, r in reach.items())
            + " trials."
        )
    return notes


def _markdown(payload: dict) -> str:
    checkpoints = payload["checkpoints"]
    lines = [
        "# Samplers on the EENN search (hypervolume of the admissible front)",
        "",
        payload["what"],
        "",
        "**Objective.** " + payload["objective"]["costs"] + ". **Accuracy is a model, not "
        "training:** "
        + payload["objective"]["accuracy_model"]
        + ". Measurements: "
        + payload["objective"]["measurements"]
        + " **Average MACs:** "
        + payload["objective"]["average_macs"]
        + ". Static guard: "
        + payload["objective"]["static_guard"]
        + ".",
        "",
        f"Constraints: max_avg_macs {payload['settings']['max_avg_macs']:,.0f}, "
        f"min_accuracy {payload['settings']['min_accuracy']}. NachosSampler: "
        f"n_startup_trials {payload['settings']['nachos_n_startup_trials']}, "
        f"{payload['settings']['nachos']}.",
        "",
        "| sampler | " + " | ".join(str(c) for c in checkpoints) + " | trials to random@100 |",
        "|---|" + "---|" * (len(checkpoints) + 1),
    ]
    for name, info in payload["samplers"].items():
        cells = [f"{m:.4f} ± {s:.4f}" for m, s in zip(info["hv_mean"], info["hv_std"])]
        reach = info.get("trials_to_random_100")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {reach if reach else '-'} |")
    lines += [
        "",
        "Mean ± std over seeds; columns are numbers of trials. Feasible fraction of trials: "
        + ", ".join(f"{n} {i['feasible_fraction']:.2f}" for n, i in payload["samplers"].items())
        + ". Mean wall time per run (s): "
        + ", ".join(f"{n} {i['seconds_mean']:.0f}" for n, i in payload["samplers"].items())
        + ".",
        "",
    ]
    lines += [f"- {note}" for note in payload.get("notes", [])]
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("measure", help="train a few configurations to build the accuracy model")
    m.add_argument("--cifar-dir", default=None)
    m.add_argument("--n-configs", type=int, default=16)
    m.add_argument("--n-train", type=int, default=5000)
    m.add_argument("--n-test", type=int, default=1000)
    m.add_argument("--epochs", type=int, default=4)
    m.add_argument("--head-epochs", type=int, default=4)
    m.add_argument("--threads", type=int, default=1)
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--resume", action="store_true")
    b = sub.add_parser("run", help="run the samplers and write benchmarks/results/samplers.*")
    b.add_argument("--samplers", nargs="+", default=list(SAMPLERS), choices=SAMPLERS)
    b.add_argument("--seeds", type=int, default=5)
    b.add_argument("--n-trials", type=int, default=200)
    b.add_argument("--n-startup", type=int, default=20)
    b.add_argument("--max-avg-macs", type=float, default=2.7e6)
    b.add_argument("--min-accuracy", type=float, default=None)
    b.add_argument("--min-accuracy-quantile", type=float, default=0.5)
    b.add_argument(
        "--checkpoints", type=int, nargs="+", default=[10, 20, 30, 40, 50, 60, 80, 100, 150, 200]
    )
    b.add_argument("--jobs", type=int, default=1)
    b.add_argument("--measurements", default=str(MEASUREMENTS))
    args = parser.parse_args()
    if args.command == "measure":
        measure(args)
    else:
        bench(args)


if __name__ == "__main__":
    main()
