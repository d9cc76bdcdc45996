"""Datasets stored as image folders: ``imagefolder``, ``cinic10`` and ``imagenette``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from optuna_nachos.data._arrays import DatasetArrays
from optuna_nachos.data._errors import DatasetCorruptError, DatasetNotFoundError
from optuna_nachos.data._paths import logger, not_found_message, unique_paths
from optuna_nachos.data._transforms import resize_shorter_center_crop

IMG_EXTENSIONS = (
    ".jpg",
    ".jpeg",
    ".png",
    ".bmp",
    ".ppm",
    ".pgm",
    ".tif",
    ".tiff",
    ".webp",
    ".gif",
)
"""File extensions read as images (case-insensitive)."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CINIC10_MEAN = (0.47889522, 0.47227842, 0.43047404)
CINIC10_STD = (0.24205776, 0.23828046, 0.25874835)

IMAGENETTE_CLASSES = {
    "n01440764": "tench",
    "n02102040": "English springer",
    "n02979186": "cassette player",
    "n03000684": "chain saw",
    "n03028079": "church",
    "n03394916": "French horn",
    "n03417042": "garbage truck",
    "n03425413": "gas pump",
    "n03445777": "golf ball",
    "n03888605": "parachute",
}


def scan_class_folders(
    folder: Path, *, classes: Sequence[str] | None = None
) -> tuple[list[str], list[Path], list[int]]:
    """Class subfolders of ``folder`` and their image files, sorted by name.

    Args:
        folder: A folder holding one subfolder per class.
        classes: Known class names (from the training split); subfolders must be among them.

    Returns:
        The class names (sorted subfolder names, or ``classes``), the image files, and their
        class indices.
    """
    found = sorted(entry.name for entry in os.scandir(folder) if entry.is_dir())
    names = list(classes) if classes is not None else found
    index = {name: i for i, name in enumerate(names)}
    unknown = [name for name in found if name not in index]
    if unknown:
        raise DatasetCorruptError(
            f"{folder} holds class folders {unknown} that the training split lacks "
            f"(training classes: {names})."
        )
    files: list[Path] = []
    labels: list[int] = []
    for name in found:
        images = sorted(
            Path(entry.path)
            for entry in os.scandir(folder / name)
            if entry.is_file() and entry.name.lower().endswith(IMG_EXTENSIONS)
        )
        if not images and classes is None:
            raise DatasetCorruptError(f"class folder {folder / name} holds no images.")
        files.extend(images)
        labels.extend([index[name]] * len(images))
    if not files:
        raise DatasetCorruptError(f"{folder} holds no images in class subfolders.")
    return names, files, labels


