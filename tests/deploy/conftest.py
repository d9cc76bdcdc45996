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
