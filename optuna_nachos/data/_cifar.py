"""CIFAR-10 and CIFAR-100 (python pickle batches), and the offline JPEG copy of CIFAR-10."""

from __future__ import annotations

import io
import pickle
import re
import tarfile
import warnings
import zlib
from collections import defaultdict
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from optuna_nachos.data._arrays import DatasetArrays
from optuna_nachos.data._errors import DatasetCorruptError, DatasetNotFoundError
from optuna_nachos.data._paths import find_or_download, logger, not_found_message, unique_paths

CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)

CIFAR10_JPEG_ARCHIVE = "cifar10-jpeg-images.tar.gz"
CIFAR10_JPEG_LABELS = "cifar10_labels_in_original_order.npz"

_NUM_TRAIN_BATCHES = 5


_SAFE_GLOBALS = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 store bytes
    }
)
"""The only callables a CIFAR batch may name: numpy arrays, nothing else."""


class _BatchUnpickler(pickle.Unpickler):
    """An unpickler that builds dicts, lists, strings, bytes, numbers and numpy arrays only.

    A plain :func:`pickle.load` runs whatever callable the file names, so a crafted batch
    file would run code when read; this one refuses every other global.
    """

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _SAFE_GLOBALS:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: a CIFAR batch holds only numpy arrays, "
                "lists, bytes, strings and dicts"
            )
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            content = _BatchUnpickler(handle, encoding="latin1").load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError) as error:
        raise DatasetCorruptError(f"cannot read CIFAR batch {path}: {error}") from error
    if not isinstance(content, dict):
        raise DatasetCorruptError(f"CIFAR batch {path} does not hold a dict.")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in content.items()}


