"""Exporting and loading networks: no silent overwrite, nothing left behind, clear errors."""

import json

import pytest
import torch

from optuna_nachos.config import EENNConfig
from optuna_nachos.deploy import export_eenn, load_eenn
from optuna_nachos.models import build_eenn


def _network(exits=(1, 3), kernel=3):
    config = EENNConfig(
        depths=(2,) * 5,
        kernel_sizes=((kernel, kernel),) * 5,
        expand_ratios=((3, 3),) * 5,
        exit_stages=exits,
        resolution=32,
    )
    return build_eenn(config, num_classes=10, in_channels=1)


def _export(out, model, **kwargs):
    thresholds = [0.5] * (model.num_exits - 1)
    return export_eenn(out, model, thresholds, in_channels=1, **kwargs)


def test_export_refuses_to_overwrite_without_overwrite(tmp_path):
    out = tmp_path / "net"
    _export(out, _network())
    before = (out / "weights.pt").read_bytes()
    with pytest.raises(FileExistsError, match="already holds an exported network"):
        _export(out, _network(kernel=5))
    assert (out / "weights.pt").read_bytes() == before
    _export(out, _network(kernel=5), overwrite=True)
    assert load_eenn(out).config.kernel_sizes[0] == (5, 5)


def test_export_to_a_file_is_refused(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("keep me")
    with pytest.raises(FileExistsError, match="is a file"):
        _export(target, _network())
    assert target.read_text() == "keep me"


def test_failed_export_leaves_nothing_behind(tmp_path, monkeypatch):
    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        _export(tmp_path / "new" / "net", _network())
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert leftovers == []
    assert not (tmp_path / "new").exists()


def test_weights_of_another_architecture_are_one_clear_error(tmp_path):
    out = tmp_path / "net"
    _export(out, _network())
    torch.save(_network(kernel=7).state_dict(), out / "weights.pt")
    with pytest.raises(ValueError) as error:
        load_eenn(out)
    message = str(error.value)
    assert str(out) in message and "another architecture" in message
    assert "\n" not in message and len(message) < 300


def test_malformed_description_names_the_file(tmp_path):
    out = tmp_path / "net"
    _export(out, _network())
    (out / "eenn.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"eenn\.json is not valid JSON"):
        load_eenn(out)


def test_wrong_threshold_count_fails_at_load(tmp_path):
    out = tmp_path / "net"
    _export(out, _network())
    info = json.loads((out / "eenn.json").read_text())
    info["thresholds"] = [0.5]  # the network has two early exits
    (out / "eenn.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match="has 1 thresholds; its network has 2 early exits"):
        load_eenn(out)
