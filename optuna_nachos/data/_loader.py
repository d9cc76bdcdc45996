"""DataLoaders with a seeded order."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset


def make_loader(
    dataset: Dataset[Any],
    *,
    batch_size: int,
    shuffle: bool,
    seed: int,
    num_workers: int = 0,
    drop_last: bool = False,
) -> DataLoader[Any]:
    """A DataLoader whose order is fixed by ``seed``.

    The shuffling order comes from a ``torch.Generator`` seeded with ``seed``: two loaders with
    the same seed yield the same batches in the same order, epoch after epoch. With
    ``num_workers > 0`` the workers' random augmentation is seeded from that generator too;
    with ``num_workers=0`` augmentation draws from torch's global generator, so call
    ``torch.manual_seed`` for fully reproducible augmented batches.

    Args:
        dataset: A map-style dataset, e.g. a split of :func:`load_dataset`.
        batch_size: Items per batch.
        shuffle: Reshuffle at every epoch.
        seed: Seed of the order (and of the workers' random streams).
        num_workers: Worker processes (0: load in the main process).
        drop_last: Drop the last incomplete batch.

    Returns:
        The DataLoader.
    """
    if isinstance(batch_size, bool) or int(batch_size) < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    if int(num_workers) < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers!r}.")
    generator = torch.Generator()
    generator.manual_seed(int(seed))
    return DataLoader(
        dataset,
        batch_size=int(batch_size),
        shuffle=shuffle,
        num_workers=int(num_workers),
        drop_last=drop_last,
        generator=generator,
        persistent_workers=int(num_workers) > 0,
    )