def _read_batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    batch = _unpickle(path)
    if "data" not in batch or label_key not in batch:
        raise DatasetCorruptError(
            f"CIFAR batch {path} lacks 'data' or {label_key!r} (keys: {sorted(batch)})."
        )
    data = np.asarray(batch["data"], dtype=np.uint8)
    labels = np.asarray(batch[label_key], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise DatasetCorruptError(
            f"CIFAR batch {path}: data of shape {data.shape} with {len(labels)} labels; "
            "expected (N, 3072) with N labels."
        )
    return data.reshape(-1, 3, 32, 32), labels


def _download_torchvision(dataset: str, cls_name: str, root: Path) -> None:
    import torchvision.datasets

    logger.info("downloading %s into %s", dataset, root)
    getattr(torchvision.datasets, cls_name)(str(root), train=True, download=True)


def _load_pickled_cifar(
    root: Path,
    *,
    dataset: str,
    folder_name: str,
    train_files: list[str],
    required: list[str],
    test_file: str,
    meta_file: str,
    label_key: str,
    names_key: str,
    default_names: tuple[str, ...],
    torchvision_class: str,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    download: bool,
) -> DatasetArrays:
    folders = unique_paths([root / folder_name, root / dataset / folder_name, root / dataset, root])
    folder = find_or_download(
        folders,
        required,
        download=partial(_download_torchvision, dataset, torchvision_class, root)
        if download
        else None,
        dataset=dataset,
        expected=[f"{folder_name}/{n}" for n in [*train_files, test_file, meta_file]],
        how_to=[
            f"download=True where internet is available (torchvision writes root/{folder_name})",
            f"or extract the official python archive so that root/{folder_name} exists",
        ],
    )
    present = [n for n in train_files if (folder / n).is_file()]
    if len(present) < len(train_files):
        logger.warning(
            "%s: only %d of %d training batches found in %s (%s); using those.",
            dataset,
            len(present),
            len(train_files),
            folder,
            ", ".join(present),
        )
    parts = [_read_batch(folder / n, label_key) for n in present]
    train_images = np.concatenate([p[0] for p in parts])
    train_labels = np.concatenate([p[1] for p in parts])
    test_images, test_labels = _read_batch(folder / test_file, label_key)
    names = default_names
    if (folder / meta_file).is_file():
        meta = _unpickle(folder / meta_file)
        if names_key in meta:
            names = tuple(str(n) for n in meta[names_key])
    if not names:
        raise DatasetCorruptError(f"{dataset}: no class names in {folder / meta_file}.")
    if max(int(train_labels.max()), int(test_labels.max())) >= len(names):
        raise DatasetCorruptError(
            f"{dataset}: labels reach {max(int(train_labels.max()), int(test_labels.max()))} "
            f"but there are {len(names)} classes."
        )
    return DatasetArrays(
        train_images=train_images,
        train_labels=train_labels,
        test_images=test_images,
        test_labels=test_labels,
        class_names=names,
        mean=mean,
        std=std,
        random_crop=True,
        horizontal_flip=True,
    )


def load_cifar10(root: Path, *, resolution: int, download: bool) -> DatasetArrays:
    """CIFAR-10 from the python pickle batches in ``root/cifar-10-batches-py``.

    Training images get a random crop and a horizontal flip.
    """
    del resolution
    batches = [f"data_batch_{i}" for i in range(1, _NUM_TRAIN_BATCHES + 1)]
    return _load_pickled_cifar(
        root,
        dataset="cifar10",
        folder_name="cifar-10-batches-py",
        train_files=batches,
        required=["data_batch_1", "test_batch"],
        test_file="test_batch",
        meta_file="batches.meta",
        label_key="labels",
        names_key="label_names",
        default_names=CIFAR10_CLASSES,
        torchvision_class="CIFAR10",
        mean=CIFAR10_MEAN,
        std=CIFAR10_STD,
        download=download,
    )


def load_cifar100(root: Path, *, resolution: int, download: bool) -> DatasetArrays:
    """CIFAR-100 (fine labels) from the python pickle files in ``root/cifar-100-python``.

    Training images get a random crop and a horizontal flip.
    """
    del resolution
    return _load_pickled_cifar(
        root,
        dataset="cifar100",
        folder_name="cifar-100-python",
        train_files=["train"],
        required=["train", "test"],
        test_file="test",
        meta_file="meta",
        label_key="fine_labels",
        names_key="fine_label_names",
        default_names=tuple(str(i) for i in range(100)),
        torchvision_class="CIFAR100",
        mean=CIFAR100_MEAN,
        std=CIFAR100_STD,
        download=download,
    )


_JPEG_MEMBER = re.compile(r"(?:^|/)(train|test)/([^/]+)/(\d+)\.jpe?g$", re.IGNORECASE)


def decode_jpegs(blobs: list[bytes], *, use_torchvision: bool = True) -> list[np.ndarray]:
    """Decode JPEG files held in memory to RGB uint8 arrays (3, H, W).

    torchvision's batched libjpeg-turbo decoder is used when its operators load (about four
    times faster than Pillow on small images, same pixels); Pillow otherwise.
    """
    if use_torchvision and blobs:
        try:
            import torch
            from torchvision.io import ImageReadMode, decode_jpeg

            tensors = [torch.frombuffer(bytearray(blob), dtype=torch.uint8) for blob in blobs]
            with warnings.catch_warnings():
                # torchvision 0.29 deprecates its image codecs (in favour of TorchCodec); the
                # Pillow path below takes over once they are gone
                warnings.simplefilter("ignore", DeprecationWarning)
                decoded = decode_jpeg(tensors, mode=ImageReadMode.RGB)
            return [image.numpy() for image in decoded]
        except (ImportError, RuntimeError, ValueError) as error:
            logger.debug("torchvision cannot decode these JPEGs (%s); using Pillow", error)
    from PIL import Image

    out = []
    for blob in blobs:
        with Image.open(io.BytesIO(blob), formats=("JPEG",)) as image:
            out.append(np.asarray(image.convert("RGB")).transpose(2, 0, 1))
    return out


def load_cifar10_jpeg(root: Path, *, resolution: int, download: bool) -> DatasetArrays:
    """The offline JPEG copy of CIFAR-10, decoded straight from its tar.gz archive.

    Looks for ``cifar10-jpeg-images.tar.gz`` and ``cifar10_labels_in_original_order.npz`` in
    ``root/cifar10-jpeg`` or ``root``. The archive holds ``train/<class>/NNNN.jpg`` and
    ``test/<class>/NNNN.jpg``, NNNN following the original order within a class; the original
    sample order is restored by walking the label list and taking, for label ``c``, class
    ``c``'s next image. Pixels are JPEG-recompressed: results on it are not exact CIFAR-10
    results. Training images get a random crop and a horizontal flip.
    """
    del resolution
    folders = unique_paths([root / "cifar10-jpeg", root])
    folder = next(
        (
            f
            for f in folders
            if (f / CIFAR10_JPEG_ARCHIVE).is_file() and (f / CIFAR10_JPEG_LABELS).is_file()
        ),
        None,
    )
    if folder is None:
        detail = "download=True is not supported for this offline copy." if download else None
        raise DatasetNotFoundError(
            not_found_message(
                "cifar10-jpeg",
                expected=[CIFAR10_JPEG_ARCHIVE, CIFAR10_JPEG_LABELS],
                looked_in=folders,
                how_to=[
                    "copy both files of the offline CIFAR-10 JPEG copy into one folder",
                    "or use name='cifar10' with download=True where internet is available "
                    "(the exact dataset)",
                ],
                detail=detail,
            )
        )
    labels_path = folder / CIFAR10_JPEG_LABELS
    try:
        with np.load(labels_path) as npz:
            labels = {
                "train": npz["y_train"].astype(np.int64),
                "test": npz["y_test"].astype(np.int64),
            }
    except (OSError, KeyError, ValueError, zlib.error) as error:
        raise DatasetCorruptError(
            f"cannot read y_train/y_test from {labels_path}: {error}"
        ) from error
    class_index = {name: i for i, name in enumerate(CIFAR10_CLASSES)}
    members: dict[tuple[str, int], list[tuple[int, bytes]]] = defaultdict(list)
    archive = folder / CIFAR10_JPEG_ARCHIVE
    logger.info("decoding %s", archive)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                match = _JPEG_MEMBER.search(member.name)
                if not member.isfile() or match is None:
                    continue
                split, class_name, number = match.groups()
                if class_name not in class_index:
                    raise DatasetCorruptError(
                        f"{archive}: unknown class folder {class_name!r} in {member.name}; "
                        f"expected one of {list(CIFAR10_CLASSES)}."
                    )
                handle = tar.extractfile(member)
                if handle is None:
                    continue
                members[(split, class_index[class_name])].append((int(number), handle.read()))
    except (OSError, EOFError, tarfile.TarError, zlib.error) as error:
        raise DatasetCorruptError(f"cannot read archive {archive}: {error}") from error

    out: dict[str, np.ndarray] = {}
    for split in ("train", "test"):
        y = labels[split]
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= len(CIFAR10_CLASSES)):
            raise DatasetCorruptError(f"{labels_path}: y_{split} labels outside 0..9.")
        images: np.ndarray | None = None
        for c in range(len(CIFAR10_CLASSES)):
            positions = np.flatnonzero(y == c)
            files = sorted(members.get((split, c), []), key=lambda item: item[0])
            if len(files) != len(positions):
                raise DatasetCorruptError(
                    f"{archive}: {len(files)} images in {split}/{CIFAR10_CLASSES[c]}/, but "
                    f"{labels_path} lists {len(positions)} samples of that class in y_{split}."
                )
            if not files:
                continue
            try:
                decoded = decode_jpegs([data for _, data in files])
            except (OSError, ValueError) as error:
                raise DatasetCorruptError(
                    f"{archive}: cannot decode a JPEG in {split}/{CIFAR10_CLASSES[c]}/: {error}"
                ) from error
            if images is None:
                images = np.empty((len(y), *decoded[0].shape), dtype=np.uint8)
            shapes = {d.shape for d in decoded}
            if shapes != {images.shape[1:]}:
                raise DatasetCorruptError(f"{archive}: images of different sizes {sorted(shapes)}.")
            images[positions] = np.stack(decoded)
        if images is None:
            raise DatasetCorruptError(f"{archive}: no {split} images.")
        out[split] = images
    return DatasetArrays(
        train_images=out["train"],
        train_labels=labels["train"],
        test_images=out["test"],
        test_labels=labels["test"],
        class_names=CIFAR10_CLASSES,
        mean=CIFAR10_MEAN,
        std=CIFAR10_STD,
        random_crop=True,
        horizontal_flip=True,
    )
