import numpy as np
import pytest

from optuna_nachos.data import (
    DatasetArrays,
    UnknownDatasetError,
    _registry,
    get_dataset_loader,
    list_datasets,
    load_dataset,
    register_dataset,
)

BUILTIN = {
    "digits",
    "mnist",
    "fashion-mnist",
    "cifar10",
    "cifar100",
    "svhn",
    "cifar10-jpeg",
    "cinic10",
    "imagenette",
    "imagefolder",
}


@pytest.fixture
def registry(monkeypatch):
    """Registrations made in a test do not outlive it."""
    monkeypatch.setattr(_registry, "_DATASETS", _registry._DATASETS.copy())


def _toy_loader(root, *, resolution, download):
    rng = np.random.default_rng(0)
    return DatasetArrays(
        train_images=rng.integers(0, 256, (40, 3, 10, 10), dtype=np.uint8),
        train_labels=np.arange(40) % 4,
        test_images=rng.integers(0, 256, (8, 3, 10, 10), dtype=np.uint8),
        test_labels=np.arange(8) % 4,
        class_names=("a", "b", "c", "d"),
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        random_crop=True,
    )


def test_builtins_listed():
    assert set(list_datasets()) >= BUILTIN
    assert list_datasets() == sorted(list_datasets())


def test_unknown_name_lists_known_ones():
    with pytest.raises(UnknownDatasetError) as info:
        load_dataset("imagenet-22k")
    message = str(info.value)
    assert "imagenet-22k" in message
    for name in BUILTIN:
        assert name in message
    assert isinstance(info.value, KeyError)


def test_duplicate_registration(registry):
    register_dataset("toy", _toy_loader)
    with pytest.raises(ValueError, match="already registered"):
        register_dataset("toy", _toy_loader)
    with pytest.raises(ValueError, match="already registered"):
        register_dataset("TOY", _toy_loader)  # names are case-insensitive
    with pytest.raises(ValueError, match="already registered"):
        register_dataset("digits", _toy_loader)
    register_dataset("toy", _toy_loader, overwrite=True)
    assert get_dataset_loader("Toy") is _toy_loader


def test_bad_registrations(registry):
    with pytest.raises(ValueError, match=":"):
        register_dataset("a:b", _toy_loader)
    with pytest.raises(ValueError):
        register_dataset("  ", _toy_loader)
    with pytest.raises(TypeError):
        register_dataset("toy", "not callable")


def test_user_registered_dataset_loads(registry, tmp_path):
    register_dataset("my_toy", _toy_loader)
    assert "my-toy" in list_datasets()
    splits = load_dataset("my-toy", root=tmp_path, resolution=16, val_fraction=0.25)
    assert splits.name == "my-toy"
    assert (len(splits.train), len(splits.val), len(splits.test)) == (30, 10, 8)
    assert splits.class_names == ("a", "b", "c", "d")
    assert splits.train.image_shape == (3, 16, 16)  # resized from 10x10
    assert splits.train.padding == 2 and not splits.train.horizontal_flip
    assert splits.std == (0.25, 0.25, 0.25)


def test_loader_must_return_dataset_arrays(registry, tmp_path):
    register_dataset("broken", lambda root, *, resolution, download: {"x": 1})
    with pytest.raises(TypeError, match="DatasetArrays"):
        load_dataset("broken", root=tmp_path)


def test_dataset_arrays_validation():
    images = np.zeros((4, 1, 5, 5), np.uint8)
    with pytest.raises(ValueError, match="uint8"):
        DatasetArrays(
            images.astype(np.float32), [0, 1, 0, 1], None, None, ("a", "b"), (0.5,), (0.5,)
        )
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        DatasetArrays(images, [0, 1, 2, 1], None, None, ("a", "b"), (0.5,), (0.5,))
    with pytest.raises(ValueError, match="channels-last"):
        DatasetArrays(np.zeros((4, 5, 5, 3), np.uint8), [0] * 4, None, None, ("a",), 0.5, 0.5)
    arrays = DatasetArrays(images[:, 0], [0, 1, 0, 1], None, None, ["a", "b"], 0.5, 0.5)
    assert arrays.train_images.shape == (4, 1, 5, 5) and arrays.class_names == ("a", "b")
