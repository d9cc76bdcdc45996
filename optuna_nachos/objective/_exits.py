"""The objective of an exit search on a user's own backbone."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import optuna
import torch

from optuna_nachos._logging import get_logger
from optuna_nachos.config import ConfigError, ExitsConfig
from optuna_nachos.deploy import Preprocessing, export_eenn
from optuna_nachos.objective._errors import BudgetBelowSpaceError
from optuna_nachos.record import (
    ACCURACY_ATTR,
    AVG_MACS_ATTR,
    EXIT_DEFICIT_ATTR,
    EXIT_MACS_ATTR,
    EXIT_PARAMS_ATTR,
    EXIT_RATIOS_ATTR,
    EXITS_CONFIG_ATTR,
    EXPORT_ATTR,
    FAIL_REASON_ATTR,
    MAX_AVG_MACS,
    MIN_ACCURACY,
    PARAMS_ATTR,
    SKIP_REASON_ATTR,
    TEST_ACCURACY_ATTR,
    TEST_AVG_MACS_ATTR,
    TEST_EXIT_RATIOS_ATTR,
    THRESHOLDS_ATTR,
    TRAIN_SECONDS_ATTR,
    TRIAL_SECONDS_ATTR,
)
from optuna_nachos.space import BackboneExitSpace
from optuna_nachos.train import (
    TrainConfig,
    TrainingDivergedError,
    calibrate_and_evaluate,
    check_search_calibration,
    fit,
)

_logger = get_logger(__name__)


class ExitObjective:
    """Search early exits on your own (trained) backbone: returns (accuracy, average MACs).

    For every trial: suggest the exits (:meth:`BackboneExitSpace.suggest`), compute their
    exact costs, apply the static guard (first exit above the budget, too few exits, a static
    limit broken: not trained, accuracy 0 and the exact lower bound of the average MACs),
    build the network, train the exit heads with the NACHOS loss (the backbone phase is
    skipped by default: ``TrainConfig(backbone_epochs=0)``, backbone frozen), choose the
    thresholds on ``data.val`` and report on ``data.val`` (the objective values) and
    ``data.test`` (user attributes ``test_accuracy``, ``test_avg_macs``).

    Every finished trial records the user attributes ``exits_config``, ``exit_macs``,
    ``exit_params``, ``params``, ``exit_deficit``, ``accuracy``, ``avg_macs`` and, when
    trained, ``thresholds``, ``exit_ratios``, ``test_accuracy``, ``test_avg_macs``,
    ``test_exit_ratios``. With ``set_constraints`` (default) it carries the constraints
    ``max_avg_macs``, ``min_accuracy``, ``min_exits`` (and ``max_peak_macs`` / ``max_params``
    when set) through ``trial.set_constraint``; with ``set_constraints=False`` it sets none,
    for samplers given :func:`~optuna_nachos.study.constraints_from_user_attrs`.

    Args:
        space: The exit space on the backbone.
        data: Splits with ``.train``, ``.val`` and ``.test`` torch datasets of ``(image,
            label)`` items (a :class:`~optuna_nachos.data.DatasetSplits` or your own object).
        max_avg_macs: Budget of average MACs per sample.
        min_accuracy: Accuracy floor, as a fraction.
        max_peak_macs: Optional limit of the last exit's MACs.
        max_params: Optional limit of the parameter count.
        train_config: Training settings; by default ``TrainConfig(backbone_epochs=0)`` (the
            exit phase only, backbone frozen).
        calibration: Threshold method: ``"search"``, ``"nachos"`` or ``"global"``.
        cost_convention: ``"nachos"`` or ``"reference"``.
        set_constraints: Record the constraints with ``trial.set_constraint``.
        export_dir: When set, every trained network is exported (:func:`export_eenn`) to
            ``export_dir/trial_<number>``, with the ``preprocessing``.
        preprocessing: The preprocessing to record with exports; by default that of
            ``data`` when it has ``mean``, ``std``, ``resolution`` and ``in_channels``.
        copy_backbone: Give each trial's network its own copy of the backbone (needed when
            ``train_config.freeze_backbone`` is false).
    """

    def __init__(
        self,
        *,
        space: BackboneExitSpace,
        data: Any,
        max_avg_macs: float,
        min_accuracy: float,
        max_peak_macs: float | None = None,
        max_params: int | None = None,
        train_config: TrainConfig | None = None,
        calibration: str = "search",
        cost_convention: str = "nachos",
        set_constraints: bool = True,
        export_dir: str | os.PathLike | None = None,
        preprocessing: Preprocessing | None = None,
        copy_backbone: bool = False,
    ) -> None:
        if not isinstance(space, BackboneExitSpace):
            raise TypeError(f"space must be a BackboneExitSpace, got {type(space).__name__}.")
        if not max_avg_macs > 0:
            raise ValueError(f"max_avg_macs must be positive, got {max_avg_macs}.")
        if not 0.0 <= min_accuracy < 1.0:
            raise ValueError(f"min_accuracy must lie in [0, 1), got {min_accuracy}.")
        check_search_calibration(calibration)
        for split in ("train", "val", "test"):
            if getattr(data, split, None) is None:
                raise ValueError(f"data needs .train, .val and .test datasets; it has no .{split}.")
        self.space = space
        self.data = data
        self.max_avg_macs = float(max_avg_macs)
        self.min_accuracy = float(min_accuracy)
        self.max_peak_macs = max_peak_macs
        self.max_params = max_params
        self.train_config = train_config or TrainConfig(backbone_epochs=0)
        if not self.train_config.freeze_backbone and not copy_backbone:
            raise ValueError(
                "fine-tuning the backbone (freeze_backbone=False) changes the shared backbone of "
                "every later trial: pass copy_backbone=True."
            )
        self.calibration = calibration
        self.cost_convention = cost_convention
        self.set_constraints = bool(set_constraints)
        self.export_dir = None if export_dir is None else Path(export_dir)
        if preprocessing is None and all(
            hasattr(data, n) for n in ("mean", "std", "resolution", "in_channels")
        ):
            preprocessing = Preprocessing.from_dataset(data)
        self.preprocessing = preprocessing
        self.copy_backbone = copy_backbone
        floor = space.smallest_average_macs(convention=cost_convention)
        if self.max_avg_macs < floor:
            raise BudgetBelowSpaceError(self.max_avg_macs, floor)

    def sampler_options(self) -> dict[str, Any]:
        """Keyword arguments for :class:`~optuna_nachos.NachosSampler` on this search."""
        return {
            "space": self.space,
            "num_classes": self.space.num_classes,
            "in_channels": self.space.stages.input_shape[0],
            "max_avg_macs": self.max_avg_macs,
            "min_accuracy": self.min_accuracy,
            "max_peak_macs": self.max_peak_macs,
            "max_params": self.max_params,
            "cost_convention": self.cost_convention,
        }

    def _constrain(self, trial: optuna.Trial, values: dict[str, float]) -> None:
        if self.set_constraints:
            for name, value in values.items():
                trial.set_constraint(name, value)

    def __call__(self, trial: optuna.Trial) -> tuple[float, float]:
        started = time.perf_counter()
        try:
            config = self.space.suggest(trial)
        except ConfigError as error:
            trial.set_user_attr(FAIL_REASON_ATTR, f"invalid configuration: {error}")
            return math.nan, math.nan
        profile = self.space.cost_profile(config, convention=self.cost_convention)
        static = self.space.static_constraints(
            config,
            max_avg_macs=self.max_avg_macs,
            max_peak_macs=self.max_peak_macs,
            max_params=self.max_params,
            convention=self.cost_convention,
        )
        trial.set_user_attr(EXITS_CONFIG_ATTR, config.to_dict())
        trial.set_user_attr(EXIT_MACS_ATTR, [int(m) for m in profile.exit_macs])
        trial.set_user_attr(EXIT_PARAMS_ATTR, [int(p) for p in profile.exit_params])
        trial.set_user_attr(PARAMS_ATTR, int(profile.total_params))
        trial.set_user_attr(EXIT_DEFICIT_ATTR, int(self.space.exit_deficit(config)))
        violated = [name for name, value in static.items() if value > 0]
        if violated:
            reason = "static guard: violates " + ", ".join(violated)
            trial.set_user_attr(SKIP_REASON_ATTR, reason)
            trial.set_user_attr(ACCURACY_ATTR, 0.0)
            trial.set_user_attr(AVG_MACS_ATTR, float(profile.min_average_macs))
            self._constrain(trial, {**static, MIN_ACCURACY: self.min_accuracy})
            _logger.info("Trial %d not trained (%s).", trial.number, reason)
            return 0.0, float(profile.min_average_macs)
        try:
            return self._train(trial, config, profile, static, started)
        except TrainingDivergedError as error:
            trial.set_user_attr(FAIL_REASON_ATTR, f"training diverged: {error}")
            return math.nan, math.nan

    def _train(
        self,
        trial: optuna.Trial,
        config: ExitsConfig,
        profile: Any,
        static: dict[str, float],
        started: float,
    ) -> tuple[float, float]:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.train_config.seed)
            model = self.space.build(config, copy_backbone=self.copy_backbone)
        costs = [float(m) for m in profile.exit_macs]
        result = fit(
            model,
            self.data,
            config=self.train_config,
            exit_costs=costs,
            max_avg_macs=self.max_avg_macs,
        )
        evaluation = calibrate_and_evaluate(
            result.model,
            self.data,
            costs,
            max_avg_macs=self.max_avg_macs,
            min_accuracy=self.min_accuracy,
            method=self.calibration,
            batch_size=max(256, self.train_config.batch_size),
            device=self.train_config.device,
        )
        val, test = evaluation.validation, evaluation.test
        accuracy, avg_macs = float(val.accuracy), float(val.avg_macs)
        self._constrain(
            trial,
            {
                **static,
                MAX_AVG_MACS: avg_macs - self.max_avg_macs,
                MIN_ACCURACY: self.min_accuracy - accuracy,
            },
        )
        trial.set_user_attr(ACCURACY_ATTR, accuracy)
        trial.set_user_attr(AVG_MACS_ATTR, avg_macs)
        trial.set_user_attr(THRESHOLDS_ATTR, [float(t) for t in evaluation.thresholds])
        trial.set_user_attr(EXIT_RATIOS_ATTR, [float(r) for r in val.exit_ratios])
        trial.set_user_attr(TEST_ACCURACY_ATTR, float(test.accuracy))
        trial.set_user_attr(TEST_AVG_MACS_ATTR, float(test.avg_macs))
        trial.set_user_attr(TEST_EXIT_RATIOS_ATTR, [float(r) for r in test.exit_ratios])
        trial.set_user_attr(TRAIN_SECONDS_ATTR, float(result.total_seconds))
        if self.export_dir is not None:
            out = export_eenn(
                self.export_dir / f"trial_{trial.number}",
                result.model,
                evaluation.thresholds,
                metadata={
                    "trial_number": trial.number,
                    "exit_macs": [int(m) for m in profile.exit_macs],
                    "exit_params": [int(p) for p in profile.exit_params],
                    "metrics": {"validation": val.to_dict(), "test": test.to_dict()},
                },
                preprocessing=self.preprocessing,
            )
            trial.set_user_attr(EXPORT_ATTR, str(out))
        trial.set_user_attr(TRIAL_SECONDS_ATTR, time.perf_counter() - started)
        return accuracy, avg_macs
