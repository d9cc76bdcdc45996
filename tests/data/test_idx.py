import gzip
import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from optuna_nachos.data import (
    DatasetCorruptError,
    DatasetNotFoundError,
    _idx,
    load_dataset,
    read_idx,
)

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trip(tmp_path, formats, gz):
    array = np.arange(2 * 3 * 5, dtype=np.uint8).reshape(2, 3, 5)
    path = formats.write_idx(tmp_path / "x-idx3-ubyte", array, gz=gz)
    assert path.name.endswith(".gz") == gz
    out = read_idx(path, expected_magic=2051)
    assert out.shape == (2, 3, 5)
    np.testing.assert_array_equal(out, array)


def test_read_idx_rejects_bad_magic(tmp_path):
    path = tmp_path / "bad"
    path.write_bytes(b"\x12\x34\x08\x01" + b"\x00\x00\x00\x02" + b"\x01\x02")
    with pytest.raises(DatasetCorruptError, match="magic"):
        read_idx(path)


def test_read_idx_rejects_wrong_kind_and_truncation(tmp_path, formats):
    labels = formats.write_idx(tmp_path / "labels", np.arange(4, dtype=np.uint8), gz=False)
    with pytest.raises(DatasetCorruptError, match="expected 2051"):
        read_idx(labels, expected_magic=2051)
    truncated = tmp_path / "truncated"
    truncated.write_bytes(labels.read_bytes()[:-1])
    with pytest.raises(DatasetCorruptError, match="announces"):
        read_idx(truncated)
    broken_gz = tmp_path / "broken.gz"
    broken_gz.write_bytes(gzip.compress(labels.read_bytes())[:-6])
    with pytest.raises(DatasetCorruptError):
        read_idx(broken_gz)


def test_mnist_from_torchvision_layout_uncompressed(tmp_path, formats):
    arrays = formats.write_mnist_like(tmp_path / "MNIST" / "raw", gz=False)
    splits = load_dataset("mnist", root=tmp_path, resolution=28, val_fraction=0.2)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (48, 12, 20)
    assert splits.in_channels == 1 and splits.num_classes == 10
    assert splits.class_names == tuple(str(d) for d in range(10))
    assert not splits.train.augmented  # no augmentation for digits
    # resolution 28: the pixels are the file's, exactly
    np.testing.assert_array_equal(
        splits.test.images[:, 0].numpy(), arrays["t10k-images-idx3-ubyte"]
    )
    np.testing.assert_array_equal(splits.test.targets.numpy(), arrays["t10k-labels-idx1-ubyte"])
    image, label = splits.test[3]
    expected = (arrays["t10k-images-idx3-ubyte"][3] / 255.0 - 0.1307) / 0.3081
    assert torch.allclose(image[0], torch.from_numpy(expected).float(), atol=1e-5)
    assert label == 3


def test_fashion_mnist_gz_in_root_resized(tmp_path, formats, monkeypatch):
    monkeypatch.setattr(_idx, "FASHION_MNIST_SYSTEM_DIRS", ())
    formats.write_mnist_like(tmp_path, gz=True)
    splits = load_dataset("fashion_mnist", root=tmp_path, resolution=32, val_fraction=0.2)
    assert splits.name == "fashion-mnist"
    assert splits.train.image_shape == (1, 32, 32)
    assert splits.class_names[0] == "T-shirt/top" and splits.class_names[-1] == "Ankle boot"
    assert splits.train.padding == 4 and splits.train.horizontal_flip
    assert not splits.val.augmented and not splits.test.augmented
    image, _ = splits.train[0]
    assert image.shape == (1, 32, 32) and image.dtype == torch.float32


def test_missing_files_message(tmp_path, formats):
    (tmp_path / "MNIST" / "raw").mkdir(parents=True)
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("mnist", root=tmp_path)
    assert isinstance(info.value, FileNotFoundError)
    message = str(info.value)
    for name in ("train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        assert name in message
    assert os.path.abspath(tmp_path / "MNIST" / "raw") in message
    assert os.path.abspath(tmp_path) in message
    assert "download=True" in message and "NACHOS_DATA" in message


def test_fashion_missing_names_debian_package(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere"
    monkeypatch.setattr(_idx, "FASHION_MNIST_SYSTEM_DIRS", (missing,))
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("fashion-mnist", root=tmp_path)
    message = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert os.path.abspath(tmp_path / "FashionMNIST" / "raw") in message
    assert f"{os.path.abspath(missing)} (no such folder)" in message


def test_corrupt_magic_in_dataset_folder(tmp_path, formats):
    folder = tmp_path / "MNIST" / "raw"
    formats.write_mnist_like(folder, gz=False)
    path = folder / "train-images-idx3-ubyte"
    data = bytearray(path.read_bytes())
    data[2] = 0x0D  # float data type: not what MNIST holds
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetCorruptError, match="magic"):
        load_dataset("mnist", root=tmp_path)


def test_label_count_mismatch_is_corrupt(tmp_path, formats):
    folder = tmp_path / "MNIST" / "raw"
    formats.write_mnist_like(folder, gz=False)
    formats.write_idx(folder / "train-labels-idx1-ubyte", np.zeros(5, np.uint8), gz=False)
    with pytest.raises(DatasetCorruptError, match="labels"):
        load_dataset("mnist", root=tmp_path)


def _md5_of_gunzipped(path: Path) -> str:
    with gzip.open(path, "rb") as handle:
        return hashlib.md5(handle.read()).hexdigest()


@pytest.mark.slow
@pytest.mark.skipif(
    not (DEBIAN_FASHION_MNIST / "train-labels-idx1-ubyte.gz").is_file(),
    reason="real Fashion-MNIST absent: apt-get install dataset-fashion-mnist installs it in "
    "/usr/share/datasets/fashion-mnist",
)
def test_real_fashion_mnist_from_debian_package(tmp_path):
    # the official md5s of the uncompressed label files
    assert (
        _md5_of_gunzipped(DEBIAN_FASHION_MNIST / "train-labels-idx1-ubyte.gz")
        == "9018921c3c673c538a1fc5bad174d6f9"
    )
    splits = load_dataset("fashion-mnist", root=tmp_path / "empty", train_subset=10_000)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (10_000, 6_000, 10_000)
    assert torch.equal(splits.train.targets.bincount(), torch.full((10,), 1_000))
    assert torch.equal(splits.test.targets.bincount(), torch.full((10,), 1_000))
    images = splits.test.images.float() / 255
    assert splits.test.images.shape == (10_000, 1, 32, 32)
    assert abs(images.mean().item() - 0.286) < 0.01
    x, y = splits.val[0]
    assert x.shape == (1, 32, 32) and 0 <= y < 10
