"""The cumulative exit rule of NACHOS (DESIGN 2.3), on tensors of exit confidences.

``confidences`` has shape ``(samples, exits)``; its last column belongs to the final exit and
is 1. A threshold of 1 or more disables its exit.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def survival(confidences: torch.Tensor) -> torch.Tensor:
    """``prod_{k<=j} (1 - b_k)``: the probability of passing every exit up to ``j``."""
    return torch.cumprod(1.0 - confidences, dim=1)


def exit_probabilities(confidences: torch.Tensor) -> torch.Tensor:
    """``p_j = b_j * prod_{k<j} (1 - b_k)``; rows sum to 1 when the final ``b`` is 1."""
    passed = torch.cat([torch.ones_like(confidences[:, :1]), survival(confidences)[:, :-1]], 1)
    return confidences * passed


def cumulative_confidence(confidences: torch.Tensor) -> torch.Tensor:
    """``c_j = 1 - prod_{k<=j} (1 - b_k)``, the quantity compared with the thresholds."""
    return 1.0 - survival(confidences)


def as_threshold_tensor(
    thresholds: Sequence[float] | torch.Tensor, num_early_exits: int
) -> torch.Tensor:
    """Validate per-early-exit thresholds and return them as a float64 tensor.

    Raises:
        ValueError: If the count does not match or a value is negative or not finite.
    """
    values = torch.as_tensor(thresholds, dtype=torch.float64).flatten()
    if values.numel() != num_early_exits:
        raise ValueError(
            f"expected {num_early_exits} thresholds (one per early exit, the final exit takes "
            f"none), got {values.numel()}."
        )
    if not torch.isfinite(values).all() or (values < 0).any():
        raise ValueError(f"thresholds must be finite and >= 0, got {values.tolist()}.")
    return values


def select_exits(
    confidences: torch.Tensor, thresholds: Sequence[float] | torch.Tensor
) -> torch.Tensor:
    """Index of the exit every sample leaves at: the first early exit ``j`` with
    ``c_j >= thresholds[j]`` (thresholds of 1 or more never fire), else the final exit."""
    num_exits = confidences.shape[1]
    eps = as_threshold_tensor(thresholds, num_exits - 1)
    cumulative = cumulative_confidence(confidences[:, :-1])
    eps = eps.to(cumulative.device)
    fires = (cumulative >= eps.to(cumulative.dtype)) & (eps < 1.0)
    final = torch.ones(fires.shape[0], 1, dtype=fires.dtype, device=fires.device)
    fires = torch.cat([fires, final], dim=1)
    return fires.to(torch.int8).argmax(dim=1)
