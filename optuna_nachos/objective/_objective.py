"""The packaged objective: suggest, build, cost, guard, train, calibrate, evaluate."""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
from optuna.trial import TrialState

from optuna_nachos._logging import get_logger
from optuna_nachos.config import ConfigError, EENNConfig
from optuna_nachos.cost import LatencyTable, exit_latency
from optuna_nachos.data import DatasetSplits, load_dataset, stratified_subset
from optuna_nachos.deploy import BUNDLE_FILE, Preprocessing, save_eenn
from optuna_nachos.objective._errors import BudgetBelowSpaceError
from optuna_nachos.record import (
    ACCURACY_PER_EXIT_ATTR,
    ARTIFACT_ATTR,
    AVG_LATENCY_ATTR,
    AVG_MACS_ATTR,
    BACKBONE_ACCURACY_ATTR,
    CALIBRATION_FEASIBLE_ATTR,
    CONFIG_ATTR,
    COST_KINDS,
    COST_SETTING,
    ECE_PER_EXIT_ATTR,
    EXIT_LATENCY_ATTR,
    EXIT_MACS_ATTR,
    EXIT_PARAMS_ATTR,
    EXIT_RATIOS_ATTR,
    FAIL_REASON_ATTR,
    LATENCY_MS,
    MAX_AVG_LATENCY,
    MAX_PEAK_LATENCY,
    MIN_ACCURACY,
    OPERATING_CURVE_ATTR,
    OPERATING_CURVE_COST_ATTR,
    PARAMS_ATTR,
    PEAK_LATENCY_ATTR,
    PEAK_MACS_ATTR,
    SELECTION_SPLIT,
    SKIP_REASON_ATTR,
    THRESHOLDS_ATTR,
    TIMINGS_ATTR,
    TRAIN_SECONDS_ATTR,
    VAL_AVG_LATENCY_ATTR,
    VAL_EXIT_RATIOS_ATTR,
    evaluation_constraints,
    is_legacy,
    objective_values,
    record_evaluation,
    selection_feasible,
)
from optuna_nachos.space import MobileNetV3Space
from optuna_nachos.supernet import Supernet, SupernetError, load_supernet
from optuna_nachos.train import (
    TrainConfig,
    TrainingDivergedError,
    calibrate_and_evaluate,
    check_search_calibration,
    evaluate_on_test,
    fit,
    fit_exits,
)

_logger = get_logger(__name__)

TEST_EVALUATIONS: tuple[str, ...] = ("front", "every")
"""Values of ``NachosObjective(test_evaluation=...)``: which trained trials the test split is
evaluated for."""


def _with_validation_rows(data: Any, rows: int | None, *, seed: int) -> Any:
    """``data`` with its validation split cut to a fixed stratified subset of ``rows`` images."""
    if rows is None or rows >= len(data.val):
        return data
    positions = stratified_subset(
        np.arange(len(data.val)), data.val.targets.numpy(), size=rows, seed=seed
    )
    return dataclasses.replace(data, val=data.val.subset(positions))


def _weighted(ratios: list[float], costs: list[float]) -> float:
    return float(sum(r * c for r, c in zip(ratios, costs)))


def _describe(values: dict[str, Any]) -> str:
    return (
        f"{values['dataset']} ({values['num_classes']} classes, {values['in_channels']} "
        f"channel(s), {values['resolution']}x{values['resolution']})"
    )


