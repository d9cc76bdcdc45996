"""The latency command, latency options of search, and export --format onnx."""

import json

import numpy as np
import pytest
import torch

import optuna_nachos as nachos
from optuna_nachos.cli import main
from optuna_nachos.cost import LatencyTable
from optuna_nachos.data import load_dataset
from optuna_nachos.deploy import OnnxEENN

from .conftest import RANDOM_SEARCH, error_line

pytest.importorskip("onnxruntime")

SEARCH = RANDOM_SEARCH


@pytest.fixture(scope="module")
def lut(tmp_path_factory):
    path = tmp_path_factory.mktemp("lut") / "lut.json"
    code = main(
        [
            "latency",
            "profile",
            "--out",
            str(path),
            "--in-channels",
            "1",
            "--backends",
            "torch",
            "--batch-sizes",
            "1",
            "--warmup",
            "0",
            "--repeats",
            "2",
            "--calibration-networks",
            "3",
            "--calibration-rounds",
            "1",
            "--quiet",
        ]
    )
    assert code == 0
    return path


def test_profile_writes_a_calibrated_table(lut, capsys):
    table = LatencyTable.load(lut)
    assert table.in_channels == 1 and table.num_classes == 10
    assert table.backends == ("torch",) and table.batch_sizes == (1,)
    assert len(table.blocks) > 90  # every block of the default space at 32x32
    assert table.method["resolutions"] == [32]
    assert table.calibration["networks"] == 3 and table.calibration["rounds"] == 1
    assert set(table.calibration["fit"]) == {"torch"}
    assert set(table.calibration["alone"]["blocks_ms"]) == set(table.blocks)


def test_profile_without_calibration_keeps_the_blocks_timed_alone(tmp_path, capsys):
    path = tmp_path / "alone.json"
    args = ["latency", "profile", "--out", str(path), "--backends", "torch", "--batch-sizes", "1"]
    options = ["--resolutions", "16", "--warmup", "0", "--repeats", "1"]
    assert main([*args, *options, "--calibration-networks", "0", "--quiet"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["out"] == str(path) and "calibration_mape" not in printed
    assert LatencyTable.load(path).calibration == {}


def test_latency_options_are_checked(tmp_path, lut, capsys):
    storage = ["--storage", f"sqlite:///{tmp_path / 'x.db'}", "--n-trials", "1"]
    assert main([*SEARCH, *storage, "--objective", "latency"]) == 2
    assert "--latency-table and --max-avg-latency-ms" in error_line(capsys)
    assert main([*SEARCH, *storage]) == 2
    assert "--max-avg-macs is required" in error_line(capsys)
    assert main([*SEARCH, *storage, "--max-avg-macs", "2.7M", "--max-avg-latency-ms", "1"]) == 2
    assert "needs --latency-table" in error_line(capsys)
    missing = str(tmp_path / "none.json")
    args = [*SEARCH, *storage, "--max-avg-macs", "2.7M", "--latency-table", missing]
    assert main(args) == 2
    assert "latency profile" in error_line(capsys)
    table = ["--max-avg-macs", "2.7M", "--latency-table", str(lut), "--latency-backend", "torch"]
    assert main([*SEARCH, *storage, *table, "--latency-batch-size", "8"]) == 2
    assert "batch size 8" in error_line(capsys)  # the table was profiled at batch 1 only
    with pytest.raises(SystemExit) as exited:  # argparse's own usage error
        main([*SEARCH, *storage, *table, "--latency-batch-size", "0"])
    assert exited.value.code == 2
    assert not (tmp_path / "x.db").exists()


def test_latency_search_and_onnx_export(tmp_path, lut, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    storage = f"sqlite:///{tmp_path / 'nachos.db'}"
    code = main(
        [
            *SEARCH,
            "--n-trials",
            "2",
            "--storage",
            storage,
            "--latency-table",
            str(lut),
            "--latency-backend",
            "torch",
            "--objective",
            "latency",
            "--max-avg-latency-ms",
            "1000",
            "--backbone-epochs",
            "1",
            "--warmup-epochs",
            "1",
            "--exit-epochs",
            "1",
            "--threads",
            "1",
            "--train-subset",
            "300",
        ]
    )
    assert code == 0
    capsys.readouterr()
    assert main(["best", "--storage", storage, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows
    row = rows[0]
    assert row["avg_latency_ms"] > 0 and row["peak_latency_ms"] >= row["avg_latency_ms"]
    assert row["avg_macs"] > 1000  # still in MACs

    out_dir = tmp_path / "onnx"
    args = ["export", "--storage", storage, "--trial", str(row["trial"]), "--out", str(out_dir)]
    assert main([*args, "--format", "onnx"]) == 0
    manifest = json.loads((out_dir / "manifest.json").read_text())
    assert manifest["thresholds"] == row["thresholds"]
    assert manifest["trial"] == row["trial"]

    assert main(args) == 0  # the PyTorch format, to compare with
    eenn = nachos.load_eenn(out_dir)
    runtime = OnnxEENN(out_dir)
    digits = load_dataset("digits", resolution=32, seed=0)
    images = torch.stack([digits.test[i][0] for i in range(64)])
    expected = eenn.predict(images, preprocess=False)  # the images are normalized already
    got = runtime.predict(images.numpy(), preprocess=False)
    assert got.exit_indices.tolist() == expected.exit_indices.tolist()
    assert np.array_equal(got.predictions, expected.predictions.numpy())
