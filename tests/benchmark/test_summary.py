"""Summary pieces that need no training: which weights are kept, what the page says is
stored, the training throughput of a suite that trains on every image, and the hypervolume
statistics across seeds."""

from pathlib import Path

import optuna
import pytest

from optuna_nachos.benchmark import load_suite, mean_confidence_interval, paired_comparison
from optuna_nachos.benchmark._markdown import _stored
from optuna_nachos.benchmark._runner import ARTIFACTS_DIR, _fixed_config
from optuna_nachos.benchmark._summary import (
    _comparisons,
    _experiment_summary,
    _prune_networks,
    _run_summary,
    _train_images,
)
from optuna_nachos.record import ARTIFACT_ATTR, CONFIG_ATTR, EXIT_RATIOS_ATTR

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


STATS_SUITE = """
description = "tiny"
dataset = "digits"
resolution = 16
seeds = [0, 1, 2]
max_avg_macs = 100
min_accuracy = 0.5
hypervolume_checkpoints = [1, 2, 10]
compare_against = "nachos"

[[experiment]]
name = "nachos"
kind = "search"
part = "one"
n_trials = 2

[[experiment]]
name = "random"
kind = "search"
part = "one"
sampler = "random"
n_trials = 2
"""


def _stats_suite(tmp_path: Path):
    path = tmp_path / "stats.toml"
    path.write_text(STATS_SUITE)
    return load_suite(path)


def _trained_study(points: list[tuple[float, float]]) -> optuna.Study:
    """Trained trials as the objective records them, with a real architecture."""
    config = _fixed_config(
        {"depths": [2] * 5, "kernel_sizes": 3, "expand_ratios": 4, "exit_stages": [1, 2]}, 16
    ).to_dict()
    study = optuna.create_study(study_name="nachos-seed0", directions=["maximize", "minimize"])
    for accuracy, macs in points:
        study.add_trial(
            optuna.trial.create_trial(
                values=[accuracy, macs],
                user_attrs={CONFIG_ATTR: config, EXIT_RATIOS_ATTR: [0.3, 0.3, 0.4]},
                system_attrs={
                    "constraints:max_avg_macs": macs - 100,
                    "constraints:min_accuracy": 0.5 - accuracy,
                },
            )
        )
    return study


def test_run_summary_reports_the_hypervolume_after_each_checkpoint(tmp_path):
    suite = _stats_suite(tmp_path)
    study = _trained_study([(0.7, 50.0), (0.9, 80.0)])
    run = _run_summary(suite, suite.experiment("nachos"), 0, study, 0)
    assert run["trials"] == 2
    assert list(run["hypervolume_at"]) == ["1", "2", "10"]
    assert run["hypervolume_at"]["1"] == pytest.approx(0.2)
    assert run["hypervolume_at"]["2"] == pytest.approx(run["hypervolume"]) == pytest.approx(0.28)
    assert run["hypervolume_at"]["10"] is None


def _runs(values: dict[int, tuple[float, float]]) -> list[dict]:
    return [{"seed": s, "hypervolume_at": {"1": v1, "2": v2}} for s, (v1, v2) in values.items()]


def test_experiment_summary_gives_an_interval_per_checkpoint():
    runs = [
        {**r, "hypervolume": 0.0, "best": None, "trained": 0, "trials": 2}
        for r in _runs({0: (0.1, 0.2), 1: (0.2, 0.4), 2: (0.3, None)})
    ]
    summary = _experiment_summary(runs, (1, 2, 10))["hypervolume_at"]
    expected = mean_confidence_interval([0.1, 0.2, 0.3])
    assert summary["1"] == {
        "n": 3,
        "mean": expected.mean,
        "low": expected.low,
        "high": expected.high,
        "sd": expected.sd,
    }
    assert summary["2"]["n"] == 2 and summary["2"]["mean"] == pytest.approx(0.3)
    assert summary["10"] is None  # no run got that far
    assert _experiment_summary(runs)["hypervolume_at"] == {}  # no checkpoints


def test_comparisons_pair_the_baseline_with_each_experiment_by_seed(tmp_path):
    suite = _stats_suite(tmp_path)
    runs = {
        "nachos": _runs({0: (0.3, 0.5), 1: (0.2, 0.4), 2: (0.4, 0.6)}),
        "random": _runs({0: (0.1, 0.3), 1: (0.2, 0.2)}),  # seed 2 did not run
    }
    rows = _comparisons(suite, runs)
    assert [(r["experiment"], r["checkpoint"]) for r in rows] == [("random", 1), ("random", 2)]
    first, second = rows
    assert first["seeds"] == [0, 1] and first["n"] == 2
    expected = paired_comparison([0.3, 0.2], [0.1, 0.2])
    assert first["mean_difference"] == pytest.approx(0.1)  # the baseline minus the other
    assert (first["low"], first["high"]) == pytest.approx((expected.low, expected.high))
    assert first["t_test_p"] == pytest.approx(expected.t_test_p)
    assert second["t_test_p"] is None  # differences 0.2 and 0.2: no spread
    assert second["wilcoxon_p"] == pytest.approx(0.5)


def test_no_comparisons_without_a_baseline(tmp_path):
    suite = _suite(tmp_path, "all")
    assert suite.compare_against is None
    assert _comparisons(suite, {"search": _runs({0: (0.1, 0.2)})}) == []
