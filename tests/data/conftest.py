"""Writers of small datasets in the real on-disk formats, for the data-layer tests."""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import tarfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from optuna_nachos.data import clear_cache
from optuna_nachos.data._cifar import CIFAR10_CLASSES


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch):
    """No data root from the environment, and no decoded arrays shared between tests."""
    monkeypatch.delenv("NACHOS_DATA", raising=False)
    clear_cache()
    yield
    clear_cache()


def write_idx(path: Path, array: np.ndarray, *, gz: bool) -> Path:
    """Write ``array`` (uint8) as an idx file, gzip-compressed when ``gz`` (adds ``.gz``)."""
    array = np.asarray(array, dtype=np.uint8)
    payload = struct.pack(">I", 0x0800 | array.ndim)
    payload += struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as handle:
            handle.write(payload)
    else:
        path.write_bytes(payload)
    return path


def write_mnist_like(
    folder: Path, *, gz: bool, n_train: int = 60, n_test: int = 20, seed: int = 0
) -> dict[str, np.ndarray]:
    """The four idx files of an MNIST-like dataset (28x28, 10 balanced classes)."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) % 10).astype(np.uint8),
    }
    for name, array in arrays.items():
        write_idx(folder / name, array, gz=gz)
    return arrays


def write_cifar10(
    folder: Path, *, batch_sizes: tuple[int, ...] = (30, 30), n_test: int = 20, seed: int = 0
) -> dict[str, np.ndarray]:
    """CIFAR-10 python batches (the first with bytes keys, as the official py2 pickles)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    train_x, train_y = [], []
    for i, size in enumerate(batch_sizes, start=1):
        data = rng.integers(0, 256, (size, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.permutation(np.arange(size) % 10)]
        batch = {"data": data, "labels": labels, "batch_label": f"training batch {i} of 5"}
        if i == 1:
            batch = {k.encode(): v for k, v in batch.items()}
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(batch, protocol=2))
        train_x.append(data)
        train_y.extend(labels)
    test_data = rng.integers(0, 256, (n_test, 3072), dtype=np.uint8)
    test_labels = [i % 10 for i in range(n_test)]
    (folder / "test_batch").write_bytes(
        pickle.dumps({"data": test_data, "labels": test_labels}, protocol=2)
    )
    (folder / "batches.meta").write_bytes(
        pickle.dumps({"label_names": list(CIFAR10_CLASSES), "num_vis": 3072}, protocol=2)
    )
    return {
        "train_x": np.concatenate(train_x).reshape(-1, 3, 32, 32),
        "train_y": np.array(train_y),
        "test_x": test_data.reshape(-1, 3, 32, 32),
        "test_y": np.array(test_labels),
    }


def write_cifar100(folder: Path, *, n_train: int = 40, n_test: int = 10) -> None:
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True, exist_ok=True)
    for name, size in (("train", n_train), ("test", n_test)):
        fine = [i % 5 for i in range(size)]
        content = {
            "data": rng.integers(0, 256, (size, 3072), dtype=np.uint8),
            "fine_labels": fine,
            "coarse_labels": [f // 2 for f in fine],
        }
        (folder / name).write_bytes(pickle.dumps(content, protocol=2))
    names = {"fine_label_names": ["apple", "bear", "cloud", "dolphin", "elephant"]}
    (folder / "meta").write_bytes(pickle.dumps(names, protocol=2))


def _jpeg(value_r: int, value_g: int, size: int = 32) -> bytes:
    from PIL import Image

    pixels = np.zeros((size, size, 3), dtype=np.uint8)
    pixels[..., 0] = value_r
    pixels[..., 1] = value_g
    pixels[..., 2] = 128
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def write_cifar10_jpeg(
    folder: Path, *, n_train: int = 40, n_test: int = 20, seed: int = 0
) -> dict[str, np.ndarray]:
    """The offline CIFAR-10 JPEG layout: tar.gz of ``<split>/<class>/NNNN.jpg`` + labels npz.

    Image ``i`` of a split (in the original order) is a flat colour whose red channel is
    ``6 * i`` and green channel ``20 * label``, so the restored order can be checked.
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    labels = {
        "train": rng.permutation(np.arange(n_train) % 10).astype(np.uint8),
        "test": rng.permutation(np.arange(n_test) % 10).astype(np.uint8),
    }
    entries = []
    for split, y in labels.items():
        counters = [0] * 10
        for i, c in enumerate(y):
            name = f"{split}/{CIFAR10_CLASSES[c]}/{counters[c]:04d}.jpg"
            counters[c] += 1
            entries.append((name, _jpeg(6 * i, 20 * int(c))))
    order = rng.permutation(len(entries))  # archive order is not the dataset order
    with tarfile.open(folder / "cifar10-jpeg-images.tar.gz", "w:gz") as tar:
        for split in labels:
            info = tarfile.TarInfo(split)
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
        for k in order:
            name, data = entries[k]
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    np.savez(
        folder / "cifar10_labels_in_original_order.npz",
        y_train=labels["train"],
        y_test=labels["test"],
    )
    return labels


def write_svhn(folder: Path, *, n_train: int = 30, n_test: int = 10) -> dict[str, np.ndarray]:
    import scipy.io

    rng = np.random.default_rng(2)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, size in (("train", n_train), ("test", n_test)):
        x = rng.integers(0, 256, (32, 32, 3, size), dtype=np.uint8)
        y = (np.arange(size) % 10 + 1).astype(np.uint8).reshape(-1, 1)  # digit 0 stored as 10
        scipy.io.savemat(str(folder / f"{split}_32x32.mat"), {"X": x, "y": y})
        out[f"{split}_x"], out[f"{split}_y"] = x, y
    return out


def write_image_folder(
    folder: Path,
    classes: dict[str, int],
    *,
    size: tuple[int, int] = (12, 12),
    ext: str = ".png",
    seed: int = 0,
) -> None:
    """``folder/<class>/<k><ext>``: ``classes[name]`` random RGB images of (width, height)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for name, count in classes.items():
        (folder / name).mkdir(parents=True, exist_ok=True)
        for k in range(count):
            pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / name / f"{k:03d}{ext}")


@pytest.fixture
def formats() -> SimpleNamespace:
    """The writers above, for test modules (which cannot import each other)."""
    return SimpleNamespace(
        write_idx=write_idx,
        write_mnist_like=write_mnist_like,
        write_cifar10=write_cifar10,
        write_cifar100=write_cifar100,
        write_cifar10_jpeg=write_cifar10_jpeg,
        write_svhn=write_svhn,
        write_image_folder=write_image_folder,
    )
