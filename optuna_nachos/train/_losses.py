"""The NACHOS training loss (DESIGN 2.4), as small functions and one module.

Shapes: ``N`` samples, ``E`` exits (the final one included), ``K = E - 1`` early exits.
``confidences`` are the exit confidences ``b`` of shape ``(N, E)`` whose final column is 1, as
:class:`~optuna_nachos.models.EENNOutput` returns them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from optuna_nachos.models import EENNOutput, exit_probabilities
from optuna_nachos.train._config import CLS_WEIGHTINGS

LOSS_TERMS = ("cls", "conf", "macs", "sup")
"""Names of the loss terms, in the order of :class:`LossTerms`."""


class LossTerms(NamedTuple):
    """The terms of the NACHOS loss, each a scalar tensor, unweighted except ``total``.

    Attributes:
        total: ``w_alpha * cls + beta * conf + w_beta * macs + w_gamma * sup``.
        cls: Exit-probability weighted cross-entropy ``L_cls``.
        conf: Class-balanced confidence binary cross-entropy ``L_conf``.
        macs: Normalized excess of the expected MACs over the budget ``L_macs``.
        sup: Support-set term ``L_sup``.
    """

    total: torch.Tensor
    cls: torch.Tensor
    conf: torch.Tensor
    macs: torch.Tensor
    sup: torch.Tensor


def classification_loss(
    logits: Sequence[torch.Tensor],
    targets: torch.Tensor,
    exit_probs: torch.Tensor,
    *,
    weighting: str = "exit_probability",
) -> torch.Tensor:
    """The classification term ``L_cls`` under one of three exit weightings.

    - ``"exit_probability"`` (the NACHOS paper): ``mean_i sum_j p_ij * CE(z_j(x_i), y_i)``.
      Gradients reach both the exit logits and, through ``p``, the confidences; an exit that
      few samples are expected to leave at learns little from the rest.
    - ``"weighted_logits"`` (the NACHOS reference code): ``mean_i CE(sum_j p_ij z_j(x_i),
      y_i)``, the cross-entropy of the exit-probability-weighted mixture of the logits.
    - ``"uniform"``: ``mean_i mean_j CE(z_j(x_i), y_i)``, the plain multi-exit loss of joint
      training (as SDN and EDANAS use); it trains every exit on every sample whatever the
      confidences, and gives the confidences no gradient.

    Args:
        logits: Class logits of every exit, each ``(N, classes)``.
        targets: Class labels ``(N,)``.
        exit_probs: Exit probabilities ``p`` ``(N, E)`` from
            :func:`~optuna_nachos.models.exit_probabilities`.
        weighting: One of :data:`~optuna_nachos.train.CLS_WEIGHTINGS`.

    Raises:
        ValueError: On an unknown ``weighting``.
    """
    if weighting == "weighted_logits":
        stacked = torch.stack(list(logits), dim=1)  # (N, E, classes)
        mixed = (exit_probs.unsqueeze(-1).to(stacked.dtype) * stacked).sum(dim=1)
        return F.cross_entropy(mixed, targets)
    ce = torch.stack([F.cross_entropy(z, targets, reduction="none") for z in logits], dim=1)
    if weighting == "uniform":
        return ce.mean()
    if weighting != "exit_probability":
        raise ValueError(f"weighting must be one of {CLS_WEIGHTINGS}, got {weighting!r}.")
    return (exit_probs * ce).sum(dim=1).mean()


def exit_correctness(logits: Sequence[torch.Tensor], targets: torch.Tensor) -> torch.Tensor:
    """Whether each exit classifies each sample correctly: bool ``(N, E)``."""
    with torch.no_grad():
        return torch.stack([z.argmax(dim=1) == targets for z in logits], dim=1)


def confidence_loss(confidences: torch.Tensor, correct: torch.Tensor) -> torch.Tensor:
    """Class-balanced binary cross-entropy between ``b_j`` and "exit j is correct".

    Only the early exits count (the final ``b`` is fixed to 1). As in Pomponi et al. (2022)
    and the NACHOS reference, within the batch and per exit the positives are weighted
    ``N / (2 * positives)`` and the negatives ``N / (2 * negatives)``, so both groups weigh
    half; the weighted BCE is averaged over samples and early exits. When every sample of an
    exit falls in one group, that group keeps its weight (half the plain mean).

    Args:
        confidences: Exit confidences ``(N, E)``, the final column included (ignored).
        correct: Bool ``(N, E)`` from :func:`exit_correctness`.

    Returns:
        A scalar tensor; 0 when the network has no early exit.
    """
    b = confidences[:, :-1]
    if b.shape[1] == 0:
        return confidences.sum() * 0.0
    target = correct[:, :-1].to(b.dtype)
    n = float(b.shape[0])
    positives = target.sum(dim=0, keepdim=True)
    negatives = n - positives
    w_pos = torch.where(positives > 0, n / (2.0 * positives.clamp_min(1.0)), 0.0)
    w_neg = torch.where(negatives > 0, n / (2.0 * negatives.clamp_min(1.0)), 0.0)
    weights = target * w_pos + (1.0 - target) * w_neg
    return (weights * _binary_cross_entropy(b, target)).mean()


def _binary_cross_entropy(b: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    # Elementwise BCE on probabilities. Unlike F.binary_cross_entropy it lets NaN through
    # (so divergence is reported as such) and keeps finite gradients at b = 0 or 1.
    tiny = torch.finfo(b.dtype).tiny
    log_b = torch.log(b.clamp_min(tiny))
    log_not_b = torch.log((1.0 - b).clamp_min(tiny))
    return -(target * log_b + (1.0 - target) * log_not_b)


def expected_macs(exit_probs: torch.Tensor, exit_costs: torch.Tensor) -> torch.Tensor:
    """``E = mean_i sum_j p_ij * cost_j``, differentiable in ``p``."""
    return (exit_probs @ exit_costs.to(exit_probs.dtype)).mean()


def macs_loss(
    exit_probs: torch.Tensor, exit_costs: torch.Tensor, max_avg_macs: float
) -> torch.Tensor:
    """``L_macs = max(0, E - max_avg_macs) / |cost_final - max_avg_macs|``.

    ``E`` is :func:`expected_macs`. The term stays attached to the graph (the reference
    detaches it with ``.item()``, so there it has no effect). If ``cost_final`` equals the
    budget, the denominator is the budget itself.

    Args:
        exit_probs: Exit probabilities ``(N, E)``.
        exit_costs: MACs of a sample leaving at each exit ``(E,)``.
        max_avg_macs: The average-MAC budget, > 0.
    """
    costs = exit_costs.to(torch.float64)
    denominator = abs(float(costs[-1]) - max_avg_macs) or max_avg_macs
    scaled = (costs / denominator).to(exit_probs.dtype)
    excess = (exit_probs @ scaled).mean() - max_avg_macs / denominator
    return torch.clamp(excess, min=0.0)


def support_loss(
    confidences: torch.Tensor,
    targets: torch.Tensor,
    support_accuracy: torch.Tensor,
    *,
    reduction: str = "mean",
) -> torch.Tensor:
    """``L_sup = mean_{i, j<E} (b_j(x_i) - A[y_i, j])^2``, per sample and per early exit.

    Args:
        confidences: Exit confidences ``(N, E)``.
        targets: Class labels ``(N,)``.
        support_accuracy: ``A``: accuracy of each early exit on each class, measured on the
            support set, shape ``(classes, K)``; a ``(classes, E)`` matrix is accepted and its
            final column ignored.
        reduction: ``"mean"`` for the scalar loss or ``"none"`` for the ``(N, K)`` squared
            errors.
    """
    b = confidences[:, :-1]
    accuracy = support_accuracy.to(device=b.device, dtype=b.dtype)
    if accuracy.ndim != 2 or accuracy.shape[1] not in (b.shape[1], b.shape[1] + 1):
        raise ValueError(
            f"support_accuracy must have shape (classes, {b.shape[1]}) or "
            f"(classes, {b.shape[1] + 1}), got {tuple(accuracy.shape)}."
        )
    squared = (b - accuracy[targets, : b.shape[1]]) ** 2
    if reduction == "none":
        return squared
    if reduction != "mean":
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}.")
    if squared.numel() == 0:
        return confidences.sum() * 0.0
    return squared.mean()


class NachosLoss(nn.Module):
    """All NACHOS loss terms of one batch, returned separately and weighted in ``total``.

    ``L = w_alpha * L_cls + beta * L_conf + w_beta * L_macs + w_gamma * L_sup``. A term whose
    weight is 0 is not computed (returned as 0): the ablations of the paper. ``L_macs`` is 0
    without a budget, ``L_sup`` is 0 without a support accuracy matrix (the warm-up epochs).

    Args:
        w_alpha: Weight of ``L_cls``.
        beta: Weight of ``L_conf``.
        w_beta: Weight of ``L_macs``.
        w_gamma: Weight of ``L_sup``.
        exit_costs: MACs of a sample leaving at each exit (needed with ``max_avg_macs``).
        max_avg_macs: Average-MAC budget; ``None`` disables ``L_macs``.
        cls_weighting: How ``L_cls`` weights the exits (see :func:`classification_loss`).
    """

    def __init__(
        self,
        *,
        w_alpha: float = 1.0,
        beta: float = 1.0,
        w_beta: float = 1.0,
        w_gamma: float = 1.0,
        exit_costs: Sequence[float] | torch.Tensor | None = None,
        max_avg_macs: float | None = None,
        cls_weighting: str = "exit_probability",
    ) -> None:
        super().__init__()
        if cls_weighting not in CLS_WEIGHTINGS:
            raise ValueError(
                f"cls_weighting must be one of {CLS_WEIGHTINGS}, got {cls_weighting!r}."
            )
        self.cls_weighting = cls_weighting
        self.w_alpha = float(w_alpha)
        self.beta = float(beta)
        self.w_beta = float(w_beta)
        self.w_gamma = float(w_gamma)
        if max_avg_macs is not None:
            if exit_costs is None:
                raise ValueError("max_avg_macs needs exit_costs (MACs of each exit).")
            if not max_avg_macs > 0:
                raise ValueError(f"max_avg_macs must be > 0, got {max_avg_macs!r}.")
        self.max_avg_macs = None if max_avg_macs is None else float(max_avg_macs)
        costs = None
        if exit_costs is not None:
            costs = torch.as_tensor(exit_costs, dtype=torch.float64).flatten()
            if not torch.isfinite(costs).all() or (costs < 0).any():
                raise ValueError(f"exit_costs must be finite and >= 0, got {costs.tolist()}.")
        self.register_buffer("exit_costs", costs, persistent=False)

    def forward(
        self,
        output: EENNOutput,
        targets: torch.Tensor,
        *,
        support_accuracy: torch.Tensor | None = None,
    ) -> LossTerms:
        """Loss terms of one batch.

        Args:
            output: The all-exits output of the network.
            targets: Class labels ``(N,)``.
            support_accuracy: ``A`` of :func:`support_loss`; ``None`` skips ``L_sup``.

        Raises:
            ValueError: If ``exit_costs`` does not have one entry per exit.
        """
        confidences = output.confidences
        zero = confidences.new_zeros(())
        probs = exit_probabilities(confidences)
        cls = conf = macs = sup = zero
        total = zero
        if self.w_alpha > 0:
            cls = classification_loss(output.logits, targets, probs, weighting=self.cls_weighting)
            total = total + self.w_alpha * cls
        if self.beta > 0:
            conf = confidence_loss(confidences, exit_correctness(output.logits, targets))
            total = total + self.beta * conf
        if self.w_beta > 0 and self.max_avg_macs is not None:
            costs = self.exit_costs
            if costs.numel() != confidences.shape[1]:
                raise ValueError(
                    f"exit_costs has {costs.numel()} entries for {confidences.shape[1]} exits."
                )
            macs = macs_loss(probs, costs, self.max_avg_macs)
            total = total + self.w_beta * macs
        if self.w_gamma > 0 and support_accuracy is not None:
            sup = support_loss(confidences, targets, support_accuracy)
            total = total + self.w_gamma * sup
        return LossTerms(total, cls, conf, macs, sup)
