"""Stratified, seeded splits of index sets."""

from __future__ import annotations

import numpy as np


def stratified_split(
    indices: np.ndarray,
    labels: np.ndarray,
    *,
    held_out: float | int,
    seed: int,
    what: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``indices`` into (kept, held out), stratified by ``labels[indices]``.

    Args:
        indices: Positions to split.
        labels: Labels of all positions (indexed by ``indices``).
        held_out: Fraction (float in (0, 1)) or count (int) of positions held out.
        seed: Seed of the split; the same seed gives the same split.
        what: Name of the held-out part, for error messages.

    Returns:
        Both parts as sorted int64 arrays.

    Raises:
        ValueError: If a stratified split of that size is impossible.
    """
    from sklearn.model_selection import train_test_split

    try:
        kept, held = train_test_split(
            indices,
            test_size=held_out,
            stratify=labels[indices],
            random_state=seed,
            shuffle=True,
        )
    except ValueError as error:
        counts = np.bincount(labels[indices])
        raise ValueError(
            f"cannot make a stratified {what} split of size {held_out} from {len(indices)} "
            f"images with {np.count_nonzero(counts)} classes (smallest class: "
            f"{counts[counts > 0].min() if counts.any() else 0} images): {error}"
        ) from error
    return np.sort(kept).astype(np.int64), np.sort(held).astype(np.int64)


def stratified_subset(
    indices: np.ndarray, labels: np.ndarray, *, size: int, seed: int
) -> np.ndarray:
    """A stratified subset of ``size`` positions of ``indices``, sorted."""
    if size >= len(indices):
        return np.sort(indices).astype(np.int64)
    subset, _ = stratified_split(
        indices, labels, held_out=len(indices) - size, seed=seed, what="train_subset"
    )
    return subset
