import numpy as np
import pytest
import torch

from optuna_nachos.data import DatasetCorruptError, DatasetNotFoundError, load_dataset
from optuna_nachos.data._folders import IMAGENET_MEAN, decode_image_file


def test_imagefolder_train_test(tmp_path, formats):
    formats.write_image_folder(tmp_path / "train", {"cat": 10, "dog": 10, "emu": 10})
    formats.write_image_folder(tmp_path / "test", {"cat": 2, "dog": 3, "emu": 1}, seed=1)
    splits = load_dataset("imagefolder", root=tmp_path, resolution=16, val_fraction=0.3)
    assert splits.class_names == ("cat", "dog", "emu")
    assert splits.in_channels == 3 and splits.resolution == 16
    assert (len(splits.train), len(splits.val), len(splits.test)) == (21, 9, 6)
    assert splits.test.targets.tolist() == [0, 0, 1, 1, 1, 2]
    assert splits.mean == IMAGENET_MEAN
    assert splits.train.image_shape == (3, 16, 16)
    assert splits.train.padding == 2 and splits.train.horizontal_flip


def test_imagefolder_name_with_path_and_val_fallback(tmp_path, formats):
    folder = tmp_path / "pets"
    formats.write_image_folder(folder / "train", {"a": 6, "b": 6}, ext=".jpg")
    formats.write_image_folder(folder / "val", {"a": 2, "b": 2}, ext=".jpg")
    splits = load_dataset(f"imagefolder:{folder}", resolution=12, val_fraction=0.5)
    assert splits.name == f"imagefolder:{folder}"
    assert len(splits.test) == 4 and splits.class_names == ("a", "b")
    with pytest.raises(ValueError, match="give one"):
        load_dataset(f"imagefolder:{folder}", root=tmp_path)


def test_imagefolder_errors(tmp_path, formats):
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("imagefolder", root=tmp_path)
    assert "train/<class>/<image>" in str(info.value)
    assert "test/<class>/<image> or val/<class>/<image>" in str(info.value)
    formats.write_image_folder(tmp_path / "train", {"a": 4, "b": 4})
    formats.write_image_folder(tmp_path / "test", {"a": 1, "zebra": 1})
    with pytest.raises(DatasetCorruptError, match="zebra"):
        load_dataset("imagefolder", root=tmp_path)
    (tmp_path / "test" / "zebra" / "000.png").unlink()
    (tmp_path / "test" / "zebra").rmdir()
    (tmp_path / "test" / "a" / "000.png").write_bytes(b"not an image")
    with pytest.raises(DatasetCorruptError, match="000.png"):
        load_dataset("imagefolder", root=tmp_path)


def test_decode_resizes_shorter_side_and_center_crops(tmp_path):
    from PIL import Image

    pixels = np.zeros((20, 40, 3), dtype=np.uint8)  # height 20, width 40
    pixels[:, 8:32] = 255  # white center, black sides
    Image.fromarray(pixels).save(tmp_path / "wide.png")
    out = decode_image_file(tmp_path / "wide.png", resolution=10)
    assert out.shape == (3, 10, 10) and out.dtype == torch.uint8
    assert (out >= 250).all()  # the center 20x20 block, scaled to 10x10: sides cut off


def test_cinic10_uses_train_and_test(tmp_path, formats):
    root = tmp_path / "cinic10"
    classes = {"airplane": 4, "automobile": 4}
    formats.write_image_folder(root / "train", classes, size=(32, 32))
    formats.write_image_folder(root / "valid", {"airplane": 3, "automobile": 3}, size=(32, 32))
    formats.write_image_folder(root / "test", {"airplane": 2, "automobile": 2}, size=(32, 32))
    splits = load_dataset("cinic10", root=tmp_path, val_fraction=0.25)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (6, 2, 4)
    assert splits.class_names == ("airplane", "automobile")
    with pytest.raises(DatasetNotFoundError, match="datashare.ed.ac.uk"):
        load_dataset("cinic10", root=tmp_path / "missing")


def test_imagenette_val_is_test_and_class_names(tmp_path, formats):
    root = tmp_path / "imagenette2-320"
    formats.write_image_folder(root / "train", {"n01440764": 4, "n02102040": 4}, size=(40, 30))
    formats.write_image_folder(root / "val", {"n01440764": 2, "n02102040": 1}, size=(30, 40))
    splits = load_dataset("imagenette", root=tmp_path, resolution=24, val_fraction=0.25)
    assert splits.class_names == ("tench", "English springer")
    assert len(splits.test) == 3 and splits.test.image_shape == (3, 24, 24)
    assert splits.train.padding == 3
