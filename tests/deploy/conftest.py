"""Helpers shared by the deployment tests."""

from __future__ import annotations

import torch

from optuna_nachos.models import cumulative_confidence


def spread_thresholds(model, x, quantiles=(0.7, 0.6, 0.5)) -> list[float]:
    """Thresholds midway between neighbouring cumulative confidences at ``quantiles`` (no
    ties), so that the samples spread over the exits and none sits on a threshold."""
    with torch.no_grad():
        cumulative = cumulative_confidence(model(x).confidences)
    out = []
    for j, q in enumerate(quantiles):
        values = torch.sort(cumulative[:, j]).values
        i = min(max(int(q * len(values)), 1), len(values) - 1)
        out.append(float((values[i - 1] + values[i]) / 2))
    return out


def spread_head_confidences(model):
    """``model`` with the last linear layer of each untrained exit head scaled up, so that the
    confidences spread over (0, 1) and thresholds can split the samples."""
    with torch.no_grad():
        for head in model.exit_heads:
            last = [m for m in head.modules() if isinstance(m, torch.nn.Linear)][-1]
            last.weight.mul_(40.0)
            last.bias.normal_(0.0, 1.0)
    return model
