"""Running the experiments of a suite into resumable studies, one SQLite file per part."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch

from optuna_nachos._logging import get_logger
from optuna_nachos.benchmark._suite import SUPERNET_PART, Experiment, Suite, SuiteError
from optuna_nachos.config import ConfigError, EENNConfig
from optuna_nachos.cost import exit_macs
from optuna_nachos.data import DatasetSplits, load_dataset
from optuna_nachos.objective import NachosObjective
from optuna_nachos.record import (
    EXIT_RATIOS_ATTR,
    EENNTrial,
    selection_values,
)
from optuna_nachos.space import MobileNetV3Space
from optuna_nachos.study import create_sampler, create_study, run_search, storage_lock_path
from optuna_nachos.supernet import WEIGHTS_FILE, SupernetError, read_metadata, train_supernet
from optuna_nachos.train import TrainConfig

_logger = get_logger(__name__)

TrialCallback = Callable[[optuna.Study, optuna.trial.FrozenTrial], None]

ARTIFACTS_DIR = "artifacts"
PARTS_FILE = "parts.json"
SUPERNET_DIR = "supernet"
"""Folder of the suite's supernet in the output folder."""
DATA_SEED = 0
"""Seed of the validation split of every suite."""
UNCONSTRAINED_BUDGET = 1e15
"""Budget given to training and calibration of unconstrained variants (no effect)."""


def suite_data(suite: Suite, *, resolution: int | None = None) -> DatasetSplits:
    """The data every experiment of a suite (and its supernet) trains and is scored on."""
    return load_dataset(
        suite.dataset,
        resolution=suite.resolution if resolution is None else resolution,
        seed=DATA_SEED,
        train_subset=suite.train_subset,
    )


def supernet_metadata(out_dir: Path) -> dict[str, Any] | None:
    """The metadata of the suite's supernet in ``out_dir``; ``None`` before its first epoch."""
    try:
        return read_metadata(Path(out_dir) / SUPERNET_DIR)
    except SupernetError:
        return None


def supernet_complete(out_dir: Path) -> bool:
    """Whether the suite's supernet in ``out_dir`` finished training (its weights written)."""
    metadata = supernet_metadata(out_dir)
    return (
        metadata is not None
        and bool(metadata.get("complete"))
        and (Path(out_dir) / SUPERNET_DIR / WEIGHTS_FILE).is_file()
    )


def _no_supernet(suite: Suite) -> SuiteError:
    return SuiteError(
        f"suite {suite.name!r} has no [supernet] table, so it has no part {SUPERNET_PART!r}; "
        "add a [supernet] table to train one."
    )


def train_suite_supernet(suite: Suite, out_dir: Path, *, timeout: float | None = None) -> bool:
    """Train (or resume) the suite's supernet into ``<out_dir>/supernet``; return whether it
    is complete. With ``timeout``, training stops after the epoch during which the time ran
    out (its checkpoint written)."""
    settings = suite.supernet_settings()
    if settings is None:
        raise _no_supernet(suite)
    metadata = supernet_metadata(out_dir) or {}
    same = (
        metadata.get("settings") == settings.to_dict()
        and metadata.get("train_subset") == suite.train_subset
        and metadata.get("resolution") == suite.resolution
    )
    if same and supernet_complete(out_dir):
        _logger.info("The supernet in %s is already trained.", out_dir / SUPERNET_DIR)
        return True
    supernet = train_supernet(
        suite_data(suite),
        out_dir / SUPERNET_DIR,
        settings=settings,
        resume=True,
        time_limit=timeout,
        metadata={"data_seed": DATA_SEED, "train_subset": suite.train_subset},
    )
    return bool(supernet.metadata["complete"])


def storage_url(out_dir: Path, part: str) -> str:
    """SQLite URL of the studies of one part."""
    return f"sqlite:///{out_dir / f'{part}.db'}"


def study_name(experiment: Experiment, seed: int) -> str:
    """Name of the study of one experiment and seed."""
    return f"{experiment.name}-seed{seed}"


def experiment_space(suite: Suite, experiment: Experiment) -> MobileNetV3Space:
    """The search space of an experiment: the suite's, with the experiment's overrides."""
    settings = {"resolutions": (suite.resolution,), **suite.space, **experiment.space}
    if experiment.kind == "single_exit":
        settings["min_exits"] = 0
    settings = {k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()}
    return MobileNetV3Space(**settings)


