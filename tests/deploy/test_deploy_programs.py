"""Export and reload of any early-exit network, with its preprocessing."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

import optuna_nachos as nachos
from optuna_nachos.data import load_dataset
from optuna_nachos.deploy import Preprocessing


def _resnet_network(in_channels: int = 1, size: int = 16) -> nachos.EarlyExitNetwork:
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10)
    model.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
    space = nachos.BackboneExitSpace(
        nachos.cut_stages(model, input_shape=(in_channels, size, size)), num_classes=10
    )
    config = nachos.ExitsConfig(exit_stages=(1, 2), exit_heads=("mbconv", "pool_linear"))
    return space.build(config).eval()


def test_preprocessing_follows_the_data_layer_exactly():
    native = load_dataset("digits", resolution=8, augment=False)
    resized = load_dataset("digits", resolution=16, augment=False)
    pre = Preprocessing.from_dataset(resized)
    assert pre.to_dict() == {
        "mean": list(resized.mean),
        "std": list(resized.std),
        "resolution": 16,
        "channels": 1,
        "resize": "stretch",
    }
    raw = native.test.images[:20]  # uint8 (N, 1, 8, 8), as decoded
    expected = torch.stack([resized.test[i][0] for i in range(20)])
    assert torch.equal(pre(raw), expected)
    assert torch.equal(pre(list(raw)), expected)  # a list of (C, H, W) images
    assert torch.equal(pre(raw[0, 0]), expected[:1])  # one (H, W) image


def test_preprocessing_converts_channels_and_pil_images():
    from PIL import Image

    pre = Preprocessing(mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), resolution=8, channels=3)
    grey = torch.randint(0, 256, (1, 6, 6), dtype=torch.uint8)
    out = pre(grey)
    assert out.shape == (1, 3, 8, 8)
    assert torch.equal(out[:, 0], out[:, 1])
    rgb = np.random.default_rng(0).integers(0, 256, (6, 6, 3), dtype=np.uint8)
    from_pil = pre(Image.fromarray(rgb))
    from_tensor = pre(torch.from_numpy(rgb).permute(2, 0, 1))
    assert torch.equal(from_pil, from_tensor)
    floats = pre(torch.rand(2, 3, 8, 8))
    assert floats.dtype == torch.float32 and floats.shape == (2, 3, 8, 8)
    grey_pre = Preprocessing(mean=(0.5,), std=(0.5,), resolution=8, channels=1)
    assert grey_pre(Image.fromarray(rgb)).shape == (1, 1, 8, 8)
    with pytest.raises(ValueError, match="one value per channel"):
        Preprocessing(mean=(0.5,), std=(0.5, 0.5), resolution=8, channels=1)
    with pytest.raises(TypeError, match="PIL image"):
        pre("an image")


def test_any_network_exports_and_reloads_without_its_code(tmp_path):
    network = _resnet_network()
    pre = Preprocessing(mean=(0.3,), std=(0.3,), resolution=16, channels=1)
    out = nachos.export_eenn(tmp_path / "eenn", network, [0.5, 0.6], preprocessing=pre)
    info = json.loads((out / "eenn.json").read_text())
    assert info["architecture"]["kind"] == "programs"
    assert info["exit_macs"] == nachos.exit_macs(network)
    assert info["exits_config"]["exit_heads"] == ["mbconv", "pool_linear"]
    assert info["preprocessing"] == pre.to_dict()
    deployed = nachos.load_eenn(out)
    assert deployed.preprocessing == pre
    raw = torch.randint(0, 256, (7, 1, 12, 12), dtype=torch.uint8)
    got = deployed.predict(raw)
    expected = network.predict(pre(raw), [0.5, 0.6])
    assert torch.equal(got.predictions, expected.predictions)
    assert torch.equal(got.exit_indices, expected.exit_indices)
    same = deployed.predict(pre(raw), preprocess=False)
    assert torch.equal(same.predictions, expected.predictions)
    with pytest.raises(ValueError, match="preprocess=False"):  # normalized, passed as raw
        deployed.predict(pre(raw))
    # the state dict is kept under the network's own names, for users who rebuild it
    state = torch.load(out / "weights.pt", weights_only=True)
    assert state.keys() == network.state_dict().keys()


def test_a_failed_export_leaves_nothing_behind(tmp_path):
    class Branchy(nn.Module):  # data-dependent control flow: torch.export refuses it
        def forward(self, x):
            return x * 2 if x.sum() > 0 else x

    network = nachos.attach_exits(
        [nn.Sequential(nn.Conv2d(1, 4, 3, padding=1)), Branchy()],
        nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)),
        exit_after=[0],
        num_classes=2,
        input_shape=(1, 8, 8),
    )
    with pytest.raises(RuntimeError, match="torch.export could not trace segment_1"):
        nachos.export_eenn(tmp_path / "eenn", network, [0.5])
    assert list(tmp_path.iterdir()) == []
    existing = tmp_path / "kept"
    existing.mkdir()
    (existing / "notes.txt").write_text("mine")
    with pytest.raises(RuntimeError):
        nachos.export_eenn(existing, network, [0.5])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept"]
    assert sorted(p.name for p in existing.iterdir()) == ["notes.txt"]


def test_config_networks_keep_their_format_and_gain_preprocessing(tmp_path):
    config = nachos.EENNConfig(
        depths=(1,) * 5, kernel_sizes=((3,),) * 5, expand_ratios=((3,),) * 5, resolution=16
    )
    torch.manual_seed(0)
    network = nachos.build_eenn(config, num_classes=3, in_channels=1).eval()
    pre = Preprocessing(mean=(0.1,), std=(0.2,), resolution=16, channels=1)
    out = nachos.export_eenn(
        tmp_path / "eenn", network, [0.5] * 4, metadata={"preprocessing": pre.to_dict()}
    )
    assert not (out / "programs").exists()
    deployed = nachos.load_eenn(out)
    assert deployed.config == config and deployed.preprocessing == pre
    assert list(deployed.exit_macs) == nachos.exit_macs(config, num_classes=3, in_channels=1)
    raw = torch.randint(0, 256, (4, 1, 16, 16), dtype=torch.uint8)
    assert torch.equal(
        deployed.predict(raw).predictions, network.predict(pre(raw), [0.5] * 4).predictions
    )
    with pytest.raises(ValueError, match="channels"):
        nachos.export_eenn(
            tmp_path / "bad",
            network,
            [0.5] * 4,
            preprocessing=Preprocessing(mean=(0,) * 3, std=(1,) * 3, resolution=16, channels=3),
        )
    with pytest.raises(ValueError, match="export_eenn"):
        nachos.save_eenn(tmp_path / "x.pt", _resnet_network(), [0.5, 0.5], in_channels=1)


def test_packaged_search_exports_carry_the_dataset_preprocessing(digits_study, tmp_path):
    import optuna

    store = optuna.artifacts.FileSystemArtifactStore(str(digits_study.artifact_dir))
    # A trial evaluated on test (on the admissible front when it finished): its bundle's
    # metrics are the test split's; a trial whose test split was skipped carries the
    # validation split's, labelled.
    trained = [t for t in digits_study.study.trials if "nachos_artifact_id" in t.user_attrs]
    tested = [t for t in trained if "test_accuracy" in t.user_attrs]
    for trial in trained:
        metrics = nachos.load_eenn(trial, artifact_store=store).metadata["metrics"]
        assert metrics.get("split", "test") == ("test" if trial in tested else "validation")
    deployed = nachos.load_eenn(tested[-1], artifact_store=store)
    digits = load_dataset("digits", resolution=16, augment=False)
    assert deployed.preprocessing == Preprocessing.from_dataset(digits)
    # what `optuna-nachos export` does: the metadata (preprocessing included) travels along
    out = nachos.export_eenn(
        tmp_path / "eenn",
        deployed.model,
        deployed.thresholds,
        in_channels=1,
        metadata={k: v for k, v in deployed.metadata.items() if k != "in_channels"},
    )
    again = nachos.load_eenn(out)
    raw = load_dataset("digits", resolution=8, augment=False).test  # the 8x8 originals
    labels = raw.targets
    from_raw = again.predict(raw.images).predictions
    normalized = torch.stack([digits.test[i][0] for i in range(len(digits.test))])
    from_pipeline = again.predict(normalized, preprocess=False).predictions
    assert torch.equal(from_raw, from_pipeline)
    accuracy = (from_raw == labels).double().mean().item()
    assert accuracy == pytest.approx(deployed.metadata["metrics"]["accuracy"], abs=1e-12)