def decode_image_file(path: Path, *, resolution: int) -> torch.Tensor:
    """Decode one image file to RGB uint8 (3, resolution, resolution).

    The shorter side is resized to ``resolution`` (antialiased bilinear), then the center is
    cropped. JPEGs are decoded at a reduced scale first when they are much larger.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.draft("RGB", (resolution, resolution))
            array = np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError, ValueError) as error:
        raise DatasetCorruptError(f"cannot decode image {path}: {error}") from error
    tensor = torch.from_numpy(array.copy()).permute(2, 0, 1)
    return resize_shorter_center_crop(tensor, resolution)


def decode_image_files(paths: Sequence[Path], *, resolution: int) -> torch.Tensor:
    """Decode image files into uint8 (N, 3, resolution, resolution).

    Sequential on purpose: for small images, threads contend for the GIL and are slower.
    """
    if not paths:
        return torch.empty((0, 3, resolution, resolution), dtype=torch.uint8)
    return torch.stack([decode_image_file(path, resolution=resolution) for path in paths])


def _load_split_folders(
    dataset: str,
    *,
    candidates: list[Path],
    train_dir: str,
    test_dirs: Sequence[str],
    resolution: int,
    how_to: list[str],
    detail: str | None = None,
    class_display: dict[str, str] | None = None,
    mean: tuple[float, ...],
    std: tuple[float, ...],
) -> DatasetArrays:
    candidates = unique_paths(candidates)
    chosen: tuple[Path, str] | None = None
    for folder in candidates:
        if not (folder / train_dir).is_dir():
            continue
        test_dir = next((d for d in test_dirs if (folder / d).is_dir()), None)
        if test_dir is not None:
            chosen = (folder, test_dir)
            break
    if chosen is None:
        raise DatasetNotFoundError(
            not_found_message(
                dataset,
                expected=[
                    f"{train_dir}/<class>/<image>",
                    " or ".join(f"{d}/<class>/<image>" for d in test_dirs),
                ],
                looked_in=candidates,
                how_to=how_to,
                detail=detail,
            )
        )
    folder, test_dir = chosen
    classes, train_files, train_labels = scan_class_folders(folder / train_dir)
    _, test_files, test_labels = scan_class_folders(folder / test_dir, classes=classes)
    logger.info(
        "decoding %d + %d images of %s from %s at %dx%d",
        len(train_files),
        len(test_files),
        dataset,
        folder,
        resolution,
        resolution,
    )
    names = tuple(class_display.get(c, c) for c in classes) if class_display else tuple(classes)
    return DatasetArrays(
        train_images=decode_image_files(train_files, resolution=resolution),
        train_labels=torch.tensor(train_labels, dtype=torch.int64),
        test_images=decode_image_files(test_files, resolution=resolution),
        test_labels=torch.tensor(test_labels, dtype=torch.int64),
        class_names=names,
        mean=mean,
        std=std,
        random_crop=True,
        horizontal_flip=True,
    )


def _no_download(dataset: str, download: bool) -> str | None:
    return f"download=True is not supported for {dataset!r}." if download else None


def load_image_folder(root: Path, *, resolution: int, download: bool) -> DatasetArrays:
    """Any dataset stored as ``root/train/<class>/*`` and ``root/test/<class>/*``.

    ``root/val/`` serves as the test split when ``root/test/`` is absent. Classes are the
    sorted subfolder names of ``train/``. Images are converted to RGB, their shorter side
    resized to the resolution, and center-cropped. Normalized with ImageNet statistics;
    training images get a random crop and a horizontal flip.
    """
    return _load_split_folders(
        "imagefolder",
        candidates=[root],
        train_dir="train",
        test_dirs=("test", "val"),
        resolution=resolution,
        how_to=["pass the folder as root or as name='imagefolder:<folder>'"],
        detail=_no_download("imagefolder", download),
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
    )


def load_cinic10(root: Path, *, resolution: int, download: bool) -> DatasetArrays:
    """CINIC-10 from its folders ``train/``, ``valid/``, ``test/`` (32x32 PNG, 10 classes).

    Looked for in ``root/cinic10``, ``root/CINIC-10``, ``root/cinic-10`` and ``root``. Only
    ``train/`` (split into train and validation) and ``test/`` are used; CINIC's own
    ``valid/`` is ignored. Training images get a random crop and a horizontal flip.
    """
    return _load_split_folders(
        "cinic10",
        candidates=[root / "cinic10", root / "CINIC-10", root / "cinic-10", root],
        train_dir="train",
        test_dirs=("test",),
        resolution=resolution,
        how_to=[
            "download CINIC-10.tar.gz from https://datashare.ed.ac.uk/handle/10283/3192 and "
            "extract it into root/cinic10",
        ],
        detail=_no_download("cinic10", download),
        mean=CINIC10_MEAN,
        std=CINIC10_STD,
    )


def load_imagenette(root: Path, *, resolution: int, download: bool) -> DatasetArrays:
    """Imagenette (10 ImageNet classes) from its folders ``train/`` and ``val/``.

    Looked for in ``root/imagenette2-320``, ``root/imagenette2-160``, ``root/imagenette2``,
    ``root/imagenette`` and ``root``; ``val/`` is the test split. With ``download=True``,
    torchvision fetches the 320 px version. Normalized with ImageNet statistics; training
    images get a random crop and a horizontal flip.
    """
    candidates = [
        root / "imagenette2-320",
        root / "imagenette2-160",
        root / "imagenette2",
        root / "imagenette",
        root,
    ]
    detail = None
    if download and not any((c / "train").is_dir() and (c / "val").is_dir() for c in candidates):
        import torchvision.datasets

        logger.info("downloading imagenette (320px) into %s", root)
        try:
            torchvision.datasets.Imagenette(str(root), split="train", size="320px", download=True)
        except Exception as error:  # network errors come in many types
            detail = f"download=True failed: {error}"
    return _load_split_folders(
        "imagenette",
        candidates=candidates,
        train_dir="train",
        test_dirs=("val",),
        resolution=resolution,
        how_to=[
            "download=True where internet is available (torchvision writes root/imagenette2-320)",
            "or extract imagenette2-320.tgz from https://github.com/fastai/imagenette into root",
        ],
        detail=detail,
        class_display=IMAGENETTE_CLASSES,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
    )
