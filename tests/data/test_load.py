import os

import pytest
import torch

from optuna_nachos.data import _load, clear_cache, load_dataset, make_loader


@pytest.mark.parametrize("fraction", [0, 0.0, 1, 1.5, -0.1])
def test_val_fraction_must_be_strictly_between_0_and_1(fraction):
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        load_dataset("digits", val_fraction=fraction)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"resolution": 0}, ValueError),
        ({"resolution": 32.0}, TypeError),
        ({"seed": -1}, ValueError),
        ({"train_subset": 0}, ValueError),
        ({"train_subset": True}, TypeError),
        ({"val_fraction": "0.1"}, TypeError),
    ],
)
def test_bad_arguments(kwargs, error):
    with pytest.raises(error):
        load_dataset("digits", **kwargs)


def test_root_from_argument_env_var_and_default(tmp_path, formats, monkeypatch):
    formats.write_mnist_like(tmp_path / "env" / "MNIST" / "raw", gz=True, n_train=40)
    formats.write_mnist_like(tmp_path / "cwd" / "data" / "MNIST" / "raw", gz=True, n_train=50)
    formats.write_mnist_like(tmp_path / "arg" / "MNIST" / "raw", gz=True, n_train=30)
    monkeypatch.chdir(tmp_path / "cwd")
    assert _total(load_dataset("mnist", val_fraction=0.5)) == 50  # ./data
    monkeypatch.setenv("NACHOS_DATA", os.fspath(tmp_path / "env"))
    assert _total(load_dataset("mnist", val_fraction=0.5)) == 40  # $NACHOS_DATA
    assert _total(load_dataset("mnist", root=tmp_path / "arg", val_fraction=0.5)) == 30  # root wins


def _total(splits):
    return len(splits.train) + len(splits.val)


def test_decoded_once_per_process(tmp_path, monkeypatch):
    calls = []
    loader = _load.get_dataset_loader("digits")

    def counting(*args, **kwargs):
        calls.append(kwargs["resolution"])
        return loader(*args, **kwargs)

    monkeypatch.setattr(_load, "get_dataset_loader", lambda name: counting)
    a = load_dataset("digits", root=tmp_path, seed=0)
    b = load_dataset("digits", root=tmp_path, seed=1, train_subset=100)
    load_dataset("digits", root=tmp_path, resolution=8)
    assert calls == [32, 8]
    assert a.train.images.data_ptr() != b.train.images.data_ptr()  # gathered copies
    clear_cache()
    load_dataset("digits", root=tmp_path)
    assert calls == [32, 8, 32]


def test_disk_cache_round_trip(tmp_path, formats):
    formats.write_cifar10(tmp_path / "data" / "cifar-10-batches-py")
    cache = tmp_path / "cache"
    kwargs = {"root": tmp_path / "data", "resolution": 16, "val_fraction": 0.2, "cache_dir": cache}
    first = load_dataset("cifar10", **kwargs)
    files = list(cache.glob("*.npz"))
    assert len(files) == 1 and files[0].name.startswith("cifar10-16px-")
    assert not list((tmp_path / "data").rglob("*.npz"))  # nothing written into the dataset
    clear_cache()
    (tmp_path / "data" / "cifar-10-batches-py" / "data_batch_1").unlink()  # cache suffices
    second = load_dataset("cifar10", **kwargs)
    assert torch.equal(first.test.images, second.test.images)
    assert torch.equal(first.train.targets, second.train.targets)
    assert second.class_names == first.class_names and second.mean == first.mean
    assert second.train.horizontal_flip


def test_make_loader_order_is_seeded():
    splits = load_dataset("digits")

    def labels(seed):
        loader = make_loader(splits.val, batch_size=32, shuffle=True, seed=seed)
        return torch.cat([y for _, y in loader])

    assert torch.equal(labels(5), labels(5))
    assert not torch.equal(labels(5), labels(6))
    ordered = make_loader(splits.test, batch_size=100, shuffle=False, seed=0, drop_last=True)
    batches = list(ordered)
    assert len(batches) == 3
    x, y = batches[0]
    assert x.shape == (100, 1, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.equal(y, splits.test.targets[:100])
    with pytest.raises(ValueError):
        make_loader(splits.test, batch_size=0, shuffle=False, seed=0)


def test_worker_processes_give_the_same_batches():
    import pickle

    splits = load_dataset("digits")
    copy = pickle.loads(pickle.dumps(splits.val))
    assert torch.equal(copy[7][0], splits.val[7][0])
    in_process = make_loader(splits.val, batch_size=50, shuffle=True, seed=2)
    workers = make_loader(splits.val, batch_size=50, shuffle=True, seed=2, num_workers=2)
    for (x0, y0), (x1, y1) in zip(in_process, workers, strict=True):
        assert torch.equal(x0, x1) and torch.equal(y0, y1)
    # the tensors now live in shared memory: items must still be read correctly
    assert torch.equal(splits.val[7][0], copy[7][0])
