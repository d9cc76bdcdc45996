"""Calibrate thresholds on the validation split, report on the test split."""

from __future__ import annotations

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
        test: Metrics on the test split at the chosen thresholds (the figures to report).
        curve: The accuracy / average-MACs operating curve on the test split (what other
            threshold settings would give), when asked for with ``curve=True``.
    """

    calibration: Calibration
    validation: EvaluationResult
    test: EvaluationResult
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
    def test_feasible(self) -> bool:
        """Whether the constraints also hold on the test split."""
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
            "test": self.test.to_dict(),
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

    Returns:
        The calibration and the validation and test metrics.
    """
    val = getattr(data, "val", None)
    test = getattr(data, "test", None)
    if val is None or test is None or len(val) == 0 or len(test) == 0:
        raise ValueError(
            "calibrate_and_evaluate needs data with non-empty .val (to choose thresholds) and "
            ".test (to report) splits; load the dataset with val_fraction > 0."
        )
    options = {"batch_size": batch_size, "device": device, "num_workers": num_workers}
    val_outputs = collect_exit_outputs(model, val, **options)
    test_outputs = collect_exit_outputs(model, test, **options)
    calibration = calibrate_thresholds(
        val_outputs,
        exit_costs,
        max_avg_macs=max_avg_macs,
        min_accuracy=min_accuracy,
        method=method,
        thresholds=thresholds,
    )
    return CalibratedEvaluation(
        calibration=calibration,
        validation=evaluate(val_outputs, calibration.thresholds, exit_costs),
        test=evaluate(test_outputs, calibration.thresholds, exit_costs),
        curve=tuple(operating_curve(test_outputs, exit_costs)) if curve else None,
    )
