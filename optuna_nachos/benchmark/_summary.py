"""Summarizing a suite's studies: the result JSON, the Markdown table and the figures."""

from __future__ import annotations

import dataclasses
import json
import statistics
from pathlib import Path
from typing import Any

import optuna
import torch

from optuna_nachos._logging import get_logger
from optuna_nachos.benchmark._efficiency import (
    inference_speedup,
    training_images_per_second,
    trial_overhead,
)
from optuna_nachos.benchmark._environment import environment_record
from optuna_nachos.benchmark._runner import (
    ARTIFACTS_DIR,
    SUPERNET_DIR,
    accuracy_order,
    admissible_under,
    experiment_train_config,
    part_finished,
    part_records,
    storage_url,
    study_name,
    suite_data,
    supernet_complete,
    supernet_metadata,
)
from optuna_nachos.benchmark._statistics import (
    hypervolume_at,
    mean_confidence_interval,
    paired_comparison,
)
from optuna_nachos.benchmark._suite import SUPERNET_PART, Experiment, Suite
from optuna_nachos.config import EENNConfig
from optuna_nachos.cost import exit_macs
from optuna_nachos.deploy import load_eenn
from optuna_nachos.record import (
    EXIT_RATIOS_ATTR,
    IN_CHANNELS_SETTING,
    NUM_CLASSES_SETTING,
    VAL_EXIT_RATIOS_ATTR,
    EENNTrial,
    reported_values,
    selection_values,
    study_settings,
)
from optuna_nachos.results import hypervolume

_logger = get_logger(__name__)

SCHEMA = "optuna-nachos-benchmark/1"
RESULTS_FILE = "results.json"
MARKDOWN_FILE = "results.md"
FIGURES_DIR = "figures"
CONFIDENCE = 0.95
"""Confidence level of the intervals across seeds and of the paired comparisons."""


def _load(suite: Suite, experiment: Experiment, seed: int, out_dir: Path) -> optuna.Study | None:
    try:
        return optuna.load_study(
            study_name=study_name(experiment, seed), storage=storage_url(out_dir, experiment.part)
        )
    except KeyError:
        return None


def _reference_convention_macs(
    trial: optuna.trial.FrozenTrial, config: EENNConfig, settings: dict[str, Any]
) -> float | None:
    """Test average MACs of the trial under the reference's cost convention (heads of the
    exits a sample passed not counted), from its test exit ratios: the figure to set beside
    the reference's numbers."""
    ratios = EENNTrial.from_trial(trial).exit_ratios
    num_classes, in_channels = settings.get(NUM_CLASSES_SETTING), settings.get(IN_CHANNELS_SETTING)
    if ratios is None or num_classes is None or in_channels is None:
        return None
    costs = exit_macs(
        config, num_classes=int(num_classes), in_channels=int(in_channels), convention="reference"
    )
    if len(costs) != len(ratios):
        return None
    return float(sum(r * c for r, c in zip(ratios, costs, strict=True)))


def _trial_row(
    trial: optuna.trial.FrozenTrial, suite: Suite, settings: dict[str, Any]
) -> dict[str, Any]:
    record = EENNTrial.from_trial(trial)
    config = EENNConfig.from_dict(record.config)
    accuracy, avg_macs = selection_values(trial)
    test = reported_values(trial)
    return {
        "trial": trial.number,
        "accuracy": accuracy,
        "avg_macs": avg_macs,
        "chosen_on": "validation",
        "test_accuracy": None if test is None else test[0],
        "test_avg_macs": None if test is None else test[1],
        "test_avg_macs_reference_convention": _reference_convention_macs(trial, config, settings),
        "peak_macs": record.peak_macs,
        "params": record.params,
        "architecture": config.short_name(),
        "exit_stages": list(config.exit_stages),
        "exit_ratios": None if record.exit_ratios is None else list(record.exit_ratios),
        "thresholds": None if record.thresholds is None else list(record.thresholds),
        "admissible": admissible_under(trial, suite),
    }


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _run_summary(
    suite: Suite, experiment: Experiment, seed: int, study: optuna.Study, train_images: int
) -> dict[str, Any]:
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    failed = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.FAIL,))
    trained = [
        t
        for t in complete
        if VAL_EXIT_RATIOS_ATTR in t.user_attrs or EXIT_RATIOS_ATTR in t.user_attrs
    ]
    admissible = [t for t in trained if admissible_under(t, suite)]
    pool = admissible or trained
    best = min(pool, key=accuracy_order) if pool else None
    settings = study_settings(study)
    train = experiment_train_config(suite, experiment, seed)
    epochs = train.backbone_epochs + train.warmup_epochs + train.exit_epochs
    return {
        "seed": seed,
        "study": study.study_name,
        "trials": len(complete),
        "failed": len(failed),
        "trained": len(trained),
        "admissible": len(admissible),
        "hypervolume": hypervolume(
            admissible, min_accuracy=suite.min_accuracy, max_avg_macs=suite.max_avg_macs
        ),
        "hypervolume_at": {
            str(k): value
            for k, value in hypervolume_at(
                complete,
                suite.checkpoints,
                min_accuracy=suite.min_accuracy,
                max_avg_macs=suite.max_avg_macs,
            ).items()
        },
        "best": None if best is None else _trial_row(best, suite, settings),
        "overhead_median": _median([trial_overhead(t) for t in trained]),
        "train_seconds_median": _median([EENNTrial.from_trial(t).train_seconds for t in trained]),
        "train_images_per_second_median": _median(
            [
                training_images_per_second(t, train_images=train_images, epochs=epochs)
                for t in trained
            ]
        )
        if train_images
        else None,
        "front": [
            _trial_row(t, suite, settings)
            for t in sorted(admissible, key=lambda t: selection_values(t)[1])
        ],
    }


