"""Metrics of an early-exit network at given thresholds, computed from cached exit outputs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from optuna_nachos.cost import average_macs, peak_macs
from optuna_nachos.models import select_exits
from optuna_nachos.train._inference import ExitOutputs

ECE_BINS = 15
"""Default number of equal-width confidence bins of the expected calibration error."""


def check_exit_costs(exit_costs: Sequence[float], num_exits: int) -> tuple[float, ...]:
    """Validate per-exit MACs: one finite, non-negative value per exit."""
    costs = tuple(float(c) for c in exit_costs)
    if len(costs) != num_exits:
        raise ValueError(
            f"exit_costs must have one entry per exit ({num_exits}), got {len(costs)}."
        )
    if any(not (c >= 0 and c < float("inf")) for c in costs):
        raise ValueError(f"exit_costs must be finite and >= 0, got {costs}.")
    return costs


def expected_calibration_error(
    confidences: torch.Tensor, correct: torch.Tensor, *, num_bins: int = ECE_BINS
) -> float:
    """Expected calibration error of confidence scores against correctness.

    The confidences are split into ``num_bins`` equal-width bins ``(k/B, (k+1)/B]`` (0 goes
    to the first); ECE is ``sum_bins (n_bin / N) * |accuracy_bin - mean confidence_bin|``.

    Args:
        confidences: Confidence of each sample, in ``[0, 1]``, shape ``(N,)``.
        correct: Whether each sample is classified correctly, shape ``(N,)``.
        num_bins: Number of bins.

    Returns:
        The ECE in ``[0, 1]``; NaN for no sample.
    """
    conf = confidences.reshape(-1).to(torch.float64)
    hits = correct.reshape(-1).to(torch.float64)
    n = conf.numel()
    if n == 0:
        return float("nan")
    inner = torch.linspace(0.0, 1.0, num_bins + 1, dtype=torch.float64)[1:-1]
    bins = torch.bucketize(conf.clamp(0.0, 1.0), inner, right=False)
    conf_sum = torch.zeros(num_bins, dtype=torch.float64).index_add_(0, bins, conf)
    hit_sum = torch.zeros(num_bins, dtype=torch.float64).index_add_(0, bins, hits)
    return float((hit_sum - conf_sum).abs().sum() / n)


def exit_ratios_of(exits: torch.Tensor, num_exits: int) -> tuple[float, ...]:
    """Fraction of samples leaving at each exit (sums to 1)."""
    counts = torch.bincount(exits.reshape(-1), minlength=num_exits).to(torch.float64)
    return tuple((counts / max(1, exits.numel())).tolist())


def average_macs_of(exit_costs: Sequence[float], exit_ratios: Sequence[float]) -> float:
    """``sum_j r_j * cost_j`` (:func:`optuna_nachos.cost.average_macs`)."""
    return float(average_macs(exit_costs, exit_ratios))


@dataclass(frozen=True)
class EvaluationResult:
    """Metrics of an early-exit network at fixed thresholds on one split.

    Attributes:
        accuracy: Accuracy with early exiting.
        exit_accuracies: Accuracy of each exit on all samples (the last is the backbone's).
        exit_ratios: Fraction of samples leaving at each exit; sums to 1.
        avg_macs: Average MACs per sample, ``sum_j r_j * cost_j``.
        peak_macs: MACs of a sample leaving at the final exit.
        ece: Expected calibration error of each early exit's confidence ``b_j`` against
            that exit's correctness (on all samples).
        backbone_accuracy: Accuracy of the final exit on all samples.
        thresholds: The thresholds used, one per early exit.
        exit_costs: MACs of a sample leaving at each exit.
        num_samples: Number of samples evaluated.
    """

    accuracy: float
    exit_accuracies: tuple[float, ...]
    exit_ratios: tuple[float, ...]
    avg_macs: float
    peak_macs: float
    ece: tuple[float, ...]
    backbone_accuracy: float
    thresholds: tuple[float, ...]
    exit_costs: tuple[float, ...]
    num_samples: int

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serializable dictionary (Python floats, ints and lists only)."""
        return {
            "accuracy": float(self.accuracy),
            "exit_accuracies": [float(v) for v in self.exit_accuracies],
            "exit_ratios": [float(v) for v in self.exit_ratios],
            "avg_macs": float(self.avg_macs),
            "peak_macs": float(self.peak_macs),
            "ece": [float(v) for v in self.ece],
            "backbone_accuracy": float(self.backbone_accuracy),
            "thresholds": [float(v) for v in self.thresholds],
            "exit_costs": [float(v) for v in self.exit_costs],
            "num_samples": int(self.num_samples),
        }


def evaluate(
    outputs: ExitOutputs,
    thresholds: Sequence[float] | torch.Tensor,
    exit_costs: Sequence[float],
    *,
    num_bins: int = ECE_BINS,
) -> EvaluationResult:
    """Metrics of the network at ``thresholds`` from cached exit outputs.

    Samples leave at the exit :func:`~optuna_nachos.models.select_exits` picks (the same
    decisions as :meth:`~optuna_nachos.models.EarlyExitNetwork.predict`).

    Args:
        outputs: Exit outputs of one split, from :func:`collect_exit_outputs`.
        thresholds: One threshold per early exit (1 or more disables an exit).
        exit_costs: MACs of a sample leaving at each exit.
        num_bins: Bins of the expected calibration error.

    Returns:
        Accuracy, per-exit accuracies, exit ratios, average and peak MACs, ECE per early exit.
    """
    costs = check_exit_costs(exit_costs, outputs.num_exits)
    exits = select_exits(outputs.confidences, thresholds)
    correct = outputs.correct
    n = outputs.num_samples
    chosen = correct[torch.arange(n), exits]
    exit_accuracies = tuple(correct.to(torch.float64).mean(dim=0).tolist())
    ratios = exit_ratios_of(exits, outputs.num_exits)
    ece = tuple(
        expected_calibration_error(outputs.confidences[:, j], correct[:, j], num_bins=num_bins)
        for j in range(outputs.num_exits - 1)
    )
    return EvaluationResult(
        accuracy=float(chosen.to(torch.float64).mean()),
        exit_accuracies=exit_accuracies,
        exit_ratios=ratios,
        avg_macs=average_macs_of(costs, ratios),
        peak_macs=float(peak_macs(costs)),
        ece=ece,
        backbone_accuracy=exit_accuracies[-1],
        thresholds=tuple(float(t) for t in torch.as_tensor(thresholds).reshape(-1).tolist()),
        exit_costs=costs,
        num_samples=n,
    )
