"""The search, best and export commands: error paths and a small real run."""

import json

import pytest

from optuna_nachos.cli import main

from .conftest import RANDOM_SEARCH, error_line

SEARCH = [*RANDOM_SEARCH, "--max-avg-macs", "2.7M"]


def test_resolve_study_name():
    from optuna_nachos.cli._commands import resolve_study_name

    assert resolve_study_name("mine", ["nachos", "mine"]) == "mine"
    assert resolve_study_name(None, ["other", "nachos"]) == "nachos"
    assert resolve_study_name(None, ["only"]) == "only"
    assert resolve_study_name(None, []) == "nachos"
    assert resolve_study_name(None, ["a", "b"]) == "nachos"  # then: no study 'nachos'


def test_unknown_dataset_is_one_line_error(tmp_path, capsys):
    code = main(
        [
            "search",
            "--dataset",
            "nope",
            "--n-trials",
            "1",
            "--max-avg-macs",
            "2.7M",
            "--min-accuracy",
            "0.5",
            "--storage",
            f"sqlite:///{tmp_path / 'x.db'}",
        ]
    )
    assert code == 2
    line = error_line(capsys)
    assert "unknown dataset 'nope'" in line and "digits" in line


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--sampler", "bogus", "invalid choice: 'bogus'"),
        ("--max-avg-macs", "lots", "invalid MAC amount"),
    ],
)
def test_bad_values_are_rejected_by_the_parser(flag, value, message, capsys):
    args = ["search", "--dataset", "digits", "--n-trials", "1", "--max-avg-macs", "2.7M"]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--min-accuracy", "0.5", flag, value])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_budget_below_smallest_network(tmp_path, capsys):
    code = main(
        [
            *RANDOM_SEARCH,
            "--max-avg-macs",
            "1K",
            "--n-trials",
            "1",
            "--storage",
            f"sqlite:///{tmp_path / 'x.db'}",
        ]
    )
    assert code == 2
    assert "cheapest network" in error_line(capsys)


def test_storage_that_cannot_be_opened(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'no-such-dir' / 'x.db'}"
    code = main([*SEARCH, "--n-trials", "1", "--storage", url])
    assert code == 2
    assert "cannot open storage" in error_line(capsys)


def test_best_on_a_missing_study(tmp_path, capsys):
    import optuna

    for name in ("one", "other"):  # two studies, none named 'nachos': no default to pick
        optuna.create_study(storage=f"sqlite:///{tmp_path / 'empty.db'}", study_name=name)
    code = main(["best", "--storage", f"sqlite:///{tmp_path / 'empty.db'}"])
    assert code == 2
    assert "no study 'nachos'" in error_line(capsys)


@pytest.mark.slow
def test_search_best_export_round_trip(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    storage = f"sqlite:///{tmp_path / 'nachos.db'}"
    code = main(
        [
            *SEARCH,
            "--n-trials",
            "3",
            "--storage",
            storage,
            "--backbone-epochs",
            "2",
            "--warmup-epochs",
            "1",
            "--exit-epochs",
            "1",
            "--threads",
            "1",
            "--train-subset",
            "600",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "Admissible Pareto front" in out

    assert main(["best", "--storage", storage, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows, "with no accuracy floor every trial within the budget is feasible"
    trial = rows[0]["trial"]
    assert rows[0]["avg_macs"] <= 2.7e6

    out_dir = tmp_path / "exported"
    assert main(["export", "--storage", storage, "--trial", str(trial), "--out", str(out_dir)]) == 0
    assert (out_dir / "eenn.json").is_file() and (out_dir / "weights.pt").is_file()
    info = json.loads((out_dir / "eenn.json").read_text())
    assert info["thresholds"] == rows[0]["thresholds"]

    assert main(["export", "--storage", storage, "--trial", "999", "--out", str(out_dir)]) == 2
    assert "no trial 999" in error_line(capsys)


def test_startup_trials_only_for_model_based_samplers(tmp_path, capsys):
    args = [*SEARCH, "--n-trials", "1", "--storage", f"sqlite:///{tmp_path / 'x.db'}"]
    args[args.index("random")] = "nsga2"
    assert main([*args, "--startup-trials", "3"]) == 2
    assert "--startup-trials applies to" in error_line(capsys)
