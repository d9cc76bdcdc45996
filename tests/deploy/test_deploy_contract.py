"""One input contract for every form of a deployed network: raw images through the recorded
preprocessing by default, a normalized batch with ``preprocess=False``, and a normalized batch
passed as raw images refused."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch

from optuna_nachos.config import EENNConfig
from optuna_nachos.deploy import (
    OnnxEENN,
    Preprocessing,
    export_eenn,
    export_onnx,
    load_eenn,
    save_eenn,
)
from optuna_nachos.models import build_eenn

from .conftest import spread_head_confidences, spread_thresholds

pytest.importorskip("onnxruntime")

RESOLUTION = 16
PRE = Preprocessing(mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3), resolution=RESOLUTION, channels=3)


def _network() -> torch.nn.Module:
    torch.manual_seed(0)
    config = EENNConfig(
        depths=(2, 2, 2, 2, 2),
        kernel_sizes=((3, 5), (3, 3), (5, 3), (3, 3), (3, 5)),
        expand_ratios=((3, 4), (3, 3), (4, 3), (3, 3), (3, 4)),
        exit_stages=(1, 2, 4),
        resolution=RESOLUTION,
    )
    model = build_eenn(config, num_classes=10).eval()
    return spread_head_confidences(model)


@pytest.fixture(scope="module")
def forms(tmp_path_factory):
    """The same network as a native export and as ONNX segments, with the same raw batch."""
    model = _network()
    raw = torch.randint(0, 256, (64, 3, RESOLUTION, RESOLUTION), dtype=torch.uint8)
    thresholds = spread_thresholds(model, PRE(raw))
    folder = tmp_path_factory.mktemp("forms")
    export_eenn(folder / "native", model, thresholds, in_channels=3, preprocessing=PRE)
    export_onnx(folder / "onnx", model, thresholds, in_channels=3, preprocessing=PRE)
    return load_eenn(folder / "native"), OnnxEENN(folder / "onnx"), raw


def _same(native, onnx) -> None:
    assert np.array_equal(onnx.exit_indices, native.exit_indices.numpy())
    assert np.array_equal(onnx.predictions, native.predictions.numpy())


def test_the_same_raw_batch_gives_the_same_predictions_and_exits(forms):
    native, onnx, raw = forms
    assert native.preprocessing == onnx.preprocessing == PRE
    expected = native.predict(raw)
    assert len(set(expected.exit_indices.tolist())) >= 3, "the samples should spread"
    _same(expected, onnx.predict(raw.numpy()))
    _same(expected, onnx.predict(raw.numpy().transpose(0, 2, 3, 1)))  # channels last
    _same(expected, onnx.predict(list(raw)))  # a list of (C, H, W) images
    larger = torch.randint(0, 256, (16, 3, 24, 24), dtype=torch.uint8)  # resized by both
    _same(native.predict(larger), onnx.predict(larger.numpy()))
    floats = torch.rand(16, 3, RESOLUTION, RESOLUTION)  # raw floats in [0, 1]
    _same(native.predict(floats), onnx.predict(floats.numpy()))


def test_a_normalized_batch_runs_with_preprocess_false(forms):
    native, onnx, raw = forms
    normalized = native.preprocess(raw)
    assert np.array_equal(onnx.preprocess(raw.numpy()), normalized.numpy())
    expected = native.predict(raw)
    _same(expected, native.predict(normalized, preprocess=False))
    _same(expected, onnx.predict(normalized.numpy(), preprocess=False))


@pytest.mark.parametrize("form", ["native", "onnx"])
def test_a_normalized_batch_passed_as_raw_images_is_refused(forms, form):
    native, onnx, raw = forms
    normalized = native.preprocess(raw)
    low, high = float(normalized.min()), float(normalized.max())
    run = native.predict if form == "native" else onnx.predict
    batch = normalized if form == "native" else normalized.numpy()
    message = rf"floats from {low:.4g} to {high:.4g}.*predict\(x, preprocess=False\)"
    with pytest.raises(ValueError, match=message):
        run(batch)


@pytest.mark.parametrize("form", ["native", "onnx"])
def test_rank_and_channels_are_checked(forms, form):
    native, onnx, _ = forms
    run = native.predict if form == "native" else onnx.predict
    with pytest.raises(ValueError, match=r"\(H, W\), \(C, H, W\) or \(N, C, H, W\)"):
        run(np.zeros((1, 1, 3, RESOLUTION, RESOLUTION), dtype=np.uint8))
    with pytest.raises(ValueError, match="cannot convert images with 2 channels"):
        run(np.zeros((1, 2, RESOLUTION, RESOLUTION), dtype=np.uint8))


def test_without_recorded_preprocessing_both_take_normalized_batches(tmp_path):
    model = _network()
    x = torch.randn(32, 3, RESOLUTION, RESOLUTION)
    thresholds = spread_thresholds(model, x)
    native = load_eenn(export_eenn(tmp_path / "native", model, thresholds, in_channels=3))
    onnx = OnnxEENN(export_onnx(tmp_path / "onnx", model, thresholds, in_channels=3))
    assert native.preprocessing is None and onnx.preprocessing is None
    _same(native.predict(x), onnx.predict(x.numpy()))
    _same(model.predict(x, thresholds), onnx.predict(x.numpy()))
    with pytest.raises(ValueError, match="records no preprocessing"):
        native.predict(x, preprocess=True)
    with pytest.raises(ValueError, match="records no preprocessing"):
        onnx.predict(x.numpy(), preprocess=True)


def test_saved_files_record_no_module_paths(tmp_path):
    """Bundles hold plain containers and tensors only, so moving the code that wrote them
    does not stop them from loading."""
    model = _network()
    bundle = save_eenn(
        tmp_path / "eenn.pt",
        model,
        [0.5] * 3,
        in_channels=3,
        metadata={"preprocessing": PRE.to_dict(), "metrics": {"accuracy": 0.5}},
    )
    folder = export_eenn(tmp_path / "folder", model, [0.5] * 3, in_channels=3, preprocessing=PRE)
    for path in (bundle, folder / "weights.pt"):
        with zipfile.ZipFile(path) as archive:
            pickles = [archive.read(n) for n in archive.namelist() if n.endswith(".pkl")]
        assert pickles and not any(b"optuna_nachos" in data for data in pickles)
        torch.load(path, weights_only=True)  # plain containers and tensors only
    assert load_eenn(bundle).preprocessing == PRE