COST_OBJECTIVES = COST_KINDS
"""What the second objective minimizes: average MACs, or average latency from a table."""


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
    (:func:`~optuna_nachos.record.reported_values`). By default (``test_evaluation="front"``)
    the test split is evaluated only for the trials that can end up on the admissible front:
    a trial that is not admissible on validation, or that a finished admissible trial
    dominates on validation when it finishes, never will, and carries the reason in the
    ``test_skipped`` user attribute instead.

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
        download: Fetch a missing dataset from the internet (torchvision datasets only).
        data_seed: Seed of the validation split.
        train_subset: Use only this many training images (quick searches).
        device: ``"cpu"``, ``"cuda"``, ... ; overrides ``train_config.device``.
        artifact_store: An Optuna artifact store; the trained network of every trained trial
            is uploaded there.
        cost_convention: ``"nachos"`` (count the heads of passed exits) or ``"reference"``.
        supernet: A trained :class:`~optuna_nachos.supernet.Supernet` or its folder. Every
            candidate then inherits the supernet's backbone and exit-head weights, its
            BatchNorm statistics are recalibrated, and only phase B (the exit heads, on the
            frozen backbone's outputs computed once) is trained; ``train_config``'s
            ``backbone_epochs`` is not used. The supernet must have been trained for the
            same dataset, classes, channels and resolution.
        recalibration_batches: Training batches of the BatchNorm recalibration of inherited
            candidates; the supernet's own setting when ``None``.
        finetune_epochs: Optional epochs of phase A on an inherited backbone before phase B
            (default none).
        exit_rows: Train an inherited candidate's exits on at most this many training
            images (a fixed random subset, the same for every candidate): its backbone's
            outputs are computed and its exit epochs run on those rows only, which bounds the
            cost of a candidate. ``None``: the whole training split.
        latency_table: A latency table of the target device
            (:func:`~optuna_nachos.cost.profile_latency`). With it every trial records its
            predicted per-exit, average and peak latencies (``exit_latency_ms``,
            ``avg_latency_ms``, ``peak_latency_ms`` user attributes).
        max_avg_latency_ms: Budget of average latency per sample, in ms (needs the table);
            the constraint ``max_avg_latency_ms``, and the static guard on the first exit's
            latency.
        max_peak_latency_ms: Limit of the final exit's latency, in ms (static; needs the table).
        cost_objective: ``"macs"`` (default) or ``"latency"``: minimize average latency
            instead of average MACs. Training's cost term and the threshold calibration then use
            the per-exit latencies and ``max_avg_latency_ms`` (required), and
            ``max_avg_macs`` may be ``None``.
        latency_backend: Back end of the table to use, ``"onnxruntime"`` or ``"torch"``.
        latency_batch_size: Batch size of the table's measurements to use.
        test_evaluation: ``"front"`` (default): evaluate the test split only for trials that
            can be on the admissible front (admissible on validation and not dominated there
            by a finished admissible trial), which is every trial that the front, ``best``,
            the report and the dashboard's front show; ``"every"``: every trained trial.
        val_rows: Choose the thresholds and score every candidate on a fixed stratified
            subset of this many validation images (drawn with ``data_seed``, the same for
            every candidate) instead of the whole validation split. ``None``: all.
    """

    def __init__(
        self,
        *,
        dataset: str | DatasetSplits,
        max_avg_macs: float | None,
        min_accuracy: float,
        space: MobileNetV3Space | None = None,
        max_peak_macs: float | None = None,
        max_params: int | None = None,
        train_config: TrainConfig | None = None,
        calibration: str = "search",
        data_root: str | None = None,
        download: bool = False,
        data_seed: int = 0,
        train_subset: int | None = None,
        device: str | None = None,
        artifact_store: Any = None,
        cost_convention: str = "nachos",
        supernet: Supernet | str | os.PathLike[str] | None = None,
        recalibration_batches: int | None = None,
        finetune_epochs: int = 0,
        exit_rows: int | None = None,
        latency_table: LatencyTable | None = None,
        max_avg_latency_ms: float | None = None,
        max_peak_latency_ms: float | None = None,
        cost_objective: str = "macs",
        latency_backend: str = "onnxruntime",
        latency_batch_size: int = 1,
        test_evaluation: str = "front",
        val_rows: int | None = None,
    ) -> None:
        if cost_objective not in COST_OBJECTIVES:
            raise ValueError(
                f"cost_objective must be one of {COST_OBJECTIVES}, got {cost_objective!r}."
            )
        if test_evaluation not in TEST_EVALUATIONS:
            raise ValueError(
                f"test_evaluation must be one of {TEST_EVALUATIONS}, got {test_evaluation!r}."
            )
        self.test_evaluation = test_evaluation
        if max_avg_macs is None and cost_objective != "latency":
            raise ValueError("max_avg_macs is required unless cost_objective='latency'.")
        if max_avg_macs is not None and not max_avg_macs > 0:
            raise ValueError(f"max_avg_macs must be positive, got {max_avg_macs}.")
        for name, value in (
            ("max_avg_latency_ms", max_avg_latency_ms),
            ("max_peak_latency_ms", max_peak_latency_ms),
        ):
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive (or None), got {value!r}.")
            if value is not None and latency_table is None:
                raise ValueError(f"{name} needs a latency table (latency_table=...).")
        if cost_objective == "latency" and (latency_table is None or max_avg_latency_ms is None):
            raise ValueError("cost_objective='latency' needs latency_table and max_avg_latency_ms.")
        if latency_table is not None:
            latency_table.call_ms(backend=latency_backend, batch_size=latency_batch_size)
        self.latency_table = latency_table
        self.max_avg_latency_ms = None if max_avg_latency_ms is None else float(max_avg_latency_ms)
        self.max_peak_latency_ms = (
            None if max_peak_latency_ms is None else float(max_peak_latency_ms)
        )
        self.cost_objective = cost_objective
        self.latency_backend = latency_backend
        self.latency_batch_size = int(latency_batch_size)
        if not 0.0 <= min_accuracy < 1.0:
            raise ValueError(f"min_accuracy must lie in [0, 1), got {min_accuracy}.")
        check_search_calibration(calibration)
        self.space = space or MobileNetV3Space()
        self.max_avg_macs = None if max_avg_macs is None else float(max_avg_macs)
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
                download=download,
                resolution=resolutions[0],
                seed=data_seed,
                train_subset=train_subset,
            )
        self.data = dataset
        self.data_seed = data_seed
        if val_rows is not None and (
            isinstance(val_rows, bool) or not isinstance(val_rows, int) or val_rows < 1
        ):
            raise ValueError(f"val_rows must be a positive integer or None, got {val_rows!r}.")
        self.val_rows = val_rows
        self._scoring_data = _with_validation_rows(dataset, val_rows, seed=data_seed)
        if (
            isinstance(finetune_epochs, bool)
            or not isinstance(finetune_epochs, int)
            or (finetune_epochs < 0)
        ):
            raise ValueError(f"finetune_epochs must be an integer >= 0, got {finetune_epochs!r}.")
        self.finetune_epochs = finetune_epochs
        if exit_rows is not None and (
            isinstance(exit_rows, bool) or not isinstance(exit_rows, int) or exit_rows < 1
        ):
            raise ValueError(f"exit_rows must be a positive integer or None, got {exit_rows!r}.")
        self.exit_rows = exit_rows
        self.supernet = self._load_supernet(supernet) if supernet is not None else None
        if recalibration_batches is None and self.supernet is not None:
            recalibration_batches = int(
                self.supernet.metadata.get("settings", {}).get("recalibration_batches", 20)
            )
        if recalibration_batches is not None and (
            isinstance(recalibration_batches, bool)
            or not isinstance(recalibration_batches, int)
            or recalibration_batches < 0
        ):
            raise ValueError(
                f"recalibration_batches must be an integer >= 0, got {recalibration_batches!r}."
            )
        self.recalibration_batches = recalibration_batches
        if latency_table is not None and (
            latency_table.num_classes,
            latency_table.in_channels,
        ) != (dataset.num_classes, dataset.in_channels):
            raise ValueError(
                f"the latency table was measured for {latency_table.num_classes} classes and "
                f"{latency_table.in_channels} channels, the dataset has {dataset.num_classes} "
                f"and {dataset.in_channels}; profile with --num-classes/--in-channels."
            )
        floor = self.space.smallest_average_macs(
            num_classes=dataset.num_classes, in_channels=dataset.in_channels
        )
        if self.max_avg_macs is not None and self.max_avg_macs < floor:
            raise BudgetBelowSpaceError(self.max_avg_macs, floor)

    def _load_supernet(self, supernet: Supernet | str | os.PathLike[str]) -> Supernet:
        if not isinstance(supernet, Supernet):
            supernet = load_supernet(supernet)
        data = self.data
        metadata = supernet.metadata
        wanted = {
            "dataset": data.name,
            "num_classes": data.num_classes,
            "in_channels": data.in_channels,
            "resolution": data.resolution,
        }
        have = {
            "dataset": metadata.get("dataset", data.name),
            "num_classes": supernet.num_classes,
            "in_channels": supernet.in_channels,
            "resolution": supernet.resolution,
        }
        if have != wanted:
            where = supernet.source or "the supernet"
            raise SupernetError(
                f"{where} was trained for {_describe(have)}, but this search uses "
                f"{_describe(wanted)}; train a supernet for this data with "
                f"`optuna-nachos supernet train`."
            )
        recorded_seed = metadata.get("data_seed")
        if recorded_seed is not None and recorded_seed != self.data_seed:
            raise SupernetError(
                f"{supernet.source or 'the supernet'} was trained with data seed {recorded_seed}, "
                f"this search splits its validation set with data seed {self.data_seed}: the "
                f"supernet has trained on this search's validation images; use data seed "
                f"{recorded_seed}."
            )
        for resolution in self.space.resolutions:
            if resolution != supernet.resolution:
                raise SupernetError(
                    f"the space searches resolution {resolution}, the supernet serves only "
                    f"{supernet.resolution}."
                )
        device = self.train_config.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self._warn_if_floor_out_of_reach(supernet)
        return supernet.to(device).eval()

    def _warn_if_floor_out_of_reach(self, supernet: Supernet) -> None:
        """Warn when the floor lies above every accuracy the supernet's recorded subnets reach
        on validation: no inherited candidate is then likely to be admissible."""
        history = supernet.metadata.get("history") or []
        if not history:
            return
        scores = history[-1].get("val", {})
        reached = [a for entry in scores.values() for a in entry.get("exit_accuracies", [])]
        if reached and self.min_accuracy > max(reached):
            _logger.warning(
                "The accuracy floor %.2f lies above every validation accuracy the supernet's "
                "largest and smallest subnets reach (at most %.3f, after %d epochs): few or no "
                "candidates will be admissible. Lower the floor or train the supernet longer.",
                self.min_accuracy,
                max(reached),
                len(history),
            )

    def settings(self) -> dict[str, Any]:
        """The search settings as plain JSON values (recorded on the study)."""
        supernet = None
        if self.supernet is not None:
            supernet = {
                "path": self.supernet.source,
                "weights_sha256": self.supernet.weights_sha256,
                "recalibration_batches": self.recalibration_batches,
                "finetune_epochs": self.finetune_epochs,
            }
            if self.exit_rows is not None:  # unset in the studies of earlier versions
                supernet["exit_rows"] = self.exit_rows
        scoring = {} if self.val_rows is None else {"val_rows": self.val_rows}
        return {
            "supernet": supernet,
            "dataset": self.data.name,
            "max_avg_macs": self.max_avg_macs,
            "min_accuracy": self.min_accuracy,
            "max_peak_macs": self.max_peak_macs,
            "max_params": self.max_params,
            "calibration": self.calibration,
            "cost_convention": self.cost_convention,
            COST_SETTING: self.cost_objective,
            "max_avg_latency_ms": self.max_avg_latency_ms,
            "max_peak_latency_ms": self.max_peak_latency_ms,
            "latency_backend": None if self.latency_table is None else self.latency_backend,
            "latency_batch_size": (None if self.latency_table is None else self.latency_batch_size),
            "latency_device": (
                None if self.latency_table is None else dict(self.latency_table.device)
            ),
            "objective_split": SELECTION_SPLIT,
            "test_evaluation": self.test_evaluation,
            **scoring,
            "space": self.space.settings(),
            "train": self.train_config.to_dict(),
            "num_classes": self.data.num_classes,
            "in_channels": self.data.in_channels,
        }

    def sampler_options(self) -> dict[str, Any]:
        """Keyword arguments that let :class:`~optuna_nachos.NachosSampler` compute the exact
        costs and static constraints of this objective's candidates.

        With ``cost_objective="latency"`` the sampler's costs are the table's per-exit
        latencies and its budgets the latency ones, in ms."""
        if self.cost_objective == "latency":
            return {
                "num_classes": self.data.num_classes,
                "in_channels": self.data.in_channels,
                "max_avg_macs": self.max_avg_latency_ms,
                "min_accuracy": self.min_accuracy,
                "max_peak_macs": self.max_peak_latency_ms,
                "max_params": self.max_params,
                "cost_convention": self.cost_convention,
                "latency_table": self.latency_table,
                "latency_backend": self.latency_backend,
                "latency_batch_size": self.latency_batch_size,
            }
        return {
            "num_classes": self.data.num_classes,
            "in_channels": self.data.in_channels,
            "max_avg_macs": self.max_avg_macs,
            "min_accuracy": self.min_accuracy,
            "max_peak_macs": self.max_peak_macs,
            "max_params": self.max_params,
            "cost_convention": self.cost_convention,
        }

    def exit_latency(self, config: EENNConfig) -> list[float] | None:
        """Predicted latency (ms) of each exit of ``config`` on the table's device, or ``None``
        without a table."""
        if self.latency_table is None:
            return None
        return exit_latency(
            config,
            self.latency_table,
            backend=self.latency_backend,
            batch_size=self.latency_batch_size,
            convention=self.cost_convention,
        )

    def _static_constraints(
        self, config: EENNConfig, latency: list[float] | None = None
    ) -> dict[str, float]:
        constraints = self.space.static_constraints(
            config,
            num_classes=self.data.num_classes,
            in_channels=self.data.in_channels,
            max_avg_macs=self.max_avg_macs,
            max_peak_macs=self.max_peak_macs,
            max_params=self.max_params,
            convention=self.cost_convention,
        )
        if latency is not None and self.max_avg_latency_ms is not None:
            # The lowest average latency is the first exit's (every sample leaving there).
            constraints[MAX_AVG_LATENCY] = latency[0] - self.max_avg_latency_ms
        if latency is not None and self.max_peak_latency_ms is not None:
            constraints[MAX_PEAK_LATENCY] = latency[-1] - self.max_peak_latency_ms
        return constraints

    def __call__(self, trial: optuna.Trial) -> tuple[float, float]:
        started = time.perf_counter()
        try:
            config = self.space.suggest(trial)
        except ConfigError as error:
            return self._fail(trial, f"invalid configuration: {error}")
        profile = self.space.cost_profile(
            config,
            num_classes=self.data.num_classes,
            in_channels=self.data.in_channels,
            convention=self.cost_convention,
        )
        trial.set_user_attr(CONFIG_ATTR, config.to_dict())
        trial.set_user_attr(EXIT_MACS_ATTR, [int(m) for m in profile.exit_macs])
        trial.set_user_attr(EXIT_PARAMS_ATTR, [int(p) for p in profile.exit_params])
        trial.set_user_attr(PARAMS_ATTR, int(profile.exit_params[-1]))
        latency = self.exit_latency(config)
        if latency is not None:
            trial.set_user_attr(EXIT_LATENCY_ATTR, [float(v) for v in latency])
            trial.set_user_attr(PEAK_LATENCY_ATTR, float(latency[-1]))
        static = self._static_constraints(config, latency)
        violated = [name for name, value in static.items() if value > 0]
        if violated:
            return self._skip(trial, static, violated, profile, latency)
        try:
            return self._train_and_evaluate(trial, config, profile, static, started, latency)
        except TrainingDivergedError as error:
            return self._fail(trial, f"training diverged: {error}")
        except torch.cuda.OutOfMemoryError as error:
            return self._fail(trial, f"out of memory: {error}")

    def _skip(
        self,
        trial: optuna.Trial,
        static: dict[str, float],
        violated: list[str],
        profile: Any,
        latency: list[float] | None = None,
    ) -> tuple[float, float]:
        reason = "static guard: violates " + ", ".join(violated)
        trial.set_user_attr(SKIP_REASON_ATTR, reason)
        for name, value in static.items():
            trial.set_constraint(name, value)
        trial.set_constraint(MIN_ACCURACY, self.min_accuracy)
        _logger.info("Trial %d not trained (%s).", trial.number, reason)
        if self.cost_objective == "latency" and latency is not None:
            return 0.0, float(latency[0])
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
        latency: list[float] | None = None,
    ) -> tuple[float, float]:
        # The cost model: MACs, or the table's latencies when latency is the objective.
        by_latency = self.cost_objective == "latency" and latency is not None
        exit_costs = [float(v) for v in (latency if by_latency else profile.exit_macs)]
        budget = self.max_avg_latency_ms if by_latency else self.max_avg_macs
        train_started = time.perf_counter()
        _logger.info("Trial %d: %s.", trial.number, self._training_plan())
        if self.supernet is not None:
            result = self._inherit_and_fit(config, exit_costs, budget)
        else:
            # The initial weights come from the training seed, not from the process's RNG
            # state, so that a trial gives the same network whatever ran before it.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.train_config.seed)
                model = self.space.build(
                    config, num_classes=self.data.num_classes, in_channels=self.data.in_channels
                )
            result = fit(
                model,
                self.data,
                config=self.train_config,
                exit_costs=exit_costs,
                max_avg_macs=budget,
            )
        calibration_started = time.perf_counter()
        _logger.info("Trial %d: calibrating the exit thresholds, evaluating.", trial.number)
        inference = {"batch_size": self.train_config.batch_size, "device": self.train_config.device}
        evaluation = calibrate_and_evaluate(
            result.model,
            self._scoring_data,
            exit_costs,
            max_avg_macs=budget,
            min_accuracy=self.min_accuracy,
            method=self.calibration if config.exit_thresholds is None else "fixed",
            thresholds=config.exit_thresholds,
            test=False,
            **inference,
        )
        validation = evaluation.validation
        macs = [float(m) for m in profile.exit_macs]
        val_ratios = [float(r) for r in validation.exit_ratios]
        # Calibration ran in the cost model's unit (MACs, or ms when latency is the
        # objective): the MAC figures are recounted in MACs from the exit ratios.
        val_avg_macs = _weighted(val_ratios, macs)
        measured_latency = latency is not None and self.max_avg_latency_ms is not None
        val_latency = None if latency is None else _weighted(val_ratios, latency)
        static_kept = dict(static)
        if measured_latency and val_latency is not None:
            # The measured average replaces the static guard's first-exit bound.
            static_kept[MAX_AVG_LATENCY] = val_latency - self.max_avg_latency_ms
        constraints = evaluation_constraints(
            val_accuracy=validation.accuracy,
            val_avg_macs=val_avg_macs,
            max_avg_macs=self.max_avg_macs,
            min_accuracy=self.min_accuracy,
            static=static_kept,
        )
        cost = val_latency if by_latency and val_latency is not None else val_avg_macs
        test_skipped = self._test_skip_reason(trial, validation.accuracy, cost, constraints)
        if test_skipped is None:
            evaluation = evaluate_on_test(
                result.model, self.data, evaluation, exit_costs, curve=True, **inference
            )
        finished = time.perf_counter()
        test = evaluation.test
        # Choose on validation, report on test: the objective values and the constraints come
        # from the split that chose the thresholds; the test figures are stored beside them.
        test_ratios = None if test is None else [float(r) for r in test.exit_ratios]
        test_avg_macs = None if test_ratios is None else _weighted(test_ratios, macs)
        values = record_evaluation(
            trial,
            val_accuracy=validation.accuracy,
            val_avg_macs=val_avg_macs,
            test_accuracy=None if test is None else test.accuracy,
            test_avg_macs=test_avg_macs,
            max_avg_macs=self.max_avg_macs,
            min_accuracy=self.min_accuracy,
            static=static_kept,
            test_skipped=test_skipped,
        )
        if latency is not None and val_latency is not None:
            trial.set_user_attr(VAL_AVG_LATENCY_ATTR, val_latency)
        # The bundle's metrics are the test split's; a trial whose test split was skipped
        # carries the validation split's, labelled.
        metrics = (validation if test is None else test).to_dict()
        if test is None:
            metrics["split"] = SELECTION_SPLIT
        if by_latency:
            metrics["avg_latency_ms"] = float(metrics["avg_macs"])
            metrics["avg_macs"] = val_avg_macs if test_avg_macs is None else test_avg_macs
            metrics["peak_macs"] = macs[-1]
        trial.set_user_attr(THRESHOLDS_ATTR, metrics["thresholds"])
        trial.set_user_attr(PEAK_MACS_ATTR, macs[-1])
        trial.set_user_attr(VAL_EXIT_RATIOS_ATTR, val_ratios)
        trial.set_user_attr(CALIBRATION_FEASIBLE_ATTR, bool(evaluation.feasible))
        if test_ratios is not None and test_avg_macs is not None:
            self._record_test_metrics(trial, evaluation, metrics, test_avg_macs, latency)
        timings = {
            "train_seconds": calibration_started - train_started,
            "calibration_seconds": finished - calibration_started,
            "trial_seconds": finished - started,
        }
        trial.set_user_attr(TIMINGS_ATTR, timings)
        trial.set_user_attr(TRAIN_SECONDS_ATTR, timings["train_seconds"])
        if self.artifact_store is not None:
            self._upload(trial, result.model, metrics, profile, latency)
        if by_latency and val_latency is not None:
            return values[0], val_latency
        return values

    def _test_skip_reason(
        self,
        trial: optuna.Trial,
        accuracy: float,
        cost: float,
        constraints: dict[str, float],
    ) -> str | None:
        """Why the trial's test split need not be evaluated, or ``None`` when it must be.

        Only a trial on the admissible front is ever reported on test. A trial that is not
        admissible, or that a finished admissible trial dominates, never will be: finished
        trials stay, so the dominance holds for the rest of the study. Trials finishing at the
        same time on other workers are not seen, which can only add test evaluations.
        """
        if self.test_evaluation == "every":
            return None
        violated = sorted(name for name, value in constraints.items() if value > 0)
        if violated:
            return "not admissible on validation (violates " + ", ".join(violated) + ")"
        study = getattr(trial, "study", None)
        if study is None:  # a FixedTrial: no study to compare with
            return None
        for other in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if is_legacy(other) or not selection_feasible(other):
                continue
            other_accuracy, other_cost = objective_values(other)
            if (
                other_accuracy >= accuracy
                and other_cost <= cost
                and (other_accuracy > accuracy or other_cost < cost)
            ):
                return f"dominated on validation by trial {other.number}"
        return None

    def _record_test_metrics(
        self,
        trial: optuna.Trial,
        evaluation: Any,
        metrics: dict[str, Any],
        test_avg_macs: float,
        latency: list[float] | None,
    ) -> None:
        """Store the per-exit test figures and the operating curve of an evaluated trial."""
        if self.cost_objective == "latency" and latency is not None:
            trial.set_user_attr(OPERATING_CURVE_COST_ATTR, LATENCY_MS)
        if latency is not None:
            trial.set_user_attr(AVG_LATENCY_ATTR, _weighted(metrics["exit_ratios"], latency))
            trial.set_user_attr(AVG_MACS_ATTR, test_avg_macs)
        trial.set_user_attr(EXIT_RATIOS_ATTR, metrics["exit_ratios"])
        trial.set_user_attr(ACCURACY_PER_EXIT_ATTR, metrics["exit_accuracies"])
        trial.set_user_attr(BACKBONE_ACCURACY_ATTR, metrics["backbone_accuracy"])
        trial.set_user_attr(ECE_PER_EXIT_ATTR, metrics["ece"])
        trial.set_user_attr(
            OPERATING_CURVE_ATTR, [point.to_dict() for point in evaluation.curve or ()]
        )

    def _training_plan(self) -> str:
        """What a trial's training does, in words, for its progress line."""
        train = self.train_config
        exits = f"{train.exit_phase_epochs} epochs of the exits"
        if self.supernet is None:
            return f"training {train.backbone_epochs} epochs of the backbone, then {exits}"
        backbone = self.finetune_epochs
        then = f"{backbone} epochs of the backbone, then " if backbone else ""
        return f"inheriting the supernet's weights, training {then}{exits}"

    def _inherit_and_fit(
        self, config: EENNConfig, exit_costs: list[float], budget: float | None
    ) -> Any:
        """Inherit the candidate from the supernet, recalibrate, then train its exits."""
        assert self.supernet is not None
        model = self.supernet.extract(
            config,
            calibration_data=self.data,
            batches=self.recalibration_batches or 0,
            seed=self.train_config.seed,
        )
        if self.finetune_epochs:
            fit(
                model,
                self.data,
                config=dataclasses.replace(
                    self.train_config,
                    backbone_epochs=self.finetune_epochs,
                    warmup_epochs=0,
                    exit_epochs=0,
                ),
            )
        return fit_exits(
            model,
            self.data,
            config=self.train_config,
            exit_costs=exit_costs,
            max_avg_macs=budget,
            max_rows=self.exit_rows,
        )

    def _upload(
        self,
        trial: optuna.Trial,
        model: Any,
        metrics: dict,
        profile: Any,
        latency: list[float] | None = None,
    ) -> None:
        extra = {} if latency is None else {"exit_latency_ms": [float(v) for v in latency]}
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
                    "preprocessing": Preprocessing.from_dataset(self.data).to_dict(),
                    **extra,
                },
            )
            artifact_id = optuna.artifacts.upload_artifact(
                artifact_store=self.artifact_store, file_path=str(path), study_or_trial=trial
            )
        trial.set_user_attr(ARTIFACT_ATTR, artifact_id)
