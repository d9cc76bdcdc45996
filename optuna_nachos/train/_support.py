"""The class-balanced support set and the per-class accuracy of every exit (``A`` of L_sup)."""

from __future__ import annotations

import torch

from optuna_nachos.train._inference import ExitOutputs


def balanced_support_indices(
    labels: torch.Tensor,
    *,
    fraction: float,
    num_classes: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Positions of a random class-balanced subset holding about ``fraction`` of the data.

    Every class gets the same number of samples, ``round(fraction * N / num_classes)`` (at
    least 1), capped by the size of the smallest class present. Vectorized: one permutation
    and one stable sort, no per-sample Python work.

    Args:
        labels: Class of every sample ``(N,)``.
        fraction: Share of the data to draw, in ``(0, 1)``.
        num_classes: Number of classes.
        generator: Random generator (for reproducible draws).

    Returns:
        Sorted int64 positions into ``labels``.
    """
    labels = labels.reshape(-1).to(torch.int64).cpu()
    n = labels.numel()
    if n == 0:
        return torch.empty(0, dtype=torch.int64)
    counts = torch.bincount(labels, minlength=num_classes)
    present = counts[counts > 0]
    per_class = max(1, round(fraction * n / num_classes))
    per_class = min(per_class, int(present.min()))
    permutation = torch.randperm(n, generator=generator)
    shuffled = labels[permutation]
    order = torch.argsort(shuffled, stable=True)
    sorted_labels = shuffled[order]
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(n) - starts[sorted_labels]
    chosen = permutation[order[rank < per_class]]
    return torch.sort(chosen).values


def class_exit_accuracy(outputs: ExitOutputs, *, num_classes: int) -> torch.Tensor:
    """``A[c, j]``: accuracy of exit ``j`` on the samples of class ``c``, shape ``(classes, E)``.

    A class with no sample gets each exit's accuracy over all samples.
    """
    correct = outputs.correct.to(torch.float32)
    labels = outputs.labels
    sums = torch.zeros(num_classes, outputs.num_exits).index_add_(0, labels, correct)
    counts = torch.bincount(labels, minlength=num_classes).to(torch.float32)
    overall = correct.mean(dim=0, keepdim=True).expand(num_classes, -1)
    return torch.where(counts[:, None] > 0, sums / counts.clamp_min(1.0)[:, None], overall)
