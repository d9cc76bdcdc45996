"""The input preprocessing an exported network expects, applied to raw images."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from optuna_nachos.data import resize_images, resize_shorter_center_crop

RESIZE_MODES = ("stretch", "center_crop")
"""How raw images are brought to the network's resolution: resized to the square directly
(as the built-in datasets do), or resized on their shorter side and center-cropped (as image
folders are)."""

_LUMA = (0.299, 0.587, 0.114)

_RAW_TOLERANCE = 1e-3
"""How far float pixels may lie outside [0, 1] (rounding) and still count as raw."""


@dataclass(frozen=True)
class Preprocessing:
    """What a raw image goes through before the network sees it.

    Raw images are uint8 (0..255) or float (0..1) tensors or numpy arrays, ``(H, W)``,
    ``(C, H, W)`` or ``(N, C, H, W)`` (channels last accepted), or PIL images (or a list of
    any of these). They are converted to ``channels`` channels (grey repeated to RGB, RGB to
    grey by luminance, alpha dropped), resized to ``resolution`` (antialiased bilinear,
    ``resize`` mode), scaled to ``[0, 1]`` and normalized per channel: ``(x - mean) / std``.
    uint8 images follow exactly the data layer's path (resize in uint8, then normalize in
    float32), so an exported network given a dataset's raw images reproduces its accuracy on
    that dataset. Float images outside [0, 1] are refused: they are not raw pixels but, most
    likely, a batch that is normalized already.

    Attributes:
        mean: Per-channel mean of the pixel values in [0, 1].
        std: Per-channel standard deviation of the pixel values in [0, 1].
        resolution: Side of the square input, in pixels.
        channels: Channels the network reads.
        resize: ``"stretch"`` or ``"center_crop"`` (see :data:`RESIZE_MODES`).
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    resolution: int
    channels: int
    resize: str = "stretch"

    def __post_init__(self) -> None:
        mean = tuple(float(m) for m in self.mean)
        std = tuple(float(s) for s in self.std)
        if isinstance(self.channels, bool) or not isinstance(self.channels, int):
            raise ValueError(f"channels must be an integer, got {self.channels!r}.")
        if len(mean) != self.channels or len(std) != self.channels:
            raise ValueError(
                f"mean and std need one value per channel ({self.channels}), got {mean} and {std}."
            )
        if any(s <= 0 for s in std):
            raise ValueError(f"std must be positive, got {std}.")
        if isinstance(self.resolution, bool) or not isinstance(self.resolution, int):
            raise ValueError(f"resolution must be an integer, got {self.resolution!r}.")
        if self.resolution < 1:
            raise ValueError(f"resolution must be positive, got {self.resolution}.")
        if self.resize not in RESIZE_MODES:
            raise ValueError(f"resize must be one of {RESIZE_MODES}, got {self.resize!r}.")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)

    @classmethod
    def from_dataset(cls, data: Any, *, resize: str = "stretch") -> Preprocessing:
        """The preprocessing of loaded splits (:class:`~optuna_nachos.data.DatasetSplits`):
        their ``mean``, ``std``, ``resolution`` and ``in_channels``."""
        missing = [n for n in ("mean", "std", "resolution", "in_channels") if not hasattr(data, n)]
        if missing:
            raise TypeError(
                f"from_dataset needs mean, std, resolution and in_channels (as DatasetSplits "
                f"has); {type(data).__name__} lacks {missing}. Build Preprocessing(mean=..., "
                "std=..., resolution=..., channels=...) instead."
            )
        return cls(
            mean=tuple(data.mean),
            std=tuple(data.std),
            resolution=int(data.resolution),
            channels=int(data.in_channels),
            resize=resize,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serializable dictionary."""
        return {
            "mean": list(self.mean),
            "std": list(self.std),
            "resolution": self.resolution,
            "channels": self.channels,
            "resize": self.resize,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Preprocessing:
        """Rebuild from :meth:`to_dict` output."""
        known = {"mean", "std", "resolution", "channels", "resize"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(
                f"unknown preprocessing keys {sorted(unknown)}; known: {sorted(known)}."
            )
        return cls(**dict(data))

    # ------------------------------------------------------------------------ apply
    def _to_tensor(self, image: Any) -> torch.Tensor:
        """One image as a (C, H, W) or batch as (N, C, H, W) tensor, channels adapted."""
        if not isinstance(image, torch.Tensor):
            if hasattr(image, "convert") and hasattr(image, "mode"):  # a PIL image
                mode = "L" if self.channels == 1 else "RGB"
                array = np.asarray(image.convert(mode))
                tensor = torch.from_numpy(array.copy())
                image = tensor[None] if tensor.dim() == 2 else tensor.permute(2, 0, 1)
            elif isinstance(image, np.ndarray):
                image = torch.from_numpy(image.copy())
            else:
                raise TypeError(
                    "expected a tensor, a numpy array or a PIL image (or a list of them), got "
                    f"{type(image).__name__}."
                )
        if image.dim() == 2:
            image = image[None]
        if image.dim() not in (3, 4):
            raise ValueError(
                "expected images of shape (H, W), (C, H, W) or (N, C, H, W), got "
                f"{tuple(image.shape)}."
            )
        channel_dim = image.dim() - 3
        channels = image.shape[channel_dim]
        if channels not in (1, 3, 4) and image.shape[-1] in (1, 3, 4):
            image = image.movedim(-1, channel_dim)  # channels last
            channels = image.shape[channel_dim]
        if channels == 4:
            image = image.narrow(channel_dim, 0, 3)
            channels = 3
        if channels == self.channels:
            return image
        if channels == 1:
            return image.repeat_interleave(self.channels, dim=channel_dim)
        if channels == 3 and self.channels == 1:
            weights = torch.tensor(_LUMA, dtype=torch.float64).view(3, 1, 1)
            grey = (image.to(torch.float64) * weights).sum(dim=channel_dim, keepdim=True)
            if image.dtype == torch.uint8:
                return grey.round().clamp(0, 255).to(torch.uint8)
            return grey.to(image.dtype)
        raise ValueError(
            f"cannot convert images with {channels} channels to the {self.channels} channels "
            "the network reads."
        )

    def _resize_uint8(self, batch: torch.Tensor) -> torch.Tensor:
        if self.resize == "stretch":
            return resize_images(batch, self.resolution)
        return torch.stack([resize_shorter_center_crop(image, self.resolution) for image in batch])

    def _resize_float(self, batch: torch.Tensor) -> torch.Tensor:
        size = self.resolution
        if batch.shape[-2:] == (size, size):
            return batch
        if self.resize == "center_crop":
            height, width = batch.shape[-2:]
            scale = size / min(height, width)
            new = (max(size, round(height * scale)), max(size, round(width * scale)))
            batch = F.interpolate(
                batch, size=new, mode="bilinear", antialias=True, align_corners=False
            )
            top, left = (new[0] - size) // 2, (new[1] - size) // 2
            return batch[..., top : top + size, left : left + size]
        return F.interpolate(
            batch, size=(size, size), mode="bilinear", antialias=True, align_corners=False
        )

    def _normalize(self, batch: torch.Tensor, *, uint8: bool) -> torch.Tensor:
        std = torch.tensor(self.std).view(-1, 1, 1)
        mean = torch.tensor(self.mean).view(-1, 1, 1)
        if uint8:  # the data layer's float32 path, operation for operation
            scale = (1.0 / (255.0 * std)).numpy()
            shift = (mean / std).numpy()
            pixels = batch.numpy().astype(np.float32)
            pixels *= scale
            pixels -= shift
            return torch.from_numpy(pixels)
        return (batch.to(torch.float32) - mean) / std

    def __call__(self, images: Any) -> torch.Tensor:
        """Preprocess raw images into a normalized float batch ``(N, channels, res, res)``.

        Args:
            images: A uint8 (0..255) or float (0..1) tensor or numpy array (``(H, W)``,
                ``(C, H, W)`` or ``(N, C, H, W)``, channels last accepted), a PIL image, or a
                list of these.

        Returns:
            The batch the network expects, on the CPU.

        Raises:
            ValueError: On float images outside [0, 1] (a normalized batch), a rank other
                than 2 to 4, or channels that cannot be converted.
            TypeError: On another type or dtype.
        """
        if isinstance(images, (list, tuple)):
            if not images:
                raise ValueError("no images given.")
            parts = [self(image) for image in images]
            return torch.cat(parts, dim=0)
        batch = self._to_tensor(images)
        if batch.dim() == 3:
            batch = batch[None]
        if batch.dtype == torch.uint8:
            return self._normalize(self._resize_uint8(batch.contiguous()), uint8=True)
        if not batch.is_floating_point():
            raise TypeError(f"images must be uint8 (0..255) or float (0..1), got {batch.dtype}.")
        _check_raw_range(batch)
        return self._normalize(self._resize_float(batch.to(torch.float32)), uint8=False)


def _check_raw_range(batch: torch.Tensor) -> None:
    """Refuse float images that cannot be raw pixels: values outside [0, 1]."""
    if batch.numel() == 0:
        return
    low, high = float(batch.min()), float(batch.max())
    if low < -_RAW_TOLERANCE or high > 1.0 + _RAW_TOLERANCE:
        raise ValueError(
            f"raw images are uint8 (0..255) or floats in [0, 1], got floats from {low:.4g} to "
            f"{high:.4g}: this looks like a batch that is normalized already. Pass it with "
            "predict(x, preprocess=False), or pass the raw images."
        )


def as_preprocessing(
    value: Preprocessing | Mapping[str, Any], *, channels: int, resolution: int | None
) -> Preprocessing:
    """The preprocessing an export records, checked against the channels of the network it
    feeds.

    Args:
        value: A :class:`Preprocessing` or its dictionary; a dictionary may leave out
            ``channels`` and ``resolution``, which then come from the network.
        channels: Channels the network reads.
        resolution: Side of the network's square input, when it is known.

    Raises:
        ValueError: On missing or unknown keys, invalid values, or channels other than the
            network's.
    """
    if not isinstance(value, Preprocessing):
        if not isinstance(value, Mapping):
            raise TypeError(
                f"preprocessing must be a Preprocessing or its dictionary, got "
                f"{type(value).__name__}."
            )
        needed = ("mean", "std") if resolution is not None else ("mean", "std", "resolution")
        missing = [name for name in needed if name not in value]
        if missing:
            raise ValueError(
                f"the preprocessing needs {', '.join(needed)}, missing {missing}; "
                "Preprocessing.from_dataset(splits) gives those of loaded splits."
            )
        data = dict(value)
        data.setdefault("channels", channels)
        if resolution is not None:
            data.setdefault("resolution", resolution)
        value = Preprocessing.from_dict(data)
    if value.channels != channels:
        raise ValueError(
            f"the preprocessing gives {value.channels} channels but the network reads {channels}."
        )
    return value