def experiment_train_config(suite: Suite, experiment: Experiment, seed: int) -> TrainConfig:
    """Training settings of an experiment for one seed."""
    fixed = {"seed": seed, "device": suite.device, "progress": False}
    return TrainConfig(**{**suite.train, **experiment.train, **fixed})


def _supernet_folder(suite: Suite, out_dir: Path) -> Path | None:
    if not suite.supernet:
        return None
    if not supernet_complete(out_dir):
        raise SuiteError(
            f"suite {suite.name!r} trains its candidates on a supernet, and "
            f"{out_dir / SUPERNET_DIR} holds no finished one: run --part {SUPERNET_PART} first."
        )
    return out_dir / SUPERNET_DIR


def _objective(suite: Suite, experiment: Experiment, seed: int, out_dir: Path) -> NachosObjective:
    space = experiment_space(suite, experiment)
    if len(space.resolutions) != 1:
        raise SuiteError(
            f"experiment {experiment.name!r}: give one input resolution, got {space.resolutions}."
        )
    supernet = _supernet_folder(suite, out_dir)
    artifact_dir = out_dir / ARTIFACTS_DIR
    artifact_dir.mkdir(parents=True, exist_ok=True)
    data = suite_data(suite, resolution=space.resolutions[0])
    return NachosObjective(
        dataset=data,
        space=space,
        max_avg_macs=suite.max_avg_macs if experiment.constrained else UNCONSTRAINED_BUDGET,
        min_accuracy=suite.min_accuracy if experiment.constrained else 0.0,
        train_config=experiment_train_config(suite, experiment, seed),
        calibration=experiment.calibration,
        artifact_store=optuna.artifacts.FileSystemArtifactStore(str(artifact_dir)),
        data_seed=DATA_SEED,
        supernet=supernet,
    )


def _study(
    suite: Suite,
    experiment: Experiment,
    seed: int,
    objective: NachosObjective,
    storage: str,
) -> optuna.Study:
    options = dict(experiment.sampler_options)
    if experiment.kind == "search" and experiment.sampler == "nachos":
        options = {**objective.sampler_options(), **options}
    sampler_name = experiment.sampler if experiment.kind == "search" else "random"
    sampler = create_sampler(sampler_name, space=objective.space, seed=seed, **options)
    settings = objective.settings()
    if settings.get("supernet") is not None:
        # Relative to the output folder, which can then move without changing the settings.
        settings["supernet"] = {**settings["supernet"], "path": SUPERNET_DIR}
    return create_study(
        storage=storage,
        study_name=study_name(experiment, seed),
        sampler=sampler,
        settings={
            **settings,
            "suite": suite.name,
            "experiment": experiment.name,
            "kind": experiment.kind,
            "sampler": sampler_name,
            "seed": seed,
            "constrained": experiment.constrained,
        },
    )


def admissible_under(trial: optuna.trial.FrozenTrial, suite: Suite) -> bool:
    """Whether a finished, trained trial meets the suite's budget and floor (and its own
    static constraints), whatever the constraints its experiment trained with.

    Judged on the selection (validation) figures, as the search itself judges.
    """
    return admissible_within(
        trial, min_accuracy=suite.min_accuracy, max_avg_macs=suite.max_avg_macs
    )


def admissible_within(
    trial: optuna.trial.FrozenTrial, *, min_accuracy: float, max_avg_macs: float
) -> bool:
    """Whether a finished, trained trial meets a budget and a floor (and its own static
    constraints): the rule of :func:`admissible_under` for any budget and floor."""
    if trial.values is None or EXIT_RATIOS_ATTR not in trial.user_attrs:
        return False
    accuracy, avg_macs = selection_values(trial)
    static_ok = all(
        value <= 0
        for name, value in (trial.constraints or {}).items()
        if name not in ("max_avg_macs", "min_accuracy")
    )
    return static_ok and accuracy >= min_accuracy and avg_macs <= max_avg_macs * (1 + 1e-9)


def accuracy_order(trial: optuna.trial.FrozenTrial) -> tuple[float, float, int]:
    """Sort key on the selection (validation) figures: most accurate first, then cheapest,
    then earliest."""
    accuracy, avg_macs = selection_values(trial)
    return -accuracy, avg_macs, trial.number


