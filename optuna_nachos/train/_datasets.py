"""Duck-typed helpers over torch datasets (labels, subsets, loaders) for the training layer."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from optuna_nachos._logging import get_logger

_logger = get_logger(__name__)


def train_split(data: Any) -> Dataset:
    """The training dataset of a DatasetSplits-like object, or ``data`` itself."""
    train = getattr(data, "train", None)
    if train is not None:
        return train
    if isinstance(data, Dataset) or hasattr(data, "__getitem__"):
        return data
    raise TypeError(
        f"data must be a DatasetSplits-like object with a .train dataset or a torch dataset, "
        f"got {type(data).__name__}."
    )


def dataset_labels(dataset: Any) -> torch.Tensor:
    """Labels of every item of ``dataset`` as an int64 tensor, cheaply when possible.

    Uses ``.targets`` or ``.labels`` when the dataset has them, the label tensor of a
    ``TensorDataset``, and the indices of a ``Subset``; otherwise reads every item (slow).
    """
    if isinstance(dataset, Subset):
        indices = torch.as_tensor(list(dataset.indices), dtype=torch.int64)
        return dataset_labels(dataset.dataset)[indices]
    if isinstance(dataset, TensorDataset) and len(dataset.tensors) >= 2:
        return torch.as_tensor(dataset.tensors[1]).reshape(-1).to(torch.int64)
    for name in ("targets", "labels"):
        values = getattr(dataset, name, None)
        if values is not None and not callable(values):
            labels = torch.as_tensor(values).reshape(-1).to(torch.int64)
            if len(labels) == len(dataset):
                return labels
    _logger.warning(
        "%s exposes no .targets: reading every item to get its labels (slow).",
        type(dataset).__name__,
    )
    return torch.tensor([int(dataset[i][1]) for i in range(len(dataset))], dtype=torch.int64)


def subset(dataset: Any, positions: torch.Tensor) -> Dataset:
    """The items of ``dataset`` at ``positions`` (the dataset's own ``subset`` when it has one)."""
    own = getattr(dataset, "subset", None)
    if callable(own):
        return own(positions)
    return Subset(dataset, positions.tolist())


def without_augmentation(dataset: Any) -> Dataset:
    """The same items without random augmentation, when the dataset supports it."""
    own = getattr(dataset, "without_augmentation", None)
    return own() if callable(own) else dataset


def make_loader(
    dataset: Dataset,
    *,
    batch_size: int,
    shuffle: bool,
    generator: torch.Generator | None,
    num_workers: int,
    device: torch.device,
) -> DataLoader:
    """A DataLoader; shuffling and worker seeds follow ``generator`` for reproducibility."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
        drop_last=False,
    )


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; other values as torch devices.

    Raises:
        ValueError: If ``device`` names no torch device, or a CUDA one where no CUDA GPU is
            available.
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda[:N]'.") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {device!r} was asked for but no CUDA GPU is available; use 'cpu'."
        )
    return resolved


def to_device(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Move an image batch to ``device`` in channels-last layout.

    Channels-last is about twice as fast for the depthwise convolutions of MobileNetV3 on the
    CPU, and the preferred layout of convolutions on CUDA; the results are the same.
    """
    if images.dim() == 4:
        return images.to(device, memory_format=torch.channels_last, non_blocking=True)
    return images.to(device, non_blocking=True)


def model_to_device(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """Move a model to ``device`` with its 4-d weights in channels-last layout."""
    return model.to(device, memory_format=torch.channels_last)