def _mean_sd(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _hypervolume_intervals(
    runs: list[dict[str, Any]], checkpoints: tuple[int, ...]
) -> dict[str, dict[str, Any] | None]:
    """Per checkpoint, the mean hypervolume over the runs that got that far and its
    confidence interval (``None``: no run did)."""
    out: dict[str, dict[str, Any] | None] = {}
    for k in map(str, checkpoints):
        values = [
            r["hypervolume_at"][k] for r in runs if r.get("hypervolume_at", {}).get(k) is not None
        ]
        out[k] = (
            dataclasses.asdict(mean_confidence_interval(values, confidence=CONFIDENCE))
            if values
            else None
        )
    return out


def _experiment_summary(
    runs: list[dict[str, Any]], checkpoints: tuple[int, ...] = ()
) -> dict[str, Any]:
    best = [r["best"] for r in runs if r["best"] is not None and r["best"]["admissible"]]
    # Chosen on validation (the run's most accurate admissible trial), reported on test.
    accuracy = _mean_sd([b["accuracy"] for b in best])
    macs = _mean_sd([b["avg_macs"] for b in best])
    tested = [b for b in best if b.get("test_accuracy") is not None]
    test_accuracy = _mean_sd([b["test_accuracy"] for b in tested])
    test_macs = _mean_sd([b["test_avg_macs"] for b in tested])
    reference_macs = _mean_sd(
        [
            b["test_avg_macs_reference_convention"]
            for b in tested
            if b.get("test_avg_macs_reference_convention") is not None
        ]
    )
    return {
        "runs": len(runs),
        "admissible_runs": len(best),
        "chosen_on": "validation",
        "accuracy_mean": accuracy[0],
        "accuracy_sd": accuracy[1],
        "avg_macs_mean": macs[0],
        "avg_macs_sd": macs[1],
        "test_accuracy_mean": test_accuracy[0],
        "test_accuracy_sd": test_accuracy[1],
        "test_avg_macs_mean": test_macs[0],
        "test_avg_macs_sd": test_macs[1],
        "test_avg_macs_reference_convention_mean": reference_macs[0],
        "test_avg_macs_reference_convention_sd": reference_macs[1],
        "hypervolume_mean": _mean_sd([r["hypervolume"] for r in runs])[0],
        "hypervolume_at": _hypervolume_intervals(runs, checkpoints),
        "trained": sum(r["trained"] for r in runs),
        "trials": sum(r["trials"] for r in runs),
    }


def _comparisons(
    suite: Suite, runs_by_experiment: dict[str, list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """The baseline (``compare_against``) minus every other experiment, seed by seed, at each
    checkpoint both reached, over the seeds both ran."""
    if suite.compare_against is None:
        return []
    baseline = {r["seed"]: r for r in runs_by_experiment.get(suite.compare_against, [])}
    rows = []
    for experiment in suite.experiments:
        if experiment.name == suite.compare_against:
            continue
        other = {r["seed"]: r for r in runs_by_experiment.get(experiment.name, [])}
        seeds = [seed for seed in suite.seeds if seed in baseline and seed in other]
        for k in map(str, suite.checkpoints):
            paired = [
                (
                    seed,
                    baseline[seed]["hypervolume_at"].get(k),
                    other[seed]["hypervolume_at"].get(k),
                )
                for seed in seeds
            ]
            paired = [(seed, a, b) for seed, a, b in paired if a is not None and b is not None]
            if not paired:
                continue
            comparison = paired_comparison(
                [a for _, a, _ in paired], [b for _, _, b in paired], confidence=CONFIDENCE
            )
            rows.append(
                {
                    "experiment": experiment.name,
                    "label": experiment.label,
                    "checkpoint": int(k),
                    "seeds": [seed for seed, _, _ in paired],
                    **dataclasses.asdict(comparison),
                }
            )
    return rows


def _efficiency(
    suite: Suite,
    out_dir: Path,
    runs_by_experiment: dict[str, list[dict[str, Any]]],
    studies: dict[str, optuna.Study],
) -> dict[str, Any]:
    settings = dict(suite.efficiency)
    name = suite.main_experiment
    overheads = [
        r["overhead_median"] for runs in runs_by_experiment.values() for r in runs if r["trained"]
    ]
    speeds = [
        r["train_images_per_second_median"]
        for runs in runs_by_experiment.values()
        for r in runs
        if r["train_images_per_second_median"]
    ]
    record: dict[str, Any] = {
        "overhead_median": _median(overheads),
        "overhead_max": max((o for o in overheads if o is not None), default=None),
        "train_images_per_second_median": _median(speeds),
        "inference": [],
        "network": None,
    }
    runs = runs_by_experiment.get(name, [])
    target = next((r for r in runs if r["best"] is not None and r["best"]["admissible"]), None)
    if target is None:
        return record
    study = studies[target["study"]]
    trial = next(t for t in study.get_trials(deepcopy=False) if t.number == target["best"]["trial"])
    store = optuna.artifacts.FileSystemArtifactStore(str(out_dir / ARTIFACTS_DIR))
    try:
        deployed = load_eenn(trial, artifact_store=store)
    except FileNotFoundError:  # its weights were removed by an earlier keep_networks
        _logger.warning(
            "Inference not timed: the weights of %s trial %d are not stored (keep_networks).",
            target["study"],
            trial.number,
        )
        return record
    data = suite_data(suite)
    test = data.test.subset(range(min(int(settings.get("images", 1024)), len(data.test))))
    images = test.normalize(test.images)
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.append("cuda")
    for device in devices:
        record["inference"].extend(
            inference_speedup(
                deployed,
                images,
                batch_sizes=tuple(settings.get("batch_sizes", (1, 256))),
                repeats=int(settings.get("repeats", 5)),
                device=device,
            )
        )
    record["network"] = {"experiment": name, "seed": target["seed"], **target["best"]}
    return record


def _figures(suite: Suite, out_dir: Path, studies: dict[str, optuna.Study]) -> dict[str, str]:
    from optuna_nachos.visualization import (
        plot_hypervolume_history,
        save_figures,
        write_images,
    )

    folder = out_dir / FIGURES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    figures: dict[str, str] = {}
    main = studies.get(study_name(suite.experiment(suite.main_experiment), suite.seeds[0]))
    if main is not None:
        for key, path in save_figures(
            main, folder, image_format="png", include_plotlyjs="cdn"
        ).items():
            figures[key] = str(Path(path).relative_to(out_dir))
    searches = {
        name: study
        for name, study in studies.items()
        if study_settings(study).get("kind") == "search"
        and study_settings(study).get("constrained", True)
    }
    if searches:
        figure = plot_hypervolume_history(searches)
        figure.update_layout(
            title=f"Hypervolume against trials: {suite.name} suite ({suite.dataset})"
        )
        html = folder / "samplers_hypervolume.html"
        figure.write_html(html, include_plotlyjs="cdn")
        figures["samplers_hypervolume_html"] = str(html.relative_to(out_dir))
        png = folder / "samplers_hypervolume.png"
        name = "samplers_hypervolume"
        if write_images({name: figure}, {name: png}, sizes={name: (1000, 560)}, scale=1.0):
            figures[name] = str(png.relative_to(out_dir))
    return figures


def summarize_suite(suite: Suite, out_dir: str | Path, *, figures: bool = True) -> dict[str, Any]:
    """Read a suite's studies in ``out_dir`` and write ``results.json`` and ``results.md``
    (and the figures under ``figures/``).

    Returns:
        The result record written to ``results.json``.
    """
    out_dir = Path(out_dir)
    train_images = _train_images(suite)
    runs_by_experiment: dict[str, list[dict[str, Any]]] = {}
    studies: dict[str, optuna.Study] = {}
    for experiment in suite.experiments:
        runs = []
        for seed in suite.seeds:
            study = _load(suite, experiment, seed, out_dir)
            if study is None:
                continue
            studies[study.study_name] = study
            runs.append(_run_summary(suite, experiment, seed, study, train_images))
        runs_by_experiment[experiment.name] = runs
    parts = part_records(out_dir)
    for part, entry in parts.items():
        if part == SUPERNET_PART:
            entry["complete"] = supernet_complete(out_dir)
            continue
        # Workers sharing a part record their own view; the studies say whether it is done.
        entry["complete"] = all(
            (name := study_name(e, seed)) in studies and part_finished(studies[name], e)
            for e in suite.experiments
            if e.part == part
            for seed in suite.seeds
        )
    record = {
        "schema": SCHEMA,
        "suite": _suite_record(suite),
        "environment": environment_record(seeds=list(suite.seeds), device=suite.device),
        "parts": parts,
        "supernet": _supernet_record(suite, out_dir),
        "experiments": [
            {
                "name": e.name,
                "label": e.label,
                "kind": e.kind,
                "part": e.part,
                "note": e.note,
                "reference": e.reference,
                "summary": _experiment_summary(runs_by_experiment[e.name], suite.checkpoints),
                "runs": runs_by_experiment[e.name],
            }
            for e in suite.experiments
        ],
        "statistics": {
            "confidence": CONFIDENCE,
            "checkpoints": list(suite.checkpoints),
            "baseline": suite.compare_against,
            "comparisons": _comparisons(suite, runs_by_experiment),
        },
        "efficiency": _efficiency(suite, out_dir, runs_by_experiment, studies),
        "figures": _figures(suite, out_dir, studies) if figures else {},
    }
    record["networks"] = _prune_networks(suite, out_dir, studies, record)
    (out_dir / RESULTS_FILE).write_text(json.dumps(record, indent=2, sort_keys=False) + "\n")
    from optuna_nachos.benchmark._markdown import results_markdown

    (out_dir / MARKDOWN_FILE).write_text(results_markdown(record))
    return record


def _supernet_record(suite: Suite, out_dir: Path) -> dict[str, Any] | None:
    """How far the suite's supernet trained, in how long, its weights' hash and its
    per-epoch validation accuracies; ``None`` for a suite without a supernet."""
    settings = suite.supernet_settings()
    if settings is None:
        return None
    metadata = supernet_metadata(out_dir) or {}
    history = metadata.get("history", [])
    return {
        "folder": SUPERNET_DIR,
        "settings": settings.to_dict(),
        "complete": supernet_complete(out_dir),
        "epochs_done": int(metadata.get("epochs_done", 0)),
        "epochs_planned": settings.epochs,
        "train_seconds": sum(float(e.get("train_seconds", 0.0)) for e in history),
        "seconds": sum(float(e.get("seconds", 0.0)) for e in history),
        "weights_sha256": metadata.get("weights_sha256"),
        "train_size": metadata.get("train_size"),
        "val_accuracy": [
            {
                "epoch": e["epoch"],
                "largest": e["val"]["largest"],
                "smallest": e["val"]["smallest"],
            }
            for e in history
        ],
    }


def _train_images(suite: Suite) -> int:
    """The number of training images of every candidate (the suite's training split)."""
    return len(suite_data(suite).train)


def _kept_networks(suite: Suite, record: dict[str, Any]) -> set[tuple[str, int]] | None:
    """The (study, trial) pairs whose weights ``suite.keep_networks`` keeps; ``None``: all."""
    if suite.keep_networks == "all":
        return None
    if suite.keep_networks == "timed":
        network = record["efficiency"].get("network")
        if network is None:
            return set()
        experiment = suite.experiment(network["experiment"])
        return {(study_name(experiment, network["seed"]), network["trial"])}
    return {
        (run["study"], run["best"]["trial"])
        for experiment in record["experiments"]
        for run in experiment["runs"]
        if run["best"] is not None
    }


def _prune_networks(
    suite: Suite, out_dir: Path, studies: dict[str, optuna.Study], record: dict[str, Any]
) -> dict[str, Any]:
    """Remove the weights ``suite.keep_networks`` does not keep; say what is stored."""
    folder = out_dir / ARTIFACTS_DIR
    keep = _kept_networks(suite, record)
    kept: list[str] = []
    removed = 0
    for name, study in studies.items():
        for trial in study.get_trials(deepcopy=False):
            artifact_id = EENNTrial.from_trial(trial).artifact_id
            if artifact_id is None or not (folder / artifact_id).is_file():
                continue
            if keep is None or (name, trial.number) in keep:
                kept.append(f"{name}#{trial.number}")
            else:
                (folder / artifact_id).unlink()
                removed += 1
    size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file()) if folder.is_dir() else 0
    return {"keep": suite.keep_networks, "kept": kept, "removed": removed, "bytes": size}


def _suite_record(suite: Suite) -> dict[str, Any]:
    return {
        "name": suite.name,
        "description": suite.description,
        "dataset": suite.dataset,
        "resolution": suite.resolution,
        "train_subset": suite.train_subset,
        "seeds": list(suite.seeds),
        "max_avg_macs": suite.max_avg_macs,
        "min_accuracy": suite.min_accuracy,
        "space": dict(suite.space),
        "train": dict(suite.train),
        "device": suite.device,
        "threads": suite.threads,
        "reference": dict(suite.reference),
        "differences": list(suite.differences),
        "keep_networks": suite.keep_networks,
        "hypervolume_checkpoints": list(suite.hypervolume_checkpoints) or None,
        "compare_against": suite.compare_against,
        "supernet": dict(suite.supernet) or None,
    }
