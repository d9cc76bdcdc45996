"""End-to-end: a tiny suite on the bundled digits, run twice, summarized and checked."""

import json
from pathlib import Path

import optuna
import pytest

from optuna_nachos.benchmark import check_results, load_suite, run_parts, summarize_suite
from optuna_nachos.benchmark._runner import storage_url, study_name
from optuna_nachos.cli import main

TINY = """
description = "A tiny suite of every experiment kind."
dataset = "digits"
resolution = 16
seeds = [0]
max_avg_macs = 3_000_000
min_accuracy = 0.2
differences = ["digits instead of CIFAR-10"]

[space]
depths = [2]
expand_ratios = [4]
kernel_sizes = [5]

[train]
backbone_epochs = 3
warmup_epochs = 1
exit_epochs = 1
batch_size = 64

[efficiency]
experiment = "search"
batch_sizes = [1, 64]
repeats = 1
images = 64

[reference]
dataset = "CIFAR-10 (reference)"
source = "DESIGN 2.7"
rows = { nachos = [72.65, 2.43] }

[[experiment]]
name = "search"
label = "NACHOS"
kind = "search"
part = "search"
sampler = "random"
n_trials = 3
reference = "nachos"

[[experiment]]
name = "retrained"
kind = "retrain"
part = "more"
source = "search"
train = { w_gamma = 0.0 }

[[experiment]]
name = "single"
kind = "single_exit"
part = "more"

[[experiment]]
name = "sdn"
kind = "fixed"
part = "more"
calibration = "global"
[[experiment.architectures]]
depths = [2, 2, 2, 2, 2]
kernel_sizes = 5
expand_ratios = 4
exit_stages = [1, 2, 3, 4]
"""


def _trials(out: Path, suite, name: str) -> list[tuple]:
    experiment = suite.experiment(name)
    study = optuna.load_study(
        study_name=study_name(experiment, 0), storage=storage_url(out, experiment.part)
    )
    return [
        (t.number, t.state.name, tuple(sorted(t.params.items())), tuple(t.values or ()))
        for t in study.get_trials(deepcopy=False)
    ]


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("suite")
    path = folder / "tiny.toml"
    path.write_text(TINY)
    suite = load_suite(path)
    first, second = folder / "first", folder / "second"
    assert run_parts(suite, first) == {"search": True, "more": True}
    assert run_parts(suite, second, parts=["search"]) == {"search": True}
    return suite, first, second


@pytest.mark.slow
def test_same_seeds_give_the_same_trials_and_values(tiny_runs):
    suite, first, second = tiny_runs
    assert _trials(first, suite, "search") == _trials(second, suite, "search")


@pytest.mark.slow
def test_every_kind_runs_what_it_plans(tiny_runs):
    suite, first, _ = tiny_runs
    search = _trials(first, suite, "search")
    assert len(search) == 3
    assert len(_trials(first, suite, "sdn")) == 1
    assert len(_trials(first, suite, "single")) == 1
    retrained = _trials(first, suite, "retrained")
    assert len(retrained) <= 1
    single = optuna.load_study(study_name="single-seed0", storage=storage_url(first, "more"))
    config = single.trials[0].user_attrs["config"]
    assert config["exit_stages"] == []
    assert single.trials[0].values[1] <= suite.max_avg_macs
    sdn = optuna.load_study(study_name="sdn-seed0", storage=storage_url(first, "more"))
    thresholds = sdn.trials[0].user_attrs["thresholds"]
    assert len(thresholds) == 4 and len(set(thresholds)) == 1


@pytest.mark.slow
def test_running_again_resumes_without_new_trials(tiny_runs):
    suite, first, _ = tiny_runs
    before = {name: _trials(first, suite, name) for name in ("search", "single", "sdn")}
    run_parts(suite, first)
    after = {name: _trials(first, suite, name) for name in ("search", "single", "sdn")}
    assert before == after
    parts = json.loads((first / "parts.json").read_text())
    assert parts["search"]["runs"] == 2 and parts["search"]["complete"]


@pytest.mark.slow
def test_summary_records_and_checks(tiny_runs):
    suite, first, _ = tiny_runs
    record = summarize_suite(suite, first)
    assert check_results(first) == []
    assert record["schema"] == "optuna-nachos-benchmark/1"
    env = record["environment"]
    assert env["packages"]["optuna"] == optuna.__version__ and env["seeds"] == [0]
    assert env["cpu"] and "commit" in env["git"]
    by_name = {e["name"]: e for e in record["experiments"]}
    run = by_name["search"]["runs"][0]
    assert run["trials"] == 3
    # The default checkpoint is the search's budget: its last value is the run's hypervolume.
    assert run["hypervolume_at"] == {"3": pytest.approx(run["hypervolume"])}
    assert record["statistics"]["checkpoints"] == [3]
    assert record["statistics"]["comparisons"] == []  # the suite names no baseline
    for row in run["front"]:
        assert row["admissible"]
        assert row["accuracy"] >= suite.min_accuracy and row["avg_macs"] <= suite.max_avg_macs
    if run["front"]:
        assert run["best"]["accuracy"] == max(row["accuracy"] for row in run["front"])
        inference = record["efficiency"]["inference"]
        assert [row["batch_size"] for row in inference] == [1, 64]
        for row in inference:
            # Below 1 when most samples pass every exit head: their cost exceeds the plain network.
            assert row["speedup"] > 0
            assert row["mac_ratio"] == pytest.approx(row["full_macs"] / row["avg_macs"])
    markdown = (first / "results.md").read_text()
    assert "72.65 / 2.43" in markdown and "digits instead of CIFAR-10" in markdown
    assert "## Hypervolume across seeds" in markdown and "| variant | k = 3 |" in markdown
    for name in record["figures"].values():
        assert (first / name).is_file()


@pytest.mark.slow
def test_check_reports_missing_pieces(tiny_runs, tmp_path):
    assert check_results(tmp_path) == [
        f"{tmp_path / 'results.json'} is missing: run the suite first."
    ]
    suite, first, _ = tiny_runs
    summarize_suite(suite, first)
    record = json.loads((first / "results.json").read_text())
    record["figures"] = {"ghost": "figures/ghost.png"}
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "results.json").write_text(json.dumps(record))
    problems = check_results(broken)
    assert any("ghost" in p for p in problems)
    assert any("results.md" in p for p in problems)


@pytest.mark.slow
def test_command_line(tiny_runs, capsys):
    suite, first, _ = tiny_runs
    assert (
        main(
            [
                "benchmark",
                "--suite",
                str(suite.path),
                "--out",
                str(first),
                "--summarize-only",
                "--check",
            ]
        )
        == 0
    )
    assert "check passed" in capsys.readouterr().out
    assert main(["benchmark", "--suite", "nowhere", "--out", str(first)]) == 2
    assert "no suite 'nowhere'" in capsys.readouterr().err
    assert (
        main(["benchmark", "--suite", str(suite.path), "--out", str(first), "--part", "nope"]) == 2
    )
    assert "has no part nope" in capsys.readouterr().err
