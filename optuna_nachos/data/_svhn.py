"""SVHN (cropped digits) from torchvision's ``.mat`` files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from optuna_nachos.data._arrays import DatasetArrays
from optuna_nachos.data._errors import DatasetCorruptError
from optuna_nachos.data._paths import find_or_download, logger, unique_paths

SVHN_FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}
SVHN_MEAN = (0.4377, 0.4438, 0.4728)
SVHN_STD = (0.1980, 0.2010, 0.1970)


def _read_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import scipy.io
    from scipy.io.matlab import MatReadError

    try:
        content = scipy.io.loadmat(str(path))
    except (OSError, ValueError, TypeError, NotImplementedError, MatReadError) as error:
        raise DatasetCorruptError(f"cannot read SVHN file {path}: {error}") from error
    if "X" not in content or "y" not in content:
        raise DatasetCorruptError(f"SVHN file {path} lacks the variables 'X' and 'y'.")
    images = np.asarray(content["X"])
    labels = np.asarray(content["y"]).reshape(-1).astype(np.int64)
    if images.ndim != 4 or images.shape[2] != 3 or images.shape[3] != len(labels):
        raise DatasetCorruptError(
            f"SVHN file {path}: X of shape {images.shape} with {len(labels)} labels; "
            "expected (H, W, 3, N) with N labels."
        )
    if images.dtype != np.uint8:
        raise DatasetCorruptError(f"SVHN file {path}: X has dtype {images.dtype}, expected uint8.")
    labels[labels == 10] = 0  # SVHN stores digit 0 as label 10
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) > 9):
        raise DatasetCorruptError(f"SVHN file {path}: labels outside 1..10.")
    return np.ascontiguousarray(images.transpose(3, 2, 0, 1)), labels


def load_svhn(root: Path, *, resolution: int, download: bool) -> DatasetArrays:
    """SVHN from ``train_32x32.mat`` and ``test_32x32.mat`` in ``root``, ``root/svhn`` or
    ``root/SVHN`` (the ``extra`` split is not used).

    Label 10 (digit 0) becomes 0. Training images get a random crop, never a flip.
    """
    del resolution
    folders = unique_paths([root / "svhn", root / "SVHN", root])

    def fetch() -> None:
        import torchvision.datasets

        logger.info("downloading svhn into %s", root)
        for split in SVHN_FILES:
            torchvision.datasets.SVHN(str(root), split=split, download=True)

    folder = find_or_download(
        folders,
        SVHN_FILES.values(),
        download=fetch if download else None,
        dataset="svhn",
        expected=list(SVHN_FILES.values()),
        how_to=[
            "download=True where internet is available (torchvision writes the .mat "
            "files into root)",
            "or fetch them from http://ufldl.stanford.edu/housenumbers/",
        ],
    )
    train_images, train_labels = _read_mat(folder / SVHN_FILES["train"])
    test_images, test_labels = _read_mat(folder / SVHN_FILES["test"])
    return DatasetArrays(
        train_images=train_images,
        train_labels=train_labels,
        test_images=test_images,
        test_labels=test_labels,
        class_names=tuple(str(d) for d in range(10)),
        mean=SVHN_MEAN,
        std=SVHN_STD,
        random_crop=True,
        horizontal_flip=False,
    )
