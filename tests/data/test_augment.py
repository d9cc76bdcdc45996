import numpy as np
import pytest
import torch
import torch.nn.functional as F

from optuna_nachos.data import TensorImageDataset, load_dataset
from optuna_nachos.data._transforms import augment_batch, resize_images


@pytest.fixture
def noisy_cifar(tmp_path, formats):
    formats.write_cifar10(tmp_path / "cifar-10-batches-py")
    return load_dataset("cifar10", root=tmp_path, val_fraction=0.2)


def test_train_items_vary_val_and_test_do_not(noisy_cifar):
    torch.manual_seed(0)
    draws = [noisy_cifar.train[0][0] for _ in range(12)]
    assert any(not torch.equal(draws[0], d) for d in draws[1:])
    for split in (noisy_cifar.val, noisy_cifar.test):
        first, label = split[0]
        again, label_again = split[0]
        assert torch.equal(first, again) and label == label_again
        assert torch.allclose(first, split.normalize(split.images[0]), atol=1e-5)


def test_augment_false_disables_augmentation(noisy_cifar, tmp_path):
    plain = load_dataset("cifar10", root=tmp_path, val_fraction=0.2, augment=False)
    assert not plain.train.augmented
    assert torch.equal(plain.train[1][0], plain.train[1][0])
    assert not noisy_cifar.train.without_augmentation().augmented


def test_augmented_items_are_crops_and_flips_of_the_image(noisy_cifar):
    train = noisy_cifar.train
    raw = train.images[0]
    padded = F.pad(raw, (4, 4, 4, 4))
    candidates = []
    for top in range(9):
        for left in range(9):
            crop = padded[:, top : top + 32, left : left + 32]
            candidates += [crop, crop.flip(-1)]
    candidates = torch.stack([train.normalize(c) for c in candidates])
    torch.manual_seed(1)
    for _ in range(10):
        item = train[0][0]
        assert (candidates - item).abs().amax((1, 2, 3)).min() < 1e-5


def test_augment_batch_geometry():
    images = torch.arange(2 * 1 * 4 * 4, dtype=torch.uint8).reshape(2, 1, 4, 4)
    assert torch.equal(augment_batch(images, padding=0, flip=False), images)
    generator = torch.Generator().manual_seed(0)
    flips = [augment_batch(images, padding=0, flip=True, generator=generator) for _ in range(20)]
    for out in flips:
        for b in range(2):
            assert torch.equal(out[b], images[b]) or torch.equal(out[b], images[b].flip(-1))
    assert any(torch.equal(out[0], images[0].flip(-1)) for out in flips)
    crops = [augment_batch(images, padding=1, flip=False, generator=generator) for _ in range(30)]
    for out in crops:
        assert out.shape == images.shape and out.dtype == torch.uint8
    # some crop shifts in zero padding at an edge, some leave the image as it is
    assert any((out[:, :, 0] == 0).all() and images[:, :, 0].any() for out in crops)
    assert any(torch.equal(out[0], images[0]) for out in crops)


def test_batched_fetch_matches_single_items(noisy_cifar):
    val = noisy_cifar.val
    batch = val.__getitems__([3, 0, 5])
    for (image, label), index in zip(batch, [3, 0, 5]):
        single, single_label = val[index]
        assert torch.equal(image, single) and label == single_label
    assert val[-1][1] == int(val.targets[-1])
    with pytest.raises(IndexError):
        val[len(val)]


def test_subset_and_targets(noisy_cifar):
    train = noisy_cifar.train
    subset = train.subset([4, 1])
    assert len(subset) == 2 and subset.targets.tolist() == train.targets[[4, 1]].tolist()
    assert subset.augmented == train.augmented
    assert torch.equal(subset.images, train.images[[4, 1]])


def test_resize_images_antialiased():
    images = torch.zeros((3, 1, 8, 8), dtype=torch.uint8)
    images[:, :, ::2] = 255  # stripes: antialiased downsampling averages them
    out = resize_images(images, 4)
    assert out.shape == (3, 1, 4, 4) and out.dtype == torch.uint8
    assert ((out[..., 1:3, :].int() - 128).abs() <= 1).all()  # edges: border effects
    assert resize_images(images, 8) is images


def test_dataset_validation():
    images = torch.zeros((4, 3, 8, 8), dtype=torch.uint8)
    targets = torch.zeros(4, dtype=torch.int64)
    with pytest.raises(ValueError, match="mean and std"):
        TensorImageDataset(images, targets, mean=(0.5,), std=(0.5,))
    with pytest.raises(IndexError):
        TensorImageDataset(images, targets, mean=(0.5,) * 3, std=(0.5,) * 3, indices=[7])
    dataset = TensorImageDataset(
        images, targets, mean=(0.5,) * 3, std=(0.5,) * 3, indices=np.array([2, 3])
    )
    assert len(dataset) == 2 and torch.allclose(dataset[0][0], torch.full((3, 8, 8), -1.0))