def _most_accurate_admissible(
    study: optuna.Study, suite: Suite, top: int
) -> list[optuna.trial.FrozenTrial]:
    trials = [
        t
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if admissible_under(t, suite)
    ]
    trials.sort(key=accuracy_order)
    return trials[:top]


def _single_exit_candidates(
    space: MobileNetV3Space, suite: Suite, *, top: int, num_classes: int, in_channels: int
) -> list[EENNConfig]:
    """The ``top`` costliest networks without early exits whose cost fits the budget, among
    random draws of the space (costs are exact; more MACs is the proxy for capacity)."""
    rng = np.random.default_rng(0)
    distributions = space.distributions()
    found: dict[str, tuple[int, EENNConfig]] = {}
    for _ in range(4000):
        params = {
            name: dist.choices[int(rng.integers(len(dist.choices)))]
            for name, dist in distributions.items()
        }
        config = dataclasses.replace(
            space.config_from_params(params), exit_stages=(), exit_thresholds=None
        )
        cost = exit_macs(config, num_classes=num_classes, in_channels=in_channels)[-1]
        if cost <= suite.max_avg_macs:
            found[config.to_json()] = (cost, config)
    if not found:
        raise SuiteError(
            f"no network of the space without early exits fits max_avg_macs={suite.max_avg_macs:g}."
        )
    ranked = sorted(found.values(), key=lambda item: -item[0])
    return [config for _, config in ranked[:top]]


def _fixed_config(raw: dict[str, Any], resolution: int) -> EENNConfig:
    depths = tuple(raw["depths"])

    def per_layer(value: Any) -> tuple[tuple[int, ...], ...]:
        if isinstance(value, int):
            return tuple((value,) * d for d in depths)
        return tuple(tuple(v) for v in value)

    return EENNConfig(
        depths=depths,
        kernel_sizes=per_layer(raw["kernel_sizes"]),
        expand_ratios=per_layer(raw["expand_ratios"]),
        exit_stages=tuple(raw["exit_stages"]),
        resolution=resolution,
    )


def _planned_configs(
    suite: Suite, experiment: Experiment, seed: int, out_dir: Path, objective: NachosObjective
) -> list[EENNConfig]:
    if experiment.kind == "retrain":
        source = suite.experiment(experiment.source)
        source_study = optuna.load_study(
            study_name=study_name(source, seed), storage=storage_url(out_dir, source.part)
        )
        picked = _most_accurate_admissible(source_study, suite, experiment.top)
        if not picked:
            _logger.warning(
                "%s: the source %s has no admissible trial; nothing to retrain.",
                study_name(experiment, seed),
                study_name(source, seed),
            )
        return [EENNConfig.from_dict(EENNTrial.from_trial(t).config) for t in picked]
    if experiment.kind == "single_exit":
        return _single_exit_candidates(
            objective.space,
            suite,
            top=experiment.top,
            num_classes=objective.data.num_classes,
            in_channels=objective.data.in_channels,
        )
    resolution = objective.space.resolutions[0]
    return [_fixed_config(dict(raw), resolution) for raw in experiment.architectures]


def run_experiment(
    suite: Suite,
    experiment: Experiment,
    seed: int,
    out_dir: Path,
    *,
    timeout: float | None = None,
    callbacks: Sequence[TrialCallback] = (),
) -> optuna.Study:
    """Run (or resume) one experiment for one seed; return its study.

    ``callbacks`` are called after each trial, as :func:`~optuna_nachos.study.run_search`
    calls them.
    """
    storage = storage_url(out_dir, experiment.part)
    objective = _objective(suite, experiment, seed, out_dir)
    study = _study(suite, experiment, seed, objective, storage)
    if experiment.kind == "search":
        n_trials = experiment.n_trials
    else:
        configs = _planned_configs(suite, experiment, seed, out_dir, objective)
        for config in configs:
            try:
                params = objective.space.params_from_config(config)
            except ConfigError as error:
                raise SuiteError(
                    f"experiment {experiment.name!r}: an architecture lies outside its search "
                    f"space ({error}); change the architecture or the experiment's 'space'."
                ) from None
            study.enqueue_trial(params, skip_if_exists=True)
        n_trials = len(configs)
    if n_trials:
        run_search(
            study,
            objective,
            n_trials=n_trials,
            timeout=timeout,
            lock_path=storage_lock_path(storage),
            callbacks=callbacks,
        )
    return study


