"""ONNX export of early-exit networks and the onnxruntime runtime against EarlyExitNetwork."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from optuna_nachos.config import EENNConfig
from optuna_nachos.deploy import MANIFEST_FILE, OnnxEENN, Preprocessing, export_onnx
from optuna_nachos.models import build_eenn

from .conftest import spread_head_confidences, spread_thresholds

pytest.importorskip("onnxruntime")

RESOLUTION = 16
MAX_LOGIT_DIFF = 1e-4


def _network(exit_stages=(1, 2, 4), seed=0):
    torch.manual_seed(seed)
    config = EENNConfig(
        depths=(2, 3, 2, 2, 2),
        kernel_sizes=((3, 5), (7, 3, 5), (3, 3), (5, 3), (3, 7)),
        expand_ratios=((3, 4), (6, 3, 4), (3, 3), (4, 6), (3, 6)),
        exit_stages=exit_stages,
        resolution=RESOLUTION,
    )
    model = build_eenn(config, num_classes=10).eval()
    return spread_head_confidences(model)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = _network()
    x = torch.randn(96, 3, RESOLUTION, RESOLUTION)
    thresholds = spread_thresholds(model, x, (0.7, 0.6, 0.5))
    out = tmp_path_factory.mktemp("onnx")
    manifest = export_onnx(
        out,
        model,
        thresholds,
        in_channels=3,
        preprocessing={"mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3]},
        metadata={"exit_macs": [1, 2, 3, 4]},
    )
    return model, x, thresholds, manifest


def _left_logits(model, x, exits):
    with torch.no_grad():
        logits = model(x).logits
    return torch.stack([logits[int(j)][i] for i, j in enumerate(exits)]).numpy()


def test_manifest_records_segments_thresholds_and_preprocessing(exported):
    model, _, thresholds, manifest = exported
    info = json.loads(manifest.read_text())
    assert manifest.name == MANIFEST_FILE
    assert info["thresholds"] == thresholds
    assert info["num_classes"] == 10 and info["input_shape"] == [3, RESOLUTION, RESOLUTION]
    assert info["preprocessing"] == {
        "mean": [0.5, 0.4, 0.3],
        "std": [0.2, 0.25, 0.3],
        "resolution": RESOLUTION,
        "channels": 3,
        "resize": "stretch",
    }
    assert info["exit_macs"] == [1, 2, 3, 4]
    assert [s["stages"] for s in info["segments"]] == [[1], [2], [3, 4], [5]]
    assert all((manifest.parent / s["file"]).is_file() for s in info["segments"])
    assert EENNConfig.from_dict(info["config"]) == model.config


def test_batched_predictions_and_exits_equal_predict(exported):
    model, x, thresholds, manifest = exported
    runtime = OnnxEENN(manifest.parent)
    expected = model.predict(x, thresholds)
    got = runtime.predict(x.numpy(), preprocess=False)
    assert np.array_equal(got.exit_indices, expected.exit_indices.numpy())
    assert np.array_equal(got.predictions, expected.predictions.numpy())
    counts = np.bincount(got.exit_indices, minlength=model.num_exits)
    assert (counts > 0).sum() >= 3, f"the samples should spread over the exits, got {counts}"
    difference = np.abs(got.logits - _left_logits(model, x, expected.exit_indices)).max()
    assert difference < MAX_LOGIT_DIFF


def test_batch_one_loop_equals_predict(exported):
    model, x, thresholds, manifest = exported
    runtime = OnnxEENN(manifest)
    for i in range(0, len(x), 7):
        sample = x[i : i + 1]
        expected = model.predict(sample, thresholds)
        got = runtime.predict(sample.numpy(), preprocess=False)
        assert got.exit_indices.tolist() == expected.exit_indices.tolist()
        assert got.predictions.tolist() == expected.predictions.tolist()


def test_threshold_overrides_and_run_to_exit(exported):
    model, x, _, manifest = exported
    runtime = OnnxEENN(manifest.parent)
    assert runtime.num_exits == model.num_exits
    last = runtime.predict(x.numpy(), [1.0] * 3, preprocess=False)
    assert (last.exit_indices == 3).all()
    with torch.no_grad():
        final = model.forward_backbone(x).numpy()
    assert np.abs(last.logits - final).max() < MAX_LOGIT_DIFF
    first = runtime.predict(x.numpy(), [0.0, 0.0, 0.0], preprocess=False)
    assert (first.exit_indices == 0).all()
    with torch.no_grad():
        head1 = model(x).logits[1].numpy()
    head1_onnx = runtime.run_to_exit(x.numpy(), 1, preprocess=False)
    assert np.abs(head1_onnx - head1).max() < MAX_LOGIT_DIFF


def test_preprocess_applies_the_manifest(exported):
    _, _, _, manifest = exported
    runtime = OnnxEENN(manifest.parent)
    pre = Preprocessing(
        mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3), resolution=RESOLUTION, channels=3
    )
    assert runtime.preprocessing == pre
    images = np.random.default_rng(0).integers(0, 256, (4, 3, RESOLUTION, RESOLUTION))
    images = images.astype(np.uint8)
    mean = np.array([0.5, 0.4, 0.3], dtype=np.float32).reshape(1, 3, 1, 1)
    std = np.array([0.2, 0.25, 0.3], dtype=np.float32).reshape(1, 3, 1, 1)
    expected = (images / 255.0 - mean) / std
    assert runtime.preprocess(images).dtype == np.float32
    assert np.allclose(runtime.preprocess(images), expected, atol=1e-5)
    assert np.allclose(runtime.preprocess(images.transpose(0, 2, 3, 1)), expected, atol=1e-5)
    small = np.zeros((1, 3, 8, 8), dtype=np.uint8)  # resized, as the native form does
    assert np.array_equal(runtime.preprocess(small), pre(small).numpy())


def test_old_manifests_keep_loading(exported, tmp_path):
    """Manifests written before the preprocessing was checked: free-form values, or none."""
    _, x, thresholds, manifest = exported
    info = json.loads(manifest.read_text())
    for entry in info["segments"]:
        (tmp_path / entry["file"]).write_bytes((manifest.parent / entry["file"]).read_bytes())
    info["preprocessing"] = {"mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3], "resize": 16}
    (tmp_path / MANIFEST_FILE).write_text(json.dumps(info))
    runtime = OnnxEENN(tmp_path)
    assert runtime.preprocessing.resize == "stretch"
    assert runtime.preprocessing.resolution == RESOLUTION
    info["preprocessing"] = {}  # what an export without preprocessing wrote
    (tmp_path / MANIFEST_FILE).write_text(json.dumps(info))
    runtime = OnnxEENN(tmp_path)
    assert runtime.preprocessing is None
    got = runtime.predict(x.numpy())  # normalized batches, as before
    assert (
        got.exit_indices.tolist()
        == OnnxEENN(manifest).predict(x.numpy(), preprocess=False).exit_indices.tolist()
    )
    with pytest.raises(ValueError, match="records no preprocessing"):
        runtime.predict(x.numpy(), preprocess=True)


def test_errors(tmp_path, exported):
    model, x, thresholds, manifest = exported
    runtime = OnnxEENN(manifest.parent)
    with pytest.raises(ValueError, match="3 thresholds"):
        runtime.predict(x.numpy(), [0.5], preprocess=False)
    with pytest.raises(ValueError, match="shape"):
        runtime.predict(np.zeros((1, 3, 8, 8), dtype=np.float32), preprocess=False)
    with pytest.raises(FileNotFoundError, match="export --format onnx"):
        OnnxEENN(tmp_path)
    with pytest.raises(ValueError, match="one per early exit"):
        export_onnx(tmp_path / "x", model, [0.5], in_channels=3)
    with pytest.raises(ValueError, match="one value per channel"):
        export_onnx(
            tmp_path / "x",
            model,
            thresholds,
            in_channels=3,
            preprocessing={"mean": [0], "std": [1]},
        )
    with pytest.raises(ValueError, match=r"missing \['std'\]"):
        export_onnx(tmp_path / "x", model, thresholds, in_channels=3, preprocessing={"mean": [0]})
    with pytest.raises(ValueError, match="segments read 16x16"):
        export_onnx(
            tmp_path / "x",
            model,
            thresholds,
            in_channels=3,
            preprocessing=Preprocessing(mean=(0,) * 3, std=(1,) * 3, resolution=32, channels=3),
        )


def test_network_with_one_early_exit(tmp_path):
    model = _network(exit_stages=(3,), seed=1)
    x = torch.randn(32, 3, RESOLUTION, RESOLUTION)
    thresholds = spread_thresholds(model, x, (0.5,))
    runtime = OnnxEENN(export_onnx(tmp_path, model, thresholds, in_channels=3))
    expected = model.predict(x, thresholds)
    got = runtime.predict(x.numpy())
    assert got.exit_indices.tolist() == expected.exit_indices.tolist()
    assert got.predictions.tolist() == expected.predictions.tolist()
    assert set(got.exit_indices.tolist()) == {0, 1}
