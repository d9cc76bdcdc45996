"""scikit-learn's bundled 8x8 digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from optuna_nachos.data._arrays import DatasetArrays

DIGITS_MEAN = 0.3053
DIGITS_STD = 0.3759


def load_digits(root: Path, *, resolution: int, download: bool) -> DatasetArrays:
    """The 1,797 8x8 digits bundled with scikit-learn (``sklearn.datasets.load_digits``).

    Pixel values 0..16 are scaled to 0..255. There is no official test split: a stratified
    20 % of the images, drawn with the fixed seed 0 whatever the ``seed`` of
    :func:`~optuna_nachos.data.load_dataset`, becomes the test split. ``root`` and ``download``
    are not used. No augmentation.
    """
    del root, resolution, download
    from sklearn.datasets import load_digits as sklearn_load_digits

    bunch = sklearn_load_digits()
    images = np.round(np.asarray(bunch.images, dtype=np.float64) * (255.0 / 16.0))
    return DatasetArrays(
        train_images=images.clip(0, 255).astype(np.uint8),
        train_labels=np.asarray(bunch.target, dtype=np.int64),
        test_images=None,
        test_labels=None,
        class_names=tuple(str(name) for name in bunch.target_names),
        mean=(DIGITS_MEAN,),
        std=(DIGITS_STD,),
    )
