"""The quickstart code of the README and of the documentation runs as written."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import torch

import optuna_nachos as nachos

ROOT = Path(__file__).resolve().parents[1]


def _quickstart(path: Path) -> str:
    text = path.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    matching = [b for b in blocks if "def train_and_evaluate" in b]
    assert len(matching) == 1, f"{path.name} should hold one complete quickstart example"
    return matching[0]


def test_readme_and_docs_share_one_complete_example() -> None:
    readme = _quickstart(ROOT / "README.md")
    docs = _quickstart(ROOT / "docs" / "quickstart.md")
    assert readme == docs
    tree = ast.parse(readme)
    defined = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
    assert {"train_and_evaluate", "objective"} <= defined
    used = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "nachos"
    }
    assert used <= set(nachos.__all__), used - set(nachos.__all__)
    assert "in_channels=1" in readme


@pytest.mark.slow
def test_readme_quickstart_runs(monkeypatch, capsys) -> None:
    code = _quickstart(ROOT / "README.md")
    assert "n_trials=20" in code and "epochs=3" in code
    code = code.replace("n_trials=20", "n_trials=1").replace("epochs=3", "epochs=1")
    namespace: dict = {"__name__": "quickstart"}
    exec(compile(code, "README.md quickstart", "exec"), namespace)
    study = namespace["study"]
    trial = study.trials[0]
    assert trial.state.name == "COMPLETE"
    assert set(trial.constraints) == {"max_avg_macs", "min_accuracy"}
    assert 0.0 <= trial.user_attrs["test_accuracy"] <= 1.0
    accuracy, avg_macs = trial.values
    assert 0.0 <= accuracy <= 1.0 and avg_macs > 0


@pytest.mark.slow
def test_docs_quickstart_runs_from_first_block_to_last(tmp_path, monkeypatch) -> None:
    """Every Python block of the quickstart page, in order, in one namespace, as written."""
    text = (ROOT / "docs" / "quickstart.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 5
    code = "\n".join(blocks)
    assert "n_trials=20" in code and "epochs=3" in code
    code = code.replace("n_trials=20", "n_trials=1").replace("epochs=3", "epochs=1")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "quickstart"}
    exec(compile(code, "quickstart.md", "exec"), namespace)

    model, x = namespace["model"], namespace["x"]
    assert x.shape[1] == 1  # grey-scale digits
    assert len(namespace["costs"]) == model.num_exits
    assert len(namespace["thresholds"]) == model.num_exits - 1
    # The real image went through the recorded preprocessing and was classified.
    eenn, prediction = namespace["eenn"], namespace["prediction"]
    assert eenn.preprocessing is not None and eenn.preprocessing.resolution == 32
    assert prediction.predictions.shape == (1,)
    assert 0 <= int(prediction.predictions[0]) < 10
    assert 0 <= int(prediction.exit_indices[0]) < model.num_exits
    # Same decision as the trained network on the dataset's own pipeline for that digit.
    own = model.predict(eenn.preprocess(namespace["image"]), thresholds=namespace["thresholds"])
    assert torch.equal(own.predictions, prediction.predictions)


def test_readme_search_command_is_the_one_the_search_benchmark_times() -> None:
    """The README's timing of its main command comes from ``benchmarks/bench_search.py``."""
    import importlib.util
    import shlex

    spec = importlib.util.spec_from_file_location(
        "bench_search", ROOT / "benchmarks" / "bench_search.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    readme = (ROOT / "README.md").read_text()
    commands = [
        line
        for line in readme.splitlines()
        if line.startswith("optuna-nachos search --dataset digits")
    ]
    assert len(commands) == 1
    assert shlex.split(commands[0])[1:] == bench.README_ARGS


_COUNTS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight"}


def _stages(front: list[dict]) -> str:
    """``[[2, 4], [1, 2], [3]]`` as the README words it: ``2 and 4, 1 and 2, and 3``."""
    items = [" and ".join(str(s) for s in row["exit_stages"]) for row in front]
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + ", and " + items[-1]


def _front_claim(record: dict) -> str:
    front = record["admissible_front"]
    accuracy = [100 * row["accuracy"] for row in front]
    macs = [row["avg_macs"] / 1e6 for row in front]
    if len(front) == 1:
        return (
            f"a front of one admissible network, {accuracy[0]:.1f} % validation accuracy at "
            f"{macs[0]:.2f} M average MACs, with exits after stages {_stages(front)}"
        )
    return (
        f"a front of {_COUNTS[len(front)]} admissible networks, {min(accuracy):.1f} % to "
        f"{max(accuracy):.1f} % validation accuracy at {min(macs):.2f} M to {max(macs):.2f} M "
        f"average MACs, with exits after stages {_stages(front)}"
    )


@pytest.mark.parametrize(
    "record_name", ["search_digits_readme.json", "search_digits_readme_generic_kernels.json"]
)
def test_readme_search_figures_are_those_of_the_committed_record(record_name: str) -> None:
    """Every figure the README states of its main command's result is in a committed record,
    with the software and the CPU kernels that produced it."""
    import json
    import shlex

    readme = " ".join((ROOT / "README.md").read_text().split())
    assert f"benchmarks/results/{record_name}" in readme
    record = json.loads((ROOT / "benchmarks" / "results" / record_name).read_text())
    command = next(
        line
        for line in (ROOT / "README.md").read_text().splitlines()
        if line.startswith("optuna-nachos search --dataset digits")
    )
    assert shlex.split(record["command"]) == shlex.split(command)
    assert record["exit_code"] == 0 and record["machine"]["threads"] == 1
    assert f"all {record['trained_trials']} trials trained" in readme
    assert record["trained_trials"] == record["trials"]
    assert _front_claim(record) in readme
    machine = record["machine"]
    assert f"torch {machine['torch'].split('+')[0]}" in readme
    assert f"optuna {machine['optuna']}" in readme
    assert machine["cpu_capability"] in readme


def test_readme_says_how_far_other_kernels_move_the_same_architectures() -> None:
    import json

    results = ROOT / "benchmarks" / "results"
    here = json.loads((results / "search_digits_readme.json").read_text())
    generic = json.loads((results / "search_digits_readme_generic_kernels.json").read_text())
    assert generic["machine"]["kernel_environment"] == {
        "ATEN_CPU_CAPABILITY": "default",
        "ONEDNN_MAX_CPU_ISA": "SSE41",
    }
    pairs = list(zip(here["trial_figures"], generic["trial_figures"], strict=True))
    assert all(a["architecture"] == b["architecture"] for a, b in pairs), "same architectures"
    largest = max(100 * abs(a["accuracy"] - b["accuracy"]) for a, b in pairs)
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert f"up to {largest:.2f} points away from the AVX2 run" in readme
    # The earlier records (optuna 5.0.0, other loads) found the same front.
    for name in ("search_digits_under_load.json", "search_digits_12_trials_under_load.json"):
        earlier = json.loads((results / name).read_text())
        assert [(r["trial"], r["accuracy"]) for r in earlier["admissible_front"]] == [
            (r["trial"], r["accuracy"]) for r in here["admissible_front"]
        ]
