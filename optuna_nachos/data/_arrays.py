"""The decoded form of a dataset: uint8 image tensors and integer labels."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


def as_uint8_images(images: Any, *, what: str) -> torch.Tensor:
    """``images`` as a contiguous uint8 tensor of shape (N, C, H, W).

    Accepts numpy arrays or tensors of shape (N, H, W) (one channel added) or (N, C, H, W).
    """
    if isinstance(images, np.ndarray):
        images = np.ascontiguousarray(images)
        if not images.flags.writeable:
            images = images.copy()
        images = torch.from_numpy(images)
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{what} must be a numpy array or a tensor, got {type(images).__name__}.")
    if images.dtype != torch.uint8:
        raise ValueError(
            f"{what} must hold uint8 pixel values 0..255, got dtype {images.dtype}; "
            "convert with (x * 255).round().clip(0, 255).astype('uint8') first."
        )
    if images.ndim == 3:
        images = images.unsqueeze(1)
    if images.ndim != 4:
        raise ValueError(
            f"{what} must have shape (N, C, H, W) or (N, H, W), got {tuple(images.shape)}."
        )
    if images.shape[1] not in (1, 3) and images.shape[-1] in (1, 3):
        raise ValueError(
            f"{what} looks channels-last {tuple(images.shape)}; the layout is (N, C, H, W)."
        )
    return images.contiguous()


def as_labels(labels: Any, *, what: str, count: int, num_classes: int) -> torch.Tensor:
    """``labels`` as an int64 tensor of length ``count`` with values in ``[0, num_classes)``."""
    if isinstance(labels, np.ndarray):
        labels = torch.from_numpy(np.array(labels, copy=True))
    if not isinstance(labels, torch.Tensor):
        labels = torch.as_tensor(labels)
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise ValueError(f"{what} must hold integers, got dtype {labels.dtype}.")
    labels = labels.reshape(-1).to(torch.int64).contiguous()
    if labels.numel() != count:
        raise ValueError(f"{what} has {labels.numel()} labels for {count} images.")
    if count and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(
            f"{what} must lie in [0, {num_classes}), got range "
            f"[{int(labels.min())}, {int(labels.max())}]."
        )
    return labels


@dataclass(frozen=True)
class DatasetArrays:
    """A decoded dataset, as a registered loader returns it.

    Images may have any size; :func:`~optuna_nachos.data.load_dataset` resizes them to the
    requested resolution once. Numpy arrays are accepted and converted to tensors.

    Args:
        train_images: uint8 images of the training data, shape (N, C, H, W) or (N, H, W).
        train_labels: Integer class of each training image.
        test_images: uint8 images of the official test split, or ``None`` when the dataset has
            none (then a fixed stratified 20 % of the training data becomes the test split).
        test_labels: Integer class of each test image, ``None`` with ``test_images``.
        class_names: Name of each class, in label order.
        mean: Per-channel mean of the pixel values scaled to [0, 1], for normalization.
        std: Per-channel standard deviation of the pixel values scaled to [0, 1].
        random_crop: Whether training images get a random crop with ``resolution // 8`` pixels
            of zero padding.
        horizontal_flip: Whether training images get a random horizontal flip.
    """

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor | None
    test_labels: torch.Tensor | None
    class_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    random_crop: bool = False
    horizontal_flip: bool = False

    def __post_init__(self) -> None:
        names = tuple(str(n) for n in self.class_names)
        if not names:
            raise ValueError("class_names must not be empty.")
        object.__setattr__(self, "class_names", names)
        train = as_uint8_images(self.train_images, what="train_images")
        object.__setattr__(self, "train_images", train)
        object.__setattr__(
            self,
            "train_labels",
            as_labels(
                self.train_labels, what="train_labels", count=len(train), num_classes=len(names)
            ),
        )
        if (self.test_images is None) != (self.test_labels is None):
            raise ValueError("test_images and test_labels must both be given or both be None.")
        if self.test_images is not None:
            test = as_uint8_images(self.test_images, what="test_images")
            if test.shape[1:] != train.shape[1:]:
                raise ValueError(
                    f"test images have shape {tuple(test.shape[1:])}, training images "
                    f"{tuple(train.shape[1:])}; they must match."
                )
            object.__setattr__(self, "test_images", test)
            object.__setattr__(
                self,
                "test_labels",
                as_labels(
                    self.test_labels, what="test_labels", count=len(test), num_classes=len(names)
                ),
            )
        channels = train.shape[1]
        object.__setattr__(self, "mean", _per_channel(self.mean, "mean", channels))
        object.__setattr__(self, "std", _per_channel(self.std, "std", channels))
        if any(s <= 0 for s in self.std):
            raise ValueError(f"std must be positive, got {self.std}.")

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    @property
    def in_channels(self) -> int:
        """Number of image channels."""
        return int(self.train_images.shape[1])


def _per_channel(values: float | Sequence[float], what: str, channels: int) -> tuple[float, ...]:
    if isinstance(values, (int, float)):
        return (float(values),) * channels
    out = tuple(float(v) for v in values)
    if len(out) == 1:
        return out * channels
    if len(out) != channels:
        raise ValueError(f"{what} has {len(out)} values for {channels} channels.")
    return out