def _record_part(out_dir: Path, part: str, seconds: float, complete: bool) -> None:
    path = out_dir / PARTS_FILE
    record = json.loads(path.read_text()) if path.is_file() else {}
    entry = record.setdefault(part, {"seconds": 0.0, "runs": 0})
    entry["seconds"] += seconds
    entry["runs"] += 1
    entry["complete"] = complete
    path.write_text(json.dumps(record, indent=2, sort_keys=True))


def part_records(out_dir: Path) -> dict[str, Any]:
    """Wall time and completion of every part run so far in ``out_dir``."""
    path = Path(out_dir) / PARTS_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def run_parts(
    suite: Suite,
    out_dir: str | Path,
    *,
    parts: Iterable[str] | None = None,
    timeout: float | None = None,
    callbacks: Sequence[TrialCallback] = (),
) -> dict[str, bool]:
    """Run (or resume) the parts of a suite.

    Every experiment stores its trials in ``<out_dir>/<part>.db``, so an interrupted part
    resumes where it stopped: searches run up to their total number of trials, planned
    trainings that already finished are not repeated. A suite with a ``[supernet]`` table
    trains its supernet first (part ``supernet``, into ``<out_dir>/supernet``, resumed from
    its last epoch's checkpoint); its experiments need it finished.

    Args:
        suite: The suite.
        out_dir: Folder of the studies, trained networks and results.
        parts: The parts to run (all by default), in the suite's order.
        timeout: Seconds after which each part stops starting new trials (it resumes on the
            next call); the ``supernet`` part stops after the epoch during which the time ran
            out.
        callbacks: Called with the study and the frozen trial after each trial of every
            experiment (a progress line, for example). Each experiment and each finished part
            is logged at the INFO level as it starts and ends.

    Returns:
        For every part run, whether it completed.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    chosen = list(suite.parts if parts is None else parts)
    if SUPERNET_PART in chosen and not suite.supernet:
        raise _no_supernet(suite)
    unknown = sorted(set(chosen) - set(suite.parts))
    if unknown:
        raise SuiteError(
            f"suite {suite.name!r} has no part {', '.join(unknown)}; "
            f"parts: {', '.join(suite.parts)}."
        )
    torch.set_num_threads(suite.threads)
    status = {}
    for part in [p for p in suite.parts if p in chosen]:
        if part != SUPERNET_PART and status.get(SUPERNET_PART) is False:
            _logger.info("Part %s waits for the supernet (run again to resume).", part)
            continue
        started = time.perf_counter()
        if part == SUPERNET_PART:
            _logger.info("Part %s: training the supernet", part)
            complete = train_suite_supernet(suite, out_dir, timeout=timeout)
        else:
            complete = _run_part(suite, part, out_dir, timeout=timeout, callbacks=callbacks)
        seconds = time.perf_counter() - started
        _record_part(out_dir, part, seconds, complete)
        _logger.info(
            "Part %s %s after %.0f s.",
            part,
            "complete" if complete else "stopped early (run again to resume)",
            seconds,
        )
        status[part] = complete
    return status


def _run_part(
    suite: Suite,
    part: str,
    out_dir: Path,
    *,
    timeout: float | None,
    callbacks: Sequence[TrialCallback],
) -> bool:
    deadline = None if timeout is None else time.perf_counter() + timeout
    complete = True
    for experiment in (e for e in suite.experiments if e.part == part):
        for seed in suite.seeds:
            left = None if deadline is None else deadline - time.perf_counter()
            if left is not None and left <= 0:
                return False
            _logger.info("Part %s: %s", part, study_name(experiment, seed))
            study = run_experiment(
                suite, experiment, seed, out_dir, timeout=left, callbacks=callbacks
            )
            complete &= part_finished(study, experiment)
    return complete


def part_finished(study: optuna.Study, experiment: Experiment) -> bool:
    """Whether one experiment's study for one seed holds all it plans."""
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.WAITING)
    trials = study.get_trials(deepcopy=False, states=states)
    if experiment.kind == "search":
        return len(trials) >= experiment.n_trials
    return not any(t.state == optuna.trial.TrialState.WAITING for t in trials)
