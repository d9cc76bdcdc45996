import numpy as np
import pytest

from optuna_nachos.data import DatasetCorruptError, DatasetNotFoundError, load_dataset


def test_svhn_mat_files(tmp_path, formats):
    written = formats.write_svhn(tmp_path / "svhn")
    splits = load_dataset("svhn", root=tmp_path, val_fraction=1 / 3)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (20, 10, 10)
    assert splits.class_names == tuple(str(d) for d in range(10))
    # digit 0 is stored as label 10
    np.testing.assert_array_equal(splits.test.targets.numpy(), (np.arange(10) + 1) % 10)
    # (H, W, C, N) in the file -> (N, C, H, W)
    np.testing.assert_array_equal(
        splits.test.images.numpy(), written["test_x"].transpose(3, 2, 0, 1)
    )
    assert splits.train.padding == 4 and not splits.train.horizontal_flip


def test_svhn_missing_and_corrupt(tmp_path, formats):
    with pytest.raises(DatasetNotFoundError, match="train_32x32.mat"):
        load_dataset("svhn", root=tmp_path)
    formats.write_svhn(tmp_path)
    (tmp_path / "test_32x32.mat").write_bytes(b"garbage")
    with pytest.raises(DatasetCorruptError, match="test_32x32.mat"):
        load_dataset("svhn", root=tmp_path)
