"""One inference pass collecting every exit's output per sample, for array-only analysis."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from optuna_nachos.train._datasets import make_loader, model_to_device, resolve_device, to_device


@dataclass(frozen=True)
class ExitOutputs:
    """Per-sample outputs of every exit of an early-exit network on one split (CPU tensors).

    Computed once per split by :func:`collect_exit_outputs`; threshold calibration and
    evaluation then work on these arrays only.

    Attributes:
        confidences: Exit confidences ``b`` ``(N, E)``, float; the final column is 1.
        predictions: Predicted class of every exit ``(N, E)``, int64.
        labels: True classes ``(N,)``, int64.
    """

    confidences: torch.Tensor
    predictions: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        if self.confidences.ndim != 2 or self.predictions.shape != self.confidences.shape:
            raise ValueError(
                f"confidences and predictions must both be (N, exits), got "
                f"{tuple(self.confidences.shape)} and {tuple(self.predictions.shape)}."
            )
        if self.labels.shape != (self.confidences.shape[0],):
            raise ValueError(
                f"labels must have shape ({self.confidences.shape[0]},), "
                f"got {tuple(self.labels.shape)}."
            )

    @property
    def num_samples(self) -> int:
        """Number of samples ``N``."""
        return int(self.labels.shape[0])

    @property
    def num_exits(self) -> int:
        """Number of exits ``E``, the final one included."""
        return int(self.confidences.shape[1])

    @property
    def correct(self) -> torch.Tensor:
        """Whether each exit classifies each sample correctly, bool ``(N, E)``."""
        return self.predictions == self.labels[:, None]


def _training_flags(model: nn.Module) -> list[tuple[nn.Module, bool]]:
    return [(module, module.training) for module in model.modules()]


def _restore_flags(flags: list[tuple[nn.Module, bool]]) -> None:
    for module, training in flags:
        module.training = training


@torch.no_grad()
def collect_exit_outputs(
    model: nn.Module,
    dataset: Any,
    *,
    batch_size: int = 256,
    device: str | torch.device = "auto",
    num_workers: int = 0,
) -> ExitOutputs:
    """Run every exit on every sample of ``dataset`` once, in eval mode.

    The model's train/eval state of every module is restored afterwards.

    Args:
        model: An :class:`~optuna_nachos.models.EarlyExitNetwork` (or any module whose forward
            returns an ``EENNOutput``).
        dataset: A torch dataset of ``(image, label)`` items, or a DataLoader.
        batch_size: Inference batch size.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...; the model is moved there.
        num_workers: DataLoader workers.

    Returns:
        The per-sample confidences, predictions and labels, on the CPU.
    """
    torch_device = resolve_device(device)
    model_to_device(model, torch_device)
    if isinstance(dataset, torch.utils.data.DataLoader):
        loader = dataset
    else:
        loader = make_loader(
            dataset,
            batch_size=batch_size,
            shuffle=False,
            generator=None,
            num_workers=num_workers,
            device=torch_device,
        )
    flags = _training_flags(model)
    model.eval()
    confidences, predictions, labels = [], [], []
    try:
        for images, targets in loader:
            output = model(to_device(images, torch_device))
            confidences.append(output.confidences.float().cpu())
            predictions.append(torch.stack([z.argmax(dim=1) for z in output.logits], 1).cpu())
            labels.append(torch.as_tensor(targets).reshape(-1).to(torch.int64))
    finally:
        _restore_flags(flags)
    if not labels:
        raise ValueError("the dataset is empty: nothing to collect exit outputs from.")
    return ExitOutputs(torch.cat(confidences), torch.cat(predictions), torch.cat(labels))
