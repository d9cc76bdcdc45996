import os
import tarfile

import numpy as np
import pytest
import torch

from optuna_nachos.data import (
    DatasetCorruptError,
    DatasetNotFoundError,
    load_dataset,
)
from optuna_nachos.data._cifar import (
    CIFAR10_CLASSES,
    CIFAR10_MEAN,
    CIFAR10_STD,
    decode_jpegs,
    load_cifar10,
    load_cifar10_jpeg,
)


def test_cifar10_pickled_batches(tmp_path, formats, nachos_log):
    written = formats.write_cifar10(tmp_path / "cifar-10-batches-py")
    arrays = load_cifar10(tmp_path, resolution=32, download=False)
    assert "2 of 5 training batches" in nachos_log.text
    np.testing.assert_array_equal(arrays.train_images.numpy(), written["train_x"])
    np.testing.assert_array_equal(arrays.train_labels.numpy(), written["train_y"])
    np.testing.assert_array_equal(arrays.test_images.numpy(), written["test_x"])
    assert arrays.class_names == CIFAR10_CLASSES

    splits = load_dataset("cifar10", root=tmp_path, val_fraction=0.2, seed=1)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (48, 12, 20)
    assert splits.in_channels == 3 and splits.num_classes == 10
    assert splits.mean == CIFAR10_MEAN and splits.std == CIFAR10_STD
    image, label = splits.test[5]
    expected = (written["test_x"][5] / 255.0 - np.array(CIFAR10_MEAN)[:, None, None]) / np.array(
        CIFAR10_STD
    )[:, None, None]
    assert torch.allclose(image, torch.from_numpy(expected).float(), atol=1e-5)
    assert label == written["test_y"][5]


def test_cifar10_in_named_subfolder_and_missing(tmp_path, formats):
    formats.write_cifar10(tmp_path / "cifar10" / "cifar-10-batches-py", batch_sizes=(20,))
    assert len(load_dataset("cifar10", root=tmp_path, val_fraction=0.5).test) == 20
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("cifar10", root=tmp_path / "other")
    message = str(info.value)
    assert "cifar-10-batches-py/data_batch_1" in message and "test_batch" in message
    assert os.path.abspath(tmp_path / "other" / "cifar-10-batches-py") in message
    assert "download=True" in message


def test_cifar10_corrupt_batch(tmp_path, formats):
    formats.write_cifar10(tmp_path / "cifar-10-batches-py")
    (tmp_path / "cifar-10-batches-py" / "data_batch_2").write_bytes(b"not a pickle")
    with pytest.raises(DatasetCorruptError, match="data_batch_2"):
        load_dataset("cifar10", root=tmp_path)


def test_cifar100_fine_labels(tmp_path, formats):
    formats.write_cifar100(tmp_path / "cifar-100-python")
    splits = load_dataset("cifar100", root=tmp_path, val_fraction=0.25)
    assert splits.class_names == ("apple", "bear", "cloud", "dolphin", "elephant")
    assert (len(splits.train), len(splits.val), len(splits.test)) == (30, 10, 10)
    assert splits.train.targets.bincount().tolist() == [6] * 5


def test_cifar10_jpeg_restores_original_order(tmp_path, formats):
    labels = formats.write_cifar10_jpeg(tmp_path / "cifar10-jpeg")
    arrays = load_cifar10_jpeg(tmp_path, resolution=32, download=False)
    assert arrays.train_images.shape == (40, 3, 32, 32)
    assert arrays.test_images.shape == (20, 3, 32, 32)
    np.testing.assert_array_equal(arrays.train_labels.numpy(), labels["train"])
    for split, images in (("train", arrays.train_images), ("test", arrays.test_images)):
        red = images[:, 0].float().mean((1, 2)).numpy()
        green = images[:, 1].float().mean((1, 2)).numpy()
        np.testing.assert_allclose(red, 6 * np.arange(len(images)), atol=3)
        np.testing.assert_allclose(green, 20 * labels[split], atol=3)


def test_cifar10_jpeg_root_holding_archive_directly(tmp_path, formats):
    formats.write_cifar10_jpeg(tmp_path)
    splits = load_dataset("cifar10-jpeg", root=tmp_path, val_fraction=0.25)
    assert splits.name == "cifar10-jpeg" and splits.class_names == CIFAR10_CLASSES
    assert (len(splits.train), len(splits.val), len(splits.test)) == (30, 10, 20)
    assert splits.train.padding == 4 and splits.train.horizontal_flip


def test_jpeg_decoders_agree(tmp_path, formats):
    formats.write_cifar10_jpeg(tmp_path, n_train=10, n_test=10)
    with tarfile.open(tmp_path / "cifar10-jpeg-images.tar.gz") as tar:
        blobs = [tar.extractfile(m).read() for m in tar if m.isfile()]
    fast = decode_jpegs(blobs)
    pillow = decode_jpegs(blobs, use_torchvision=False)
    assert len(fast) == len(pillow) == 20
    for a, b in zip(fast, pillow):
        assert a.shape == (3, 32, 32)
        np.testing.assert_array_equal(a, b)


def test_cifar10_jpeg_missing_and_inconsistent(tmp_path, formats):
    formats.write_cifar10_jpeg(tmp_path)
    (tmp_path / "cifar10_labels_in_original_order.npz").unlink()
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("cifar10-jpeg", root=tmp_path)
    message = str(info.value)
    assert "cifar10-jpeg-images.tar.gz" in message
    assert "cifar10_labels_in_original_order.npz" in message
    assert os.path.abspath(tmp_path / "cifar10-jpeg") in message

    np.savez(
        tmp_path / "cifar10_labels_in_original_order.npz",
        y_train=np.zeros(40, np.uint8),
        y_test=np.arange(20, dtype=np.uint8) % 10,
    )
    with pytest.raises(DatasetCorruptError, match="airplane"):
        load_dataset("cifar10-jpeg", root=tmp_path)


class _RunsCode:
    """Unpickles by calling a function: what a crafted batch file does to run a command."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_crafted_cifar_batch_runs_no_code(tmp_path, formats):
    import pickle

    folder = tmp_path / "cifar-10-batches-py"
    formats.write_cifar10(folder)
    marker = tmp_path / "code-ran"
    crafted = {"data": _RunsCode(marker), "labels": [0]}
    (folder / "data_batch_1").write_bytes(pickle.dumps(crafted, protocol=2))
    with pytest.raises(DatasetCorruptError, match=r"data_batch_1.*refusing to load posix\.mkdir"):
        load_cifar10(tmp_path, resolution=32, download=False)
    assert not marker.exists()
