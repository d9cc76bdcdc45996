"""Errors and warnings of the command in its own words: flags, amounts as typed, units."""

from __future__ import annotations

import json

import pytest

from optuna_nachos.cli import main

from .conftest import RANDOM_SEARCH, error_line

API_WORDS = ("download=True", "root=", "load_dataset", "name=", "max_avg_macs=")
"""How the library's errors name its arguments: never in the command's messages."""


def _search(tmp_path, *flags: str) -> int:
    storage = f"sqlite:///{tmp_path / 'x.db'}"
    return main([*RANDOM_SEARCH, "--n-trials", "1", "--storage", storage, *flags])


def test_a_budget_without_unit_is_shown_as_typed_with_the_suffixes(tmp_path, capsys):
    assert _search(tmp_path, "--resolution", "16", "--max-avg-macs", "2.7") == 2
    line = error_line(capsys)
    assert line.startswith("optuna-nachos: error: --max-avg-macs 2.7 is below the cheapest")
    assert "suffixes K, M and G" in line and "did you mean --max-avg-macs 2.7M?" in line
    assert not any(word in line for word in API_WORDS), line


def test_a_budget_with_a_unit_is_shown_with_it(tmp_path, capsys):
    assert _search(tmp_path, "--resolution", "16", "--max-avg-macs", "1.5K") == 2
    line = error_line(capsys)
    assert "--max-avg-macs 1.5K is below the cheapest network" in line
    assert "did you mean" not in line  # the amount had a unit: no guess
    assert "2.7M is 2,700,000" in line


def test_the_library_shows_the_budget_as_passed():
    from optuna_nachos import MobileNetV3Space, NachosObjective
    from optuna_nachos.objective import BudgetBelowSpaceError

    space = MobileNetV3Space(resolutions=(16,))
    with pytest.raises(BudgetBelowSpaceError, match=r"max_avg_macs=2\.7 is below") as caught:
        NachosObjective(dataset="digits", space=space, max_avg_macs=2.7, min_accuracy=0.5)
    assert isinstance(caught.value, ValueError)  # as it always was
    assert caught.value.budget == 2.7 and caught.value.cheapest > 1e5


@pytest.mark.parametrize(
    "dataset", ["mnist", "cifar10", "cifar100", "svhn", "cinic10", "imagenette", "cifar10-jpeg"]
)
def test_missing_dataset_files_are_explained_with_the_flags(dataset, tmp_path, capsys):
    root = str(tmp_path / "none")
    code = _search(tmp_path, "--dataset", dataset, "--data-root", root, "--max-avg-macs", "3M")
    assert code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"dataset {dataset!r} not found" in err
    assert "--data-root <folder>" in err
    assert not any(word in err for word in API_WORDS), err
    if dataset not in ("cinic10",):  # cinic10 cannot be downloaded by torchvision
        assert "--download" in err


def test_the_library_keeps_its_own_words(tmp_path):
    from optuna_nachos.data import DatasetNotFoundError, load_dataset

    with pytest.raises(DatasetNotFoundError) as caught:
        load_dataset("mnist", root=tmp_path)
    assert "download=True" in str(caught.value) and "root=<folder>" in str(caught.value)


def test_a_command_without_download_names_the_one_that_has_it():
    from optuna_nachos.cli._format import data_error_in_flags

    message = "  - download=True where internet is available (torchvision writes root/MNIST/raw)"
    assert data_error_in_flags(message, download_flag=True) == (
        "  - pass --download where internet is available (torchvision writes DATA_ROOT/MNIST/raw)"
    )
    assert "'optuna-nachos search --download'" in data_error_in_flags(message, download_flag=False)


