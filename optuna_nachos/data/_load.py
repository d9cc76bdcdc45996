"""``load_dataset``: decode once, resize once, split reproducibly."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import tempfile
import threading
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import torch

from optuna_nachos.data._arrays import DatasetArrays
from optuna_nachos.data._dataset import TensorImageDataset
from optuna_nachos.data._paths import logger, resolve_root
from optuna_nachos.data._registry import get_dataset_loader, normalize_name
from optuna_nachos.data._splits import stratified_split, stratified_subset
from optuna_nachos.data._transforms import resize_images

HOLDOUT_TEST_FRACTION = 0.2
"""Fraction of the data held out as test split for datasets without an official one."""

HOLDOUT_TEST_SEED = 0
"""Fixed seed of that test split: it does not change with the ``seed`` of a run."""

_MEMORY_CACHE_SIZE = 4
_DISK_CACHE_FORMAT = 1

_cache: OrderedDict[tuple[object, ...], DatasetArrays] = OrderedDict()
_cache_lock = threading.Lock()


@dataclass(frozen=True, eq=False)
class DatasetSplits:
    """The train, validation and test splits of a dataset, ready for training.

    Items of every split are ``(image, label)``: ``image`` a normalized float tensor
    (``in_channels``, ``resolution``, ``resolution``), ``label`` an ``int``. Only ``train``
    is augmented. Each split's labels are available as ``split.targets`` (int64 tensor)
    without decoding images.

    Attributes:
        train: Training split (augmented when the dataset and ``augment`` say so).
        val: Validation split, stratified from the training data.
        test: Test split: the official one, or a fixed stratified hold-out.
        num_classes: Number of classes.
        in_channels: Number of image channels.
        class_names: Name of each class, in label order.
        name: Dataset name, as registered (with the inline root for ``"<name>:<root>"``).
        resolution: Side of the square images, in pixels.
        mean: Per-channel normalization mean (pixel values in [0, 1]).
        std: Per-channel normalization standard deviation (pixel values in [0, 1]).
    """

    train: TensorImageDataset
    val: TensorImageDataset
    test: TensorImageDataset
    num_classes: int
    in_channels: int
    class_names: tuple[str, ...]
    name: str
    resolution: int
    mean: tuple[float, ...]
    std: tuple[float, ...]


def load_dataset(
    name: str,
    *,
    root: str | os.PathLike[str] | None = None,
    resolution: int = 32,
    val_fraction: float = 0.1,
    seed: int = 0,
    augment: bool = True,
    download: bool = False,
    train_subset: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> DatasetSplits:
    """Load a registered dataset as train, validation and test splits.

    The images are decoded once per process (cached in memory by dataset, root and
    resolution), resized once to ``resolution`` x ``resolution`` (antialiased bilinear), and
    kept as uint8 tensors; items are normalized, and training items augmented, on the fly.

    Built-in names: ``digits``, ``mnist``, ``fashion-mnist``, ``cifar10``, ``cifar100``,
    ``svhn``, ``cifar10-jpeg``, ``cinic10``, ``imagenette``, ``imagefolder`` (see
    :func:`list_datasets`). ``"<name>:<folder>"`` (e.g. ``"imagefolder:/data/pets"``) passes
    the folder as root.

    Args:
        name: Registered dataset name (case-insensitive; ``_`` and ``-`` are equal).
        root: Data root. When ``None``: ``$NACHOS_DATA``, else ``./data``.
        resolution: Side of the square images, in pixels.
        val_fraction: Fraction of the training data held out (stratified) as validation
            split, in the open interval (0, 1).
        seed: Seed of the validation split and of ``train_subset``; the same seed gives the
            same splits.
        augment: Whether training items are augmented as the dataset prescribes (random
            crop with ``resolution // 8`` pixels of zero padding and/or horizontal flip).
            Validation and test items are never augmented.
        download: Allow fetching a missing dataset from the internet (torchvision); nothing
            is downloaded otherwise.
        train_subset: Keep only this many training images (stratified, drawn with ``seed``
            after the validation split, which does not depend on it). ``None`` keeps all.
        cache_dir: Optional folder for an on-disk cache (.npz) of the decoded, resized
            images, reused by later processes. Never written unless given; point it outside
            dataset folders. Delete its files when the source data changes.

    Returns:
        The splits and the dataset's metadata.

    Raises:
        UnknownDatasetError: If ``name`` is not registered (the message lists known names).
        DatasetNotFoundError: If the dataset's files are missing (the message says where it
            looked and how to get them).
        DatasetCorruptError: If the files exist but cannot be read.
        ValueError: If an argument is out of range or a stratified split is impossible.
    """
    base, sep, inline_root = name.partition(":") if isinstance(name, str) else (name, "", "")
    loader = get_dataset_loader(base)
    key = normalize_name(base)
    display_name = key
    if sep:
        if not inline_root:
            raise ValueError(f"dataset name {name!r} has ':' but no folder after it.")
        if root is not None:
            raise ValueError(
                f"dataset name {name!r} names a folder and root={root!r} another; give one."
            )
        root = inline_root
        display_name = f"{key}:{inline_root}"
    resolution = _check_int("resolution", resolution, minimum=1)
    seed = _check_int("seed", seed, minimum=0)
    if seed >= 2**32:
        raise ValueError(f"seed must be below 2**32, got {seed}.")
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, Real):
        raise TypeError(f"val_fraction must be a number, got {val_fraction!r}.")
    if not 0.0 < float(val_fraction) < 1.0:
        raise ValueError(
            f"val_fraction must lie strictly between 0 and 1, got {val_fraction}: a validation "
            "split is always held out of the training data (exit thresholds are calibrated on it)."
        )
    if train_subset is not None:
        train_subset = _check_int("train_subset", train_subset, minimum=1)

    root_path = resolve_root(root)
    arrays = _decoded(key, loader, root_path, resolution, download, cache_dir)

    labels = arrays.train_labels.numpy()
    everything = np.arange(len(labels), dtype=np.int64)
    if arrays.test_images is None:
        pool, test_indices = stratified_split(
            everything, labels, held_out=HOLDOUT_TEST_FRACTION, seed=HOLDOUT_TEST_SEED, what="test"
        )
        test_base = (arrays.train_images, arrays.train_labels)
    else:
        assert arrays.test_labels is not None
        pool, test_indices = everything, None
        test_base = (arrays.test_images, arrays.test_labels)
    train_indices, val_indices = stratified_split(
        pool, labels, held_out=float(val_fraction), seed=seed, what="validation"
    )
    if train_subset is not None:
        if train_subset > len(train_indices):
            raise ValueError(
                f"train_subset={train_subset} exceeds the {len(train_indices)} training images "
                f"of {display_name!r} left after the validation split."
            )
        train_indices = stratified_subset(train_indices, labels, size=train_subset, seed=seed)

    common = {"mean": arrays.mean, "std": arrays.std}
    train = TensorImageDataset(
        arrays.train_images,
        arrays.train_labels,
        indices=train_indices,
        padding=resolution // 8 if augment and arrays.random_crop else 0,
        horizontal_flip=augment and arrays.horizontal_flip,
        **common,
    )
    val = TensorImageDataset(
        arrays.train_images, arrays.train_labels, indices=val_indices, **common
    )
    test = TensorImageDataset(test_base[0], test_base[1], indices=test_indices, **common)
    logger.info(
        "%s: %d train / %d val / %d test images, %d classes, %dx%d, augmentation: %s",
        display_name,
        len(train),
        len(val),
        len(test),
        arrays.num_classes,
        resolution,
        resolution,
        f"crop pad {train.padding}, flip {train.horizontal_flip}" if train.augmented else "none",
    )
    return DatasetSplits(
        train=train,
        val=val,
        test=test,
        num_classes=arrays.num_classes,
        in_channels=arrays.in_channels,
        class_names=arrays.class_names,
        name=display_name,
        resolution=resolution,
        mean=arrays.mean,
        std=arrays.std,
    )


def clear_cache() -> None:
    """Forget the datasets decoded in this process (the on-disk cache is left alone)."""
    with _cache_lock:
        _cache.clear()


def _check_int(what: str, value: object, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{what} must be an integer, got {value!r}.")
    if int(value) < minimum:
        raise ValueError(f"{what} must be >= {minimum}, got {value}.")
    return int(value)


def _decoded(
    key: str,
    loader: Callable[..., DatasetArrays],
    root: Path,
    resolution: int,
    download: bool,
    cache_dir: str | os.PathLike[str] | None,
) -> DatasetArrays:
    cache_key = (key, loader, str(root.resolve()), resolution)
    with _cache_lock:
        if cache_key in _cache:
            _cache.move_to_end(cache_key)
            logger.debug("%s at %dpx: decoded arrays reused from memory", key, resolution)
            return _cache[cache_key]
    disk_path = _disk_cache_path(cache_dir, cache_key) if cache_dir is not None else None
    arrays = _read_disk_cache(disk_path) if disk_path is not None else None
    if arrays is None:
        arrays = loader(root, resolution=resolution, download=download)
        if not isinstance(arrays, DatasetArrays):
            raise TypeError(
                f"the loader of dataset {key!r} returned {type(arrays).__name__}, "
                "expected DatasetArrays."
            )
        arrays = _resized(arrays, resolution)
        if disk_path is not None:
            _write_disk_cache(disk_path, arrays)
    with _cache_lock:
        _cache[cache_key] = arrays
        while len(_cache) > _MEMORY_CACHE_SIZE:
            _cache.popitem(last=False)
    return arrays


def _resized(arrays: DatasetArrays, resolution: int) -> DatasetArrays:
    if arrays.train_images.shape[-2:] == (resolution, resolution):
        return arrays
    logger.info(
        "resizing images from %dx%d to %dx%d",
        *arrays.train_images.shape[-2:],
        resolution,
        resolution,
    )
    test = arrays.test_images
    return dataclasses.replace(
        arrays,
        train_images=resize_images(arrays.train_images, resolution),
        test_images=None if test is None else resize_images(test, resolution),
    )


def _disk_cache_path(cache_dir: str | os.PathLike[str], cache_key: tuple[object, ...]) -> Path:
    key, loader, root, resolution = cache_key
    identity = "|".join(
        [
            str(key),
            f"{getattr(loader, '__module__', '')}.{getattr(loader, '__qualname__', repr(loader))}",
            str(root),
            str(resolution),
            str(_DISK_CACHE_FORMAT),
        ]
    )
    digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
    safe = re.sub(r"[^a-z0-9.-]+", "_", str(key))
    return Path(cache_dir).expanduser() / f"{safe}-{resolution}px-{digest}.npz"


def _read_disk_cache(path: Path) -> DatasetArrays | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            has_test = "test_images" in npz.files
            arrays = DatasetArrays(
                train_images=torch.from_numpy(npz["train_images"]),
                train_labels=torch.from_numpy(npz["train_labels"]),
                test_images=torch.from_numpy(npz["test_images"]) if has_test else None,
                test_labels=torch.from_numpy(npz["test_labels"]) if has_test else None,
                class_names=tuple(str(n) for n in npz["class_names"]),
                mean=tuple(float(v) for v in npz["mean"]),
                std=tuple(float(v) for v in npz["std"]),
                random_crop=bool(npz["random_crop"]),
                horizontal_flip=bool(npz["horizontal_flip"]),
            )
    except (OSError, KeyError, ValueError, TypeError, zipfile.BadZipFile) as error:
        logger.warning("ignoring unreadable dataset cache %s: %s", path, error)
        return None
    logger.debug("decoded arrays read from %s", path)
    return arrays


def _write_disk_cache(path: Path, arrays: DatasetArrays) -> None:
    fields: dict[str, np.ndarray] = {
        "train_images": arrays.train_images.numpy(),
        "train_labels": arrays.train_labels.numpy(),
        "class_names": np.array(arrays.class_names, dtype=str),
        "mean": np.array(arrays.mean, dtype=np.float64),
        "std": np.array(arrays.std, dtype=np.float64),
        "random_crop": np.array(arrays.random_crop),
        "horizontal_flip": np.array(arrays.horizontal_flip),
    }
    if arrays.test_images is not None and arrays.test_labels is not None:
        fields["test_images"] = arrays.test_images.numpy()
        fields["test_labels"] = arrays.test_labels.numpy()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            dir=path.parent, prefix=path.stem, suffix=".tmp", delete=False
        ) as handle:
            np.savez(handle, **fields)
        os.replace(handle.name, path)
    except OSError as error:
        logger.warning("could not write dataset cache %s: %s", path, error)
        return
    logger.debug("decoded arrays written to %s", path)
