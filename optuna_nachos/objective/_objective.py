"""The packaged objective: suggest, build, cost, guard, train, calibrate, evaluate."""

from __future__ import annotations

import dataclasses
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna
import torch

from optuna_nachos._logging import get_logger
from optuna_nachos.config import ConfigError, EENNConfig
from optuna_nachos.cost import cost_profile, exit_macs
from optuna_nachos.data import DatasetSplits, load_dataset
from optuna_nachos.models import build_eenn
from optuna_nachos.results._export import ARTIFACT_ATTR, BUNDLE_FILE, save_eenn
from optuna_nachos.space import MobileNetV3Space
from optuna_nachos.study._constraints import (
    MAX_AVG_MACS,
    MAX_PARAMS,
    MAX_PEAK_MACS,
    MIN_ACCURACY,
    MIN_EXITS,
)
from optuna_nachos.study._protocol import SELECTION_SPLIT, record_evaluation
from optuna_nachos.train import TrainConfig, TrainingDivergedError, calibrate_and_evaluate, fit

_logger = get_logger()


def smallest_average_macs(space: MobileNetV3Space, *, num_classes: int, in_channels: int) -> int:
    """The lowest average MACs any admissible network of ``space`` can reach.

    That is the cheapest first exit over the space: the smallest choices everywhere, over
    every placement of the exits (more exits can make the first head pool more).
    """
    cheapest = None
    stages = space.exit_stages
    for mask in range(1, 2 ** len(stages)):
        exits = tuple(s for i, s in enumerate(stages) if mask >> i & 1)
        if len(exits) < max(space.min_exits, 1):
            continue
        for resolution in space.resolutions:
            for head in space.exit_heads:
                depth = min(space.depths)
                config = EENNConfig(
                    depths=(depth,) * 5,
                    kernel_sizes=((min(space.kernel_sizes),) * depth,) * 5,
                    expand_ratios=((min(space.expand_ratios),) * depth,) * 5,
                    exit_stages=exits,
                    resolution=resolution,
                    exit_head=head,
                    exit_thresholds=(
                        None if space.threshold_genes is None else (0.0,) * len(exits)
                    ),
                )
                first = exit_macs(config, num_classes=num_classes, in_channels=in_channels)[0]
                cheapest = first if cheapest is None else min(cheapest, first)
    if cheapest is None:
        raise ValueError("the space has no configuration with an early exit.")
    return int(cheapest)


FAIL_REASON_ATTR = "fail_reason"
SKIP_REASON_ATTR = "skipped_training"


