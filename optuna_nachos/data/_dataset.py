"""An in-memory image dataset over uint8 tensors, normalized and augmented per batch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from optuna_nachos.data._transforms import augment_batch


class TensorImageDataset(Dataset[tuple[torch.Tensor, int]]):
    """Images held in memory as uint8 tensors, returned normalized as float tensors.

    Items are ``(image, label)`` with ``image`` a float tensor (C, H, W) normalized with
    ``mean``/``std`` and ``label`` an ``int``. Augmentation, when enabled, is a random crop with
    ``padding`` pixels of zero padding and/or a random horizontal flip, drawn independently for
    every item from torch's global random generator (seeded per worker by the DataLoader).

    The dataset also implements ``__getitems__``, so a DataLoader fetches, augments and
    normalizes a whole batch with a few tensor operations instead of one call per image.

    Args:
        images: Base uint8 images (N, C, H, W); shared, never modified.
        targets: Base int64 labels (N,).
        mean: Per-channel mean of the pixel values scaled to [0, 1].
        std: Per-channel standard deviation of the pixel values scaled to [0, 1].
        indices: Positions of this dataset's items in the base tensors (all when ``None``).
        padding: Zero padding of the random crop, in pixels; 0 disables the crop.
        horizontal_flip: Whether to flip horizontally with probability 0.5.
    """

    def __init__(
        self,
        images: torch.Tensor,
        targets: torch.Tensor,
        *,
        mean: Sequence[float],
        std: Sequence[float],
        indices: torch.Tensor | np.ndarray | Sequence[int] | None = None,
        padding: int = 0,
        horizontal_flip: bool = False,
    ) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(
                f"images must be a uint8 tensor (N, C, H, W), got {images.dtype} "
                f"{tuple(images.shape)}."
            )
        if images.device.type != "cpu" or targets.device.type != "cpu":
            raise ValueError("images and targets must be CPU tensors.")
        if targets.ndim != 1 or len(targets) != len(images):
            raise ValueError(
                f"targets must have shape ({len(images)},), got {tuple(targets.shape)}."
            )
        channels = images.shape[1]
        if len(mean) != channels or len(std) != channels:
            raise ValueError(f"mean and std need {channels} values, got {mean} and {std}.")
        if padding < 0:
            raise ValueError(f"padding must be >= 0, got {padding}.")
        self._images = images
        self._base_targets = targets.to(torch.int64)
        if indices is None:
            self._indices = torch.arange(len(images))
        else:
            self._indices = torch.as_tensor(np.asarray(indices), dtype=torch.int64).reshape(-1)
            if len(self._indices) and (
                int(self._indices.min()) < 0 or int(self._indices.max()) >= len(images)
            ):
                raise IndexError("indices out of range of the base images.")
        self._mean = tuple(float(m) for m in mean)
        self._std = tuple(float(s) for s in std)
        std_t = torch.tensor(self._std).view(-1, 1, 1)
        self._scale = 1.0 / (255.0 * std_t)
        self._shift = torch.tensor(self._mean).view(-1, 1, 1) / std_t
        self._padding = int(padding)
        self._flip = bool(horizontal_flip)
        self._targets = self._base_targets[self._indices]
        self._scale_np = self._scale.numpy().astype(np.float32)  # copies, not views
        self._shift_np = self._shift.numpy().astype(np.float32)

    @property
    def targets(self) -> torch.Tensor:
        """Labels of this dataset's items, int64 (len(self),), without touching the images."""
        return self._targets

    @property
    def labels(self) -> torch.Tensor:
        """Alias of :attr:`targets`."""
        return self._targets

    @property
    def indices(self) -> torch.Tensor:
        """Positions of this dataset's items in the shared base tensors."""
        return self._indices

    @property
    def images(self) -> torch.Tensor:
        """This dataset's uint8 images (len(self), C, H, W), neither normalized nor augmented.

        A gathered copy: use it for batched evaluation, not per item.
        """
        return self._images[self._indices]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """Shape (C, H, W) of one image."""
        channels, height, width = self._images.shape[1:]
        return int(channels), int(height), int(width)

    @property
    def mean(self) -> tuple[float, ...]:
        """Per-channel normalization mean (pixel values in [0, 1])."""
        return self._mean

    @property
    def std(self) -> tuple[float, ...]:
        """Per-channel normalization standard deviation (pixel values in [0, 1])."""
        return self._std

    @property
    def padding(self) -> int:
        """Zero padding of the random crop (0: no crop)."""
        return self._padding

    @property
    def horizontal_flip(self) -> bool:
        """Whether items are flipped at random."""
        return self._flip

    @property
    def augmented(self) -> bool:
        """Whether items are augmented at random."""
        return self._padding > 0 or self._flip

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """Normalize uint8 images (..., C, H, W) the way items are normalized."""
        scale = self._scale.to(images.device)
        shift = self._shift.to(images.device)
        return images.float().mul_(scale).sub_(shift)

    def subset(self, positions: torch.Tensor | np.ndarray | Sequence[int]) -> TensorImageDataset:
        """A dataset of the items at ``positions`` of this one, same storage and augmentation."""
        positions_t = torch.as_tensor(np.asarray(positions), dtype=torch.int64).reshape(-1)
        return self._derive(self._indices[positions_t], self._padding, self._flip)

    def without_augmentation(self) -> TensorImageDataset:
        """The same items, never augmented (e.g. to evaluate on training data)."""
        return self._derive(self._indices, 0, False)

    def _derive(self, indices: torch.Tensor, padding: int, flip: bool) -> TensorImageDataset:
        return TensorImageDataset(
            self._images,
            self._base_targets,
            mean=self._mean,
            std=self._std,
            indices=indices,
            padding=padding,
            horizontal_flip=flip,
        )

    def __len__(self) -> int:
        return len(self._indices)

    def _fetch(self, positions: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        # numpy on purpose: single-threaded copies, no intra-op synchronization (see
        # augment_batch). The views are taken anew each time: sharing a tensor with worker
        # processes moves its storage, which would leave a stored view dangling.
        base = self._indices.numpy()[positions]
        images = torch.from_numpy(self._images.numpy()[base])
        if self.augmented:
            images = augment_batch(images, padding=self._padding, flip=self._flip)
        pixels = images.numpy().astype(np.float32)
        pixels *= self._scale_np
        pixels -= self._shift_np
        return torch.from_numpy(pixels), torch.from_numpy(self._base_targets.numpy()[base])

    def __getitem__(self, index: Any) -> tuple[torch.Tensor, int]:
        position = int(index)
        if position < 0:
            position += len(self)
        if not 0 <= position < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items.")
        images, labels = self._fetch(np.array([position]))
        return images[0], int(labels[0])

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[torch.Tensor, int]]:
        positions = np.asarray(indices, dtype=np.int64).reshape(-1)
        if len(positions) and (int(positions.min()) < 0 or int(positions.max()) >= len(self)):
            raise IndexError(f"indices out of range for {len(self)} items.")
        images, labels = self._fetch(positions)
        return list(zip(images.unbind(0), labels.tolist(), strict=True))

    def __repr__(self) -> str:
        channels, height, width = self.image_shape
        return (
            f"{type(self).__name__}(items={len(self)}, image_shape=({channels}, {height}, "
            f"{width}), padding={self._padding}, horizontal_flip={self._flip})"
        )