def _study_with_one_trained_trial(tmp_path, constraints: dict[str, float]) -> str:
    """A study of one trained trial with the given constraints, as a search stores it."""
    import optuna

    from optuna_nachos.cli._commands import ARTIFACTS_ATTR
    from optuna_nachos.config import EENNConfig
    from optuna_nachos.deploy import save_eenn
    from optuna_nachos.models import build_eenn
    from optuna_nachos.record import ARTIFACT_ATTR

    storage = f"sqlite:///{tmp_path / 'nachos.db'}"
    folder = tmp_path / "nachos_artifacts"
    folder.mkdir()
    store = optuna.artifacts.FileSystemArtifactStore(str(folder))
    study = optuna.create_study(
        storage=storage, study_name="nachos", directions=["maximize", "minimize"]
    )
    study.set_user_attr(ARTIFACTS_ATTR, str(folder))
    config = EENNConfig(
        depths=(2,) * 5,
        kernel_sizes=((3, 3),) * 5,
        expand_ratios=((3, 3),) * 5,
        exit_stages=(2,),
        resolution=16,
    )
    model = build_eenn(config, num_classes=10, in_channels=1)
    bundle = save_eenn(tmp_path / "eenn.pt", model, [0.5], in_channels=1)
    artifact_id = optuna.artifacts.upload_artifact(
        artifact_store=store, file_path=str(bundle), study_or_trial=study
    )
    study.add_trial(
        optuna.trial.create_trial(
            values=[0.4, 1.0e6], user_attrs={ARTIFACT_ATTR: artifact_id}, constraints=constraints
        )
    )
    return storage


def test_exporting_an_infeasible_trial_warns(tmp_path, capsys, nachos_log):
    storage = _study_with_one_trained_trial(
        tmp_path, {"max_avg_macs": -1.0e5, "min_accuracy": 0.25}
    )
    out = tmp_path / "my-eenn"
    code = main(["export", "--storage", storage, "--trial", "0", "--out", str(out)])
    assert code == 0 and (out / "eenn.json").is_file()
    captured = capsys.readouterr()
    assert json.loads(captured.out)["trial"] == 0
    assert "warning: trial 0 is infeasible (violates min_accuracy)" in captured.err
    assert "optuna-nachos best" in captured.err
    # The command says it once, in its words: the library's log line is held back.
    assert not [r for r in nachos_log.records if "infeasible" in r.getMessage()]


def test_exporting_a_feasible_trial_says_nothing_more(tmp_path, capsys):
    storage = _study_with_one_trained_trial(tmp_path, {"max_avg_macs": -1.0, "min_accuracy": 0.0})
    code = main(["export", "--storage", storage, "--trial", "0", "--out", str(tmp_path / "e")])
    assert code == 0
    assert "warning" not in capsys.readouterr().err


def test_loading_an_infeasible_trial_logs_a_warning(tmp_path, nachos_log):
    import logging

    import optuna

    from optuna_nachos.deploy import load_eenn

    storage = _study_with_one_trained_trial(tmp_path, {"max_avg_macs": 3.0e5, "min_accuracy": 0})
    trial = optuna.load_study(study_name="nachos", storage=storage).trials[0]
    store = optuna.artifacts.FileSystemArtifactStore(str(tmp_path / "nachos_artifacts"))
    with nachos_log.at_level(logging.WARNING):
        deployed = load_eenn(trial, artifact_store=store)
    assert list(deployed.thresholds) == [0.5]
    warnings = [r.getMessage() for r in nachos_log.records if r.levelno == logging.WARNING]
    assert any("trial 0 is infeasible (violates max_avg_macs)" in m for m in warnings), warnings


def test_best_prints_the_heading_that_search_prints(tmp_path, capsys):
    import optuna

    from optuna_nachos.cli._commands import front_heading

    storage = _study_with_one_trained_trial(tmp_path, {"max_avg_macs": -1.0, "min_accuracy": 0.0})
    assert main(["best", "--storage", storage]) == 0
    out = capsys.readouterr().out
    study = optuna.load_study(study_name="nachos", storage=storage)
    heading = front_heading(study)
    assert heading.startswith("Admissible Pareto front of study 'nachos' (1 finished trials")
    assert out.splitlines()[0] == heading
    assert main(["best", "--storage", storage, "--json"]) == 0
    assert "Admissible" not in capsys.readouterr().out  # JSON stays JSON