class NachosObjective:
    """The NACHOS objective for ``study.optimize``: returns (accuracy, average MACs).

    For every trial: suggest a configuration, build it, compute its exact per-exit costs,
    apply the static guard, train it (backbone, then exits), choose exit thresholds on the
    validation split and evaluate on the validation and test splits. Every finished trial
    carries the constraints ``max_avg_macs`` (average MACs minus the budget), ``min_accuracy``
    (floor minus accuracy), ``min_exits`` (missing early exits) and, when set,
    ``max_peak_macs`` and ``max_params``; a value ``<= 0`` is satisfied.

    Choose on validation, report on test: the objective values and the two measured
    constraints are the *validation* figures (the split that chose the thresholds), so the
    sampler, the constraints and the admissible front never see the test split. The test
    figures at the same thresholds are stored as the user attributes ``test_accuracy`` and
    ``test_avg_macs`` (and the per-exit test metrics as ``accuracy_per_exit``,
    ``exit_ratios``, ...), for reporting the trials chosen
    (:func:`~optuna_nachos.study.reported_values`).

    Candidates that the static guard rejects (first-exit cost above the budget, too few
    exits, a static limit broken) are not trained: the trial completes with accuracy 0, its
    exact lower bound of average MACs, and positive constraint values, so constraint-aware
    samplers (TPE, NSGA-II, GP, NachosSampler) learn to avoid that region.

    A candidate whose training diverges, runs out of memory or is invalid fails (state FAIL)
    with the reason in the ``fail_reason`` user attribute, and the study goes on.

    Args:
        dataset: A dataset name for :func:`~optuna_nachos.data.load_dataset`, or loaded splits.
        max_avg_macs: Budget of average MACs per sample.
        min_accuracy: Accuracy floor, as a fraction.
        space: The search space; the default NACHOS space when ``None``.
        max_peak_macs: Optional limit of the last exit's cost.
        max_params: Optional limit of the parameter count.
        train_config: Training settings (reference defaults).
        calibration: Threshold method: ``"search"`` (default, per-exit thresholds), ``"nachos"``
            (the reference's rule) or ``"global"`` (one threshold for every exit). A
            configuration that carries its own thresholds (a space with threshold genes, as
            EDANAS) is evaluated at those thresholds, without calibration.
        data_root: Folder of the dataset files.
        data_seed: Seed of the validation split.
        train_subset: Use only this many training images (quick searches).
        device: ``"cpu"``, ``"cuda"``, ... ; overrides ``train_config.device``.
        artifact_store: An Optuna artifact store; the trained network of every trained trial
            is uploaded there.
        cost_convention: ``"nachos"`` (count the heads of passed exits) or ``"reference"``.
    """

    def __init__(
        self,
        *,
        dataset: str | DatasetSplits,
        max_avg_macs: float,
        min_accuracy: float,
        space: MobileNetV3Space | None = None,
        max_peak_macs: float | None = None,
        max_params: int | None = None,
        train_config: TrainConfig | None = None,
        calibration: str = "search",
        data_root: str | None = None,
        data_seed: int = 0,
        train_subset: int | None = None,
        device: str | None = None,
        artifact_store: Any = None,
        cost_convention: str = "nachos",
    ) -> None:
        if not max_avg_macs > 0:
            raise ValueError(f"max_avg_macs must be positive, got {max_avg_macs}.")
        if not 0.0 <= min_accuracy < 1.0:
            raise ValueError(f"min_accuracy must lie in [0, 1), got {min_accuracy}.")
        if calibration not in ("search", "nachos", "global"):
            raise ValueError(
                f"calibration must be 'search', 'nachos' or 'global', got {calibration!r}."
            )
        self.space = space or MobileNetV3Space()
        self.max_avg_macs = float(max_avg_macs)
        self.min_accuracy = float(min_accuracy)
        self.max_peak_macs = max_peak_macs
        self.max_params = max_params
        self.train_config = train_config or TrainConfig()
        if device is not None:
            self.train_config = dataclasses.replace(self.train_config, device=device)
        self.calibration = calibration
        self.artifact_store = artifact_store
        self.cost_convention = cost_convention
        if isinstance(dataset, str):
            resolutions = self.space.resolutions
            if len(resolutions) != 1:
                raise ValueError(
                    "a space with several resolutions needs the dataset loaded per resolution; "
                    "pass one resolution or preloaded splits."
                )
            dataset = load_dataset(
                dataset,
                root=data_root,
                resolution=resolutions[0],
                seed=data_seed,
                train_subset=train_subset,
            )
        self.data = dataset
        floor = smallest_average_macs(
            self.space, num_classes=dataset.num_classes, in_channels=dataset.in_channels
        )
        if self.max_avg_macs < floor:
            raise ValueError(
                f"max_avg_macs={self.max_avg_macs:,.0f} is below the cheapest network of the "
                f"space ({floor:,} MACs at its first exit); raise the budget."
            )

    def settings(self) -> dict[str, Any]:
        """The search settings as plain JSON values (recorded on the study)."""
        return {
            "dataset": self.data.name,
            "max_avg_macs": self.max_avg_macs,
            "min_accuracy": self.min_accuracy,
            "max_peak_macs": self.max_peak_macs,
            "max_params": self.max_params,
            "calibration": self.calibration,
            "cost_convention": self.cost_convention,
            "objective_split": SELECTION_SPLIT,
            "space": self.space.settings(),
            "train": self.train_config.to_dict(),
            "num_classes": self.data.num_classes,
            "in_channels": self.data.in_channels,
        }

    def sampler_options(self) -> dict[str, Any]:
        """Keyword arguments that let :class:`~optuna_nachos.NachosSampler` compute the exact
        costs and static constraints of this objective's candidates."""
        return {
            "num_classes": self.data.num_classes,
            "in_channels": self.data.in_channels,
            "max_avg_macs": self.max_avg_macs,
            "min_accuracy": self.min_accuracy,
            "max_peak_macs": self.max_peak_macs,
            "max_params": self.max_params,
            "cost_convention": self.cost_convention,
        }

    def _static_constraints(self, config: EENNConfig, profile: Any) -> dict[str, float]:
        constraints = {
            MAX_AVG_MACS: float(profile.min_average_macs) - self.max_avg_macs,
            MIN_EXITS: float(self.space.exit_deficit(config)),
        }
        if self.max_peak_macs is not None:
            constraints[MAX_PEAK_MACS] = float(profile.peak_macs) - float(self.max_peak_macs)
        if self.max_params is not None:
            constraints[MAX_PARAMS] = float(profile.exit_params[-1]) - float(self.max_params)
        return constraints

    def __call__(self, trial: optuna.Trial) -> tuple[float, float]:
        started = time.perf_counter()
        try:
            config = self.space.suggest(trial)
        except ConfigError as error:
            return self._fail(trial, f"invalid configuration: {error}")
        profile = cost_profile(
            config,
            num_classes=self.data.num_classes,
            in_channels=self.data.in_channels,
            convention=self.cost_convention,
        )
        trial.set_user_attr("config", config.to_dict())
        trial.set_user_attr("exit_macs", [int(m) for m in profile.exit_macs])
        trial.set_user_attr("exit_params", [int(p) for p in profile.exit_params])
        trial.set_user_attr("params", int(profile.exit_params[-1]))
        static = self._static_constraints(config, profile)
        violated = [name for name, value in static.items() if value > 0]
        if violated:
            return self._skip(trial, static, violated, profile)
        try:
            return self._train_and_evaluate(trial, config, profile, static, started)
        except TrainingDivergedError as error:
            return self._fail(trial, f"training diverged: {error}")
        except torch.cuda.OutOfMemoryError as error:
            return self._fail(trial, f"out of memory: {error}")

    def _skip(
        self, trial: optuna.Trial, static: dict[str, float], violated: list[str], profile: Any
    ) -> tuple[float, float]:
        reason = "static guard: violates " + ", ".join(violated)
        trial.set_user_attr(SKIP_REASON_ATTR, reason)
        for name, value in static.items():
            trial.set_constraint(name, value)
        trial.set_constraint(MIN_ACCURACY, self.min_accuracy)
        _logger.info("Trial %d not trained (%s).", trial.number, reason)
        return 0.0, float(profile.min_average_macs)

    def _fail(self, trial: optuna.Trial, reason: str) -> tuple[float, float]:
        trial.set_user_attr(FAIL_REASON_ATTR, reason)
        _logger.warning("Trial %d failed: %s", trial.number, reason)
        # Optuna records a NaN objective value as a FAIL trial and the study goes on.
        return math.nan, math.nan

    def _train_and_evaluate(
        self,
        trial: optuna.Trial,
        config: EENNConfig,
        profile: Any,
        static: dict[str, float],
        started: float,
    ) -> tuple[float, float]:
        # The initial weights come from the training seed, not from the process's RNG state,
        # so that a trial gives the same network whatever ran before it.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.train_config.seed)
            model = build_eenn(
                config, num_classes=self.data.num_classes, in_channels=self.data.in_channels
            )
        exit_costs = [float(m) for m in profile.exit_macs]
        train_started = time.perf_counter()
        result = fit(
            model,
            self.data,
            config=self.train_config,
            exit_costs=exit_costs,
            max_avg_macs=self.max_avg_macs,
        )
        calibration_started = time.perf_counter()
        evaluation = calibrate_and_evaluate(
            result.model,
            self.data,
            exit_costs,
            max_avg_macs=self.max_avg_macs,
            min_accuracy=self.min_accuracy,
            method=self.calibration if config.exit_thresholds is None else "fixed",
            thresholds=config.exit_thresholds,
            batch_size=self.train_config.batch_size,
            device=self.train_config.device,
            curve=True,
        )
        finished = time.perf_counter()
        test = evaluation.test
        # Choose on validation, report on test: the objective values and the constraints come
        # from the split that chose the thresholds; the test figures are stored beside them.
        values = record_evaluation(
            trial,
            val_accuracy=evaluation.validation.accuracy,
            val_avg_macs=evaluation.validation.avg_macs,
            test_accuracy=test.accuracy,
            test_avg_macs=test.avg_macs,
            max_avg_macs=self.max_avg_macs,
            min_accuracy=self.min_accuracy,
            static=static,
        )
        metrics = test.to_dict()
        trial.set_user_attr("exit_ratios", metrics["exit_ratios"])
        trial.set_user_attr("thresholds", metrics["thresholds"])
        trial.set_user_attr("accuracy_per_exit", metrics["exit_accuracies"])
        trial.set_user_attr("backbone_accuracy", metrics["backbone_accuracy"])
        trial.set_user_attr("ece_per_exit", metrics["ece"])
        trial.set_user_attr("peak_macs", metrics["peak_macs"])
        trial.set_user_attr("val_exit_ratios", list(evaluation.validation.exit_ratios))
        trial.set_user_attr("calibration_feasible", bool(evaluation.feasible))
        trial.set_user_attr(
            "operating_curve", [point.to_dict() for point in evaluation.curve or ()]
        )
        timings = {
            "train_seconds": calibration_started - train_started,
            "calibration_seconds": finished - calibration_started,
            "trial_seconds": finished - started,
        }
        trial.set_user_attr("timings", timings)
        trial.set_user_attr("train_seconds", timings["train_seconds"])
        if self.artifact_store is not None:
            self._upload(trial, result.model, metrics, profile)
        return values

    def _upload(self, trial: optuna.Trial, model: Any, metrics: dict, profile: Any) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = save_eenn(
                Path(tmp) / BUNDLE_FILE,
                model,
                metrics["thresholds"],
                in_channels=self.data.in_channels,
                metadata={
                    "trial_number": trial.number,
                    "exit_macs": [int(m) for m in profile.exit_macs],
                    "exit_params": [int(p) for p in profile.exit_params],
                    "metrics": metrics,
                    "dataset": self.data.name,
                },
            )
            artifact_id = optuna.artifacts.upload_artifact(
                artifact_store=self.artifact_store, file_path=str(path), study_or_trial=trial
            )
        trial.set_user_attr(ARTIFACT_ATTR, artifact_id)
