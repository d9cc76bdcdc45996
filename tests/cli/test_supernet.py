"""The ``supernet train`` command: what it says while it trains and when it ends."""

import dataclasses
import json
import re

from optuna_nachos.cli import main
from optuna_nachos.cli._main import build_parser
from optuna_nachos.cli._supernet import _RECIPE_FLAGS
from optuna_nachos.supernet import SupernetSettings


def _train_args(out, *extra):
    return [
        "supernet",
        "train",
        "--dataset",
        "digits",
        "--resolution",
        "16",
        "--train-subset",
        "128",
        "--epochs",
        "1",
        "--batch-size",
        "64",
        "--random-subnets",
        "0",
        "--threads",
        "1",
        "--no-progress",
        "--out",
        str(out),
        *extra,
    ]


def test_train_talks_and_ends_with_a_readable_summary(tmp_path, capfd):
    import torch

    threads = torch.get_num_threads()
    try:
        assert main(_train_args(tmp_path / "sn")) == 0
    finally:
        torch.set_num_threads(threads)
    captured = capfd.readouterr()
    assert "Supernet: 1 epochs of 2 steps, batch 64" in captured.err
    assert "the first steps took" in captured.err
    assert "Supernet epoch 1/1:" in captured.err
    lines = captured.out.strip().splitlines()
    assert lines[0] == f"Supernet trained: {tmp_path / 'sn'}"
    assert re.search(r"epochs 1 of 1, \d+\.\d min", lines[1])
    exits = [line for line in lines if "validation accuracy per exit" in line]
    assert len(exits) == 2 and "largest" in exits[0] and "smallest" in exits[1]
    assert all(len(re.findall(r"\d+\.\d", line.split(":")[1])) == 5 for line in exits)
    assert "0.50694441" not in captured.out  # rounded, not raw floats


def test_json_summary_on_request(tmp_path, capfd):
    import torch

    threads = torch.get_num_threads()
    try:
        assert main(_train_args(tmp_path / "sn", "--json", "--half")) == 0
    finally:
        torch.set_num_threads(threads)
    record = json.loads(capfd.readouterr().out)
    assert record["epochs"] == 1 and record["complete"]
    assert len(record["val_exit_accuracies"]["largest"]) == 5
    assert len(record["weights_sha256"]) == 64
    metadata = json.loads((tmp_path / "sn" / "supernet.json").read_text())
    assert metadata["settings"]["weights_dtype"] == "float16"
    assert not (tmp_path / "sn" / "checkpoint.pt").exists()


def test_recipe_flags_default_to_the_settings_defaults():
    parser = build_parser()
    args = parser.parse_args(["supernet", "train", "--dataset", "digits", "--out", "x"])
    defaults = {f.name: f.default for f in dataclasses.fields(SupernetSettings)}
    train = parser._subparsers._group_actions[0].choices["supernet"]
    train = train._subparsers._group_actions[0].choices["train"]
    help_text = " ".join(train.format_help().split())
    for name in _RECIPE_FLAGS:
        assert getattr(args, name) is None  # not given: the settings' default applies
        flag = "--" + name.replace("_", "-")
        default = defaults[name]
        shown = f"{default:g}" if isinstance(default, float) else str(default)
        pattern = re.escape(flag) + r" [A-Z_]+ .*?\(default: ([^)]+)\)"
        match = re.search(pattern, help_text)
        assert match, flag
        assert match.group(1) == shown, (flag, match.group(1), shown)
