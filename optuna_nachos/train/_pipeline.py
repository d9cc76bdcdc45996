"""Calibrate thresholds on the validation split, report on the test split."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from optuna_nachos.train._calibration import (
    _MACS_RTOL,
    Calibration,
    OperatingPoint,
    calibrate_thresholds,
    operating_curve,
)
from optuna_nachos.train._evaluation import EvaluationResult, evaluate
from optuna_nachos.train._inference import collect_exit_outputs


@dataclass(frozen=True)
class CalibratedEvaluation:
    """Thresholds chosen on the validation split and the metrics on both splits.

    Attributes:
        calibration: The threshold choice, with its feasibility on the validation split.
        validation: Metrics on the validation split at the chosen thresholds.
        test: Metrics on the test split at the chosen thresholds (the figures to report);
            ``None`` when the test split was not evaluated (``test=False``).
        curve: The accuracy / average-MACs operating curve on the test split (what other
            threshold settings would give), when asked for with ``curve=True``.
    """

    calibration: Calibration
    validation: EvaluationResult
    test: EvaluationResult | None = None
    curve: tuple[OperatingPoint, ...] | None = None

    @property
    def thresholds(self) -> tuple[float, ...]:
        """The chosen thresholds."""
        return self.calibration.thresholds

    @property
    def feasible(self) -> bool:
        """Whether the constraints hold on the validation split (where they were enforced)."""
        return self.calibration.feasible

    @property
    def test_feasible(self) -> bool | None:
        """Whether the constraints also hold on the test split; ``None`` when it was not
        evaluated."""
        if self.test is None:
            return None
        budget = self.calibration.max_avg_macs
        floor = self.calibration.min_accuracy
        within_budget = budget is None or self.test.avg_macs <= budget * (1 + _MACS_RTOL)
        above_floor = floor is None or self.test.accuracy >= floor
        return within_budget and above_floor

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serializable dictionary."""
        return {
            "calibration": self.calibration.to_dict(),
            "validation": self.validation.to_dict(),
            "test": None if self.test is None else self.test.to_dict(),
            "test_feasible": self.test_feasible,
            "curve": None if self.curve is None else [p.to_dict() for p in self.curve],
        }


def calibrate_and_evaluate(
    model: nn.Module,
    data: Any,
    exit_costs: Sequence[float],
    *,
    max_avg_macs: float | None = None,
    min_accuracy: float | None = None,
    method: str = "search",
    thresholds: Sequence[float] | None = None,
    batch_size: int = 256,
    device: str | torch.device = "auto",
    num_workers: int = 0,
    curve: bool = False,
    test: bool = True,
) -> CalibratedEvaluation:
    """Choose thresholds on ``data.val`` and report the metrics on ``data.test``.

    One inference pass per split (:func:`collect_exit_outputs`), then array work only
    (:func:`calibrate_thresholds`, :func:`evaluate`). Tuning and reporting on different
    splits fixes the reference, which does both on the test split.

    Args:
        model: The trained early-exit network.
        data: A ``DatasetSplits``-like object with non-empty ``.val`` and ``.test``.
        exit_costs: MACs of a sample leaving at each exit.
        max_avg_macs: Average-MAC budget; ``None`` for none.
        min_accuracy: Accuracy floor; ``None`` for none.
        method: ``"search"``, ``"nachos"``, ``"global"`` or ``"fixed"`` (see
            :func:`calibrate_thresholds`).
        thresholds: The thresholds of ``method="fixed"``.
        batch_size: Inference batch size.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...
        num_workers: DataLoader workers.
        curve: Also compute the operating curve of the test split
            (:func:`operating_curve`).
        test: Evaluate the test split; ``False`` chooses the thresholds and scores the
            validation split only (the test figures can follow with :func:`evaluate_on_test`).

    Returns:
        The calibration and the validation and test metrics.
    """
    val = getattr(data, "val", None)
    if val is None or len(val) == 0:
        raise ValueError(
            "calibrate_and_evaluate needs data with a non-empty .val split (to choose the "
            "thresholds); load the dataset with val_fraction > 0."
        )
    _check_test_split(data)
    options = {"batch_size": batch_size, "device": device, "num_workers": num_workers}
    val_outputs = collect_exit_outputs(model, val, **options)
    calibration = calibrate_thresholds(
        val_outputs,
        exit_costs,
        max_avg_macs=max_avg_macs,
        min_accuracy=min_accuracy,
        method=method,
        thresholds=thresholds,
    )
    evaluation = CalibratedEvaluation(
        calibration=calibration,
        validation=evaluate(val_outputs, calibration.thresholds, exit_costs),
    )
    if not test:
        return evaluation
    return evaluate_on_test(model, data, evaluation, exit_costs, curve=curve, **options)


def evaluate_on_test(
    model: nn.Module,
    data: Any,
    evaluation: CalibratedEvaluation,
    exit_costs: Sequence[float],
    *,
    batch_size: int = 256,
    device: str | torch.device = "auto",
    num_workers: int = 0,
    curve: bool = False,
) -> CalibratedEvaluation:
    """Add the test split's metrics at the thresholds ``evaluation`` chose on validation.

    Args:
        model: The network ``evaluation`` was calibrated on.
        data: A ``DatasetSplits``-like object with a non-empty ``.test`` split.
        evaluation: The result of :func:`calibrate_and_evaluate` with ``test=False``.
        exit_costs: MACs of a sample leaving at each exit.
        batch_size: Inference batch size.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...
        num_workers: DataLoader workers.
        curve: Also compute the operating curve of the test split.

    Returns:
        ``evaluation`` with its ``test`` metrics (and ``curve`` when asked for).
    """
    _check_test_split(data)
    outputs = collect_exit_outputs(
        model, data.test, batch_size=batch_size, device=device, num_workers=num_workers
    )
    return dataclasses.replace(
        evaluation,
        test=evaluate(outputs, evaluation.thresholds, exit_costs),
        curve=tuple(operating_curve(outputs, exit_costs)) if curve else None,
    )


def _check_test_split(data: Any) -> None:
    test = getattr(data, "test", None)
    if test is None or len(test) == 0:
        raise ValueError(
            "the evaluation needs data with a non-empty .test split (to report on); load the "
            "dataset with its test split."
        )
