"""MNIST and Fashion-MNIST from idx files (gzip-compressed or not)."""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from optuna_nachos.data._arrays import DatasetArrays
from optuna_nachos.data._errors import DatasetCorruptError, DatasetNotFoundError
from optuna_nachos.data._paths import logger, not_found_message, unique_paths

_IMAGES_MAGIC = 0x00000803  # unsigned byte, 3 dimensions
_LABELS_MAGIC = 0x00000801  # unsigned byte, 1 dimension

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

FASHION_MNIST_SYSTEM_DIRS: tuple[Path, ...] = (Path("/usr/share/datasets/fashion-mnist"),)
"""System folders searched for Fashion-MNIST (the Debian package ``dataset-fashion-mnist``)."""

MNIST_CLASSES = tuple(str(d) for d in range(10))
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


def read_idx(path: str | os.PathLike[str], *, expected_magic: int | None = None) -> np.ndarray:
    """Read an idx file of unsigned bytes (``.gz`` or uncompressed) into a numpy array.

    Args:
        path: File to read; gzip compression is detected from its first bytes.
        expected_magic: Magic number the file must carry (2051 for images, 2049 for labels).

    Returns:
        A uint8 array with the dimensions stored in the file.

    Raises:
        DatasetCorruptError: If the file is not valid idx data of unsigned bytes.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(2)
            handle.seek(0)
            if head == b"\x1f\x8b":
                with gzip.GzipFile(fileobj=handle) as unzipped:
                    data = unzipped.read()
            else:
                data = handle.read()
    except (OSError, EOFError, zlib.error) as error:
        raise DatasetCorruptError(f"cannot read idx file {path}: {error}") from error
    if len(data) < 4:
        raise DatasetCorruptError(f"idx file {path} is truncated ({len(data)} bytes).")
    (magic,) = struct.unpack(">I", data[:4])
    ndim = magic & 0xFF
    if magic >> 16 != 0 or (magic >> 8) & 0xFF != 0x08 or ndim == 0:
        raise DatasetCorruptError(
            f"idx file {path} has bad magic number 0x{magic:08x}; expected unsigned-byte idx "
            f"data (0x0000080N). The file is corrupt or not an idx file: fetch it again."
        )
    if expected_magic is not None and magic != expected_magic:
        raise DatasetCorruptError(
            f"idx file {path} has magic number {magic}, expected {expected_magic}."
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetCorruptError(f"idx file {path} is truncated inside its header.")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(dims, dtype=np.int64))
    if len(data) - header != expected:
        raise DatasetCorruptError(
            f"idx file {path} holds {len(data) - header} data bytes, its header {dims} "
            f"announces {expected}."
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _find_idx_file(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _find_idx_folder(folders: list[Path]) -> dict[str, Path] | None:
    for folder in folders:
        found = {key: _find_idx_file(folder, stem) for key, stem in IDX_FILES.items()}
        if all(found.values()):
            return {key: path for key, path in found.items() if path is not None}
    return None


def _load_idx_dataset(
    root: Path,
    *,
    dataset: str,
    folders: list[Path],
    torchvision_class: str,
    download: bool,
    how_to: list[str],
    class_names: tuple[str, ...],
    mean: float,
    std: float,
    augment: bool,
) -> DatasetArrays:
    folders = unique_paths(folders)

    def not_found(detail: str | None = None) -> DatasetNotFoundError:
        return DatasetNotFoundError(
            not_found_message(
                dataset,
                expected=[f"{s}[.gz]" for s in IDX_FILES.values()],
                looked_in=folders,
                how_to=how_to,
                detail=detail,
            )
        )

    files = _find_idx_folder(folders)
    if files is None and download:
        import torchvision.datasets

        logger.info("downloading %s into %s", dataset, root)
        try:
            getattr(torchvision.datasets, torchvision_class)(str(root), train=True, download=True)
        except Exception as error:  # network errors come in many types
            raise not_found(f"download=True failed: {error}") from error
        files = _find_idx_folder(folders)
    if files is None:
        raise not_found()
    logger.debug("reading %s from %s", dataset, files["train_images"].parent)
    arrays = {
        key: read_idx(path, expected_magic=_IMAGES_MAGIC if "images" in key else _LABELS_MAGIC)
        for key, path in files.items()
    }
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if len(images) != len(labels):
            raise DatasetCorruptError(
                f"{dataset}: {files[f'{split}_images']} holds {len(images)} images but "
                f"{files[f'{split}_labels']} holds {len(labels)} labels."
            )
        if len(labels) and int(labels.max()) >= len(class_names):
            raise DatasetCorruptError(
                f"{dataset}: {files[f'{split}_labels']} holds label {int(labels.max())}, "
                f"expected 0..{len(class_names) - 1}."
            )
    return DatasetArrays(
        train_images=arrays["train_images"],
        train_labels=arrays["train_labels"],
        test_images=arrays["test_images"],
        test_labels=arrays["test_labels"],
        class_names=class_names,
        mean=(mean,),
        std=(std,),
        random_crop=augment,
        horizontal_flip=augment,
    )


def _idx_folders(root: Path, *, name: str, torchvision_class: str) -> list[Path]:
    """Where an idx dataset may lie below ``root``: torchvision's layout first, then ours."""
    return [
        root / torchvision_class / "raw",
        root / name / torchvision_class / "raw",
        root / name / "raw",
        root / name,
        root / torchvision_class,
        root,
    ]


def load_mnist(root: Path, *, resolution: int, download: bool) -> DatasetArrays:
    """MNIST (60k/10k, 28x28 grey): idx files in ``root/MNIST/raw``, ``root/mnist`` or ``root``.

    No augmentation (flipping digits changes their meaning).
    """
    del resolution
    return _load_idx_dataset(
        root,
        dataset="mnist",
        folders=_idx_folders(root, name="mnist", torchvision_class="MNIST"),
        torchvision_class="MNIST",
        download=download,
        how_to=[
            "download=True where internet is available (torchvision writes root/MNIST/raw)",
        ],
        class_names=MNIST_CLASSES,
        mean=0.1307,
        std=0.3081,
        augment=False,
    )


def load_fashion_mnist(root: Path, *, resolution: int, download: bool) -> DatasetArrays:
    """Fashion-MNIST (60k/10k, 28x28 grey): idx files in ``root/FashionMNIST/raw``,
    ``root/fashion-mnist``, ``root`` or ``/usr/share/datasets/fashion-mnist``.

    Training images get a random crop and a horizontal flip.
    """
    del resolution
    return _load_idx_dataset(
        root,
        dataset="fashion-mnist",
        folders=[
            *_idx_folders(root, name="fashion-mnist", torchvision_class="FashionMNIST"),
            *FASHION_MNIST_SYSTEM_DIRS,
        ],
        torchvision_class="FashionMNIST",
        download=download,
        how_to=[
            "apt-get install dataset-fashion-mnist (Debian/Ubuntu; installs "
            "/usr/share/datasets/fashion-mnist)",
            "download=True where internet is available (torchvision writes root/FashionMNIST/raw)",
        ],
        class_names=FASHION_MNIST_CLASSES,
        mean=0.2860,
        std=0.3530,
        augment=True,
    )
