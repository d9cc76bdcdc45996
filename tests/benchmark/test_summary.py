"""Summary pieces that need no training: which weights are kept, what the page says is
stored, and the training throughput of a suite that trains on every image."""

from pathlib import Path

import optuna
import pytest

from optuna_nachos.benchmark import load_suite
from optuna_nachos.benchmark._markdown import _stored
from optuna_nachos.benchmark._runner import ARTIFACTS_DIR
from optuna_nachos.benchmark._summary import _prune_networks, _train_images
from optuna_nachos.results._export import ARTIFACT_ATTR

SUITE = """
description = "tiny"
dataset = "digits"
resolution = 16
seeds = [0]
max_avg_macs = 2_000_000
min_accuracy = 0.3
keep_networks = "{keep}"

[[experiment]]
name = "search"
kind = "search"
part = "one"
sampler = "random"
n_trials = 3
"""


def _suite(tmp_path: Path, keep: str):
    path = tmp_path / f"{keep}.toml"
    path.write_text(SUITE.format(keep=keep))
    return load_suite(path)


def _study_with_networks(out: Path) -> optuna.Study:
    """Three trials, each with a 'weights' file in the artifact folder."""
    folder = out / ARTIFACTS_DIR
    folder.mkdir(parents=True)
    study = optuna.create_study(study_name="search-seed0", directions=["maximize", "minimize"])
    for number in range(3):
        (folder / f"net{number}").write_bytes(b"w" * 1000)
        study.add_trial(
            optuna.trial.create_trial(
                values=[0.5 + number / 10, 1e6], user_attrs={ARTIFACT_ATTR: f"net{number}"}
            )
        )
    return study


def _record(best_trial: int, timed_trial: int | None) -> dict:
    network = None if timed_trial is None else {"experiment": "search", "seed": 0}
    if network is not None:
        network["trial"] = timed_trial
    return {
        "experiments": [
            {"runs": [{"study": "search-seed0", "best": {"trial": best_trial}}]},
        ],
        "efficiency": {"network": network},
    }


@pytest.mark.parametrize(
    ("keep", "kept"),
    [("all", {"net0", "net1", "net2"}), ("best", {"net2"}), ("timed", {"net1"})],
)
def test_prune_networks_keeps_what_the_suite_says(tmp_path, keep, kept):
    study = _study_with_networks(tmp_path)
    networks = _prune_networks(
        _suite(tmp_path, keep), tmp_path, {"search-seed0": study}, _record(2, 1)
    )
    assert {p.name for p in (tmp_path / ARTIFACTS_DIR).iterdir()} == kept
    assert networks["removed"] == 3 - len(kept)
    assert networks["bytes"] == 1000 * len(kept)
    assert networks["keep"] == keep
    text = "\n".join(_stored({"networks": networks}))
    assert "## What is stored" in text and f'keep_networks = "{keep}"' in text
    assert ("other networks' weights removed" in text) == (keep != "all")


def test_timed_without_a_timed_network_keeps_none(tmp_path):
    study = _study_with_networks(tmp_path)
    networks = _prune_networks(
        _suite(tmp_path, "timed"), tmp_path, {"search-seed0": study}, _record(2, None)
    )
    assert networks["kept"] == [] and networks["removed"] == 3


def test_training_images_are_counted_without_a_subset(tmp_path):
    suite = _suite(tmp_path, "all")
    assert suite.train_subset is None
    images = _train_images(suite)
    assert 1000 < images < 1797  # digits' training split, without validation and test
