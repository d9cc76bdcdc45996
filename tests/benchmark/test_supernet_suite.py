"""A suite whose candidates inherit the weights of a supernet it trains itself (digits)."""

import json
from pathlib import Path

import optuna
import pytest

from optuna_nachos.benchmark import SuiteError, load_suite, run_parts, summarize_suite
from optuna_nachos.benchmark._runner import storage_url, study_name
from optuna_nachos.benchmark._summary import MARKDOWN_FILE
from optuna_nachos.supernet import WEIGHTS_FILE, read_metadata

ON_SUPERNET = """
description = "A search on a supernet the suite trains."
dataset = "digits"
resolution = 16
train_subset = 192
seeds = [0]
max_avg_macs = 3_000_000
min_accuracy = 0.0

[supernet]
epochs = {epochs}
batch_size = 64
random_subnets = 0
recalibration_batches = 1

[space]
depths = [2]
expand_ratios = [3]
kernel_sizes = [3]

[train]
backbone_epochs = 1
warmup_epochs = 0
exit_epochs = 1
batch_size = 64

[efficiency]
batch_sizes = [1]
repeats = 1
images = 16

[[experiment]]
name = "search"
kind = "search"
part = "search"
sampler = "random"
n_trials = 2
"""


def _suite(folder: Path, epochs: int = 1):
    path = folder / "on_supernet.toml"
    path.write_text(ON_SUPERNET.replace("{epochs}", str(epochs)))
    return load_suite(path)


def test_experiment_refuses_to_run_before_the_supernet(tmp_path: Path) -> None:
    suite = _suite(tmp_path)
    with pytest.raises(SuiteError, match="run --part supernet first"):
        run_parts(suite, tmp_path / "out", parts=["search"])
    assert not (tmp_path / "out" / "search.db").exists()


def test_supernet_part_needs_a_supernet_table(tmp_path: Path) -> None:
    path = tmp_path / "plain.toml"
    head, tail = ON_SUPERNET.split("[supernet]")
    path.write_text(head + "[space]" + tail.split("[space]")[1])
    suite = load_suite(path)
    with pytest.raises(SuiteError, match=r"no \[supernet\] table"):
        run_parts(suite, tmp_path / "out", parts=["supernet"])


def test_supernet_part_stops_on_time_and_resumes(tmp_path: Path) -> None:
    suite = _suite(tmp_path, epochs=2)
    out = tmp_path / "out"
    assert run_parts(suite, out, timeout=1e-9) == {"supernet": False}
    assert not (out / "search.db").exists()  # the search waits for the supernet
    metadata = read_metadata(out / "supernet")
    assert metadata["epochs_done"] == 1 and not metadata["complete"]
    assert not (out / "supernet" / WEIGHTS_FILE).exists()
    assert run_parts(suite, out, parts=["supernet"]) == {"supernet": True}
    assert read_metadata(out / "supernet")["epochs_done"] == 2
    stamp = (out / "supernet" / WEIGHTS_FILE).stat().st_mtime_ns
    assert run_parts(suite, out, parts=["supernet"]) == {"supernet": True}
    assert (out / "supernet" / WEIGHTS_FILE).stat().st_mtime_ns == stamp
    parts = json.loads((out / "parts.json").read_text())
    assert parts["supernet"]["runs"] == 3 and parts["supernet"]["complete"]
    assert "search" not in parts


def test_search_on_the_supernet_end_to_end(tmp_path: Path) -> None:
    suite = _suite(tmp_path)
    out = tmp_path / "out"
    assert run_parts(suite, out) == {"supernet": True, "search": True}
    experiment = suite.experiment("search")
    study = optuna.load_study(
        study_name=study_name(experiment, 0), storage=storage_url(out, experiment.part)
    )
    trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(trials) == 2
    metadata = read_metadata(out / "supernet")
    recorded = study.user_attrs["nachos_settings"]["supernet"]
    assert recorded["path"] == "supernet"
    assert recorded["weights_sha256"] == metadata["weights_sha256"]
    record = summarize_suite(suite, out, figures=False)
    supernet = record["supernet"]
    assert supernet["complete"] and (supernet["epochs_done"], supernet["epochs_planned"]) == (1, 1)
    assert supernet["weights_sha256"] == metadata["weights_sha256"]
    assert supernet["train_seconds"] > 0
    assert [row["epoch"] for row in supernet["val_accuracy"]] == [1]
    assert 0 <= supernet["val_accuracy"][0]["largest"]["final_accuracy"] <= 1
    assert record["parts"]["supernet"]["complete"]
    assert record["suite"]["supernet"]["epochs"] == 1
    assert "## Supernet" in (out / MARKDOWN_FILE).read_text()
