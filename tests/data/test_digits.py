import numpy as np
import pytest
import torch

from optuna_nachos.data import load_dataset


def _ids(split):
    return set(split.indices.tolist())


def test_digits_end_to_end():
    splits = load_dataset("digits", resolution=16, seed=0)
    assert splits.num_classes == 10 and splits.in_channels == 1 and splits.resolution == 16
    assert splits.class_names == tuple(str(d) for d in range(10))
    # 20 % fixed test split (ceil(0.2 * 1797) = 360), then 10 % of the rest as validation
    assert (len(splits.train), len(splits.val), len(splits.test)) == (1293, 144, 360)
    image, label = splits.train[0]
    assert image.shape == (1, 16, 16) and image.dtype == torch.float32
    assert isinstance(label, int)
    assert not splits.train.augmented
    # train, val and test draw from the same 1,797 images without overlap
    train, val, test = _ids(splits.train), _ids(splits.val), _ids(splits.test)
    assert not train & val and not train & test and not val & test
    assert len(train | val | test) == 1797


def _assert_stratified(part: torch.Tensor, whole: torch.Tensor) -> None:
    share = whole.bincount(minlength=10).double() / len(whole)
    counts = part.bincount(minlength=10).double()
    # each class's share of the part is its share of the whole, up to one image
    assert torch.all((counts - share * len(part)).abs() <= 1.0 + 1e-9)


def test_digits_splits_are_stratified():
    splits = load_dataset("digits", val_fraction=0.2)
    pool = torch.cat([splits.train.targets, splits.val.targets])
    everything = torch.cat([pool, splits.test.targets])
    _assert_stratified(splits.test.targets, everything)
    _assert_stratified(splits.val.targets, pool)
    assert len(splits.val) == 288  # ceil(0.2 * 1437)


def test_digits_reproducible_for_a_seed():
    a = load_dataset("digits", seed=3)
    b = load_dataset("digits", seed=3)
    c = load_dataset("digits", seed=4)
    assert torch.equal(a.val.indices, b.val.indices)
    assert torch.equal(a.train.indices, b.train.indices)
    assert not torch.equal(a.val.indices, c.val.indices)
    # the test split does not depend on the seed
    assert torch.equal(a.test.indices, c.test.indices)
    assert torch.equal(a.val[0][0], b.val[0][0])


def test_digits_pixels_scaled_and_resized():
    from sklearn.datasets import load_digits

    splits = load_dataset("digits", resolution=8)
    raw = load_digits().images
    first = splits.test.indices[0].item()
    np.testing.assert_array_equal(
        splits.test.images[0, 0].numpy(), np.round(raw[first] * 255 / 16).astype(np.uint8)
    )
    up = load_dataset("digits", resolution=32)
    assert up.test.images.shape == (360, 1, 32, 32)


def test_train_subset_is_stratified_and_val_unchanged():
    full = load_dataset("digits", seed=1)
    small = load_dataset("digits", seed=1, train_subset=200)
    assert len(small.train) == 200
    assert small.train.targets.bincount().tolist() == [20] * 10
    assert _ids(small.train) <= _ids(full.train)
    assert torch.equal(small.val.indices, full.val.indices)
    with pytest.raises(ValueError, match="exceeds"):
        load_dataset("digits", train_subset=5000)
    with pytest.raises(ValueError, match="stratified"):
        load_dataset("digits", train_subset=5)  # fewer images than classes
