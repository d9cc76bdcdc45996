"""The search on a supernet: objective, recorded supernet, refusals, CLI."""

import json

import optuna
import pytest

import optuna_nachos as nachos
from optuna_nachos.cli import main
from optuna_nachos.supernet import SupernetError
from optuna_nachos.train import TrainConfig


def _objective(trained, digits16, **kwargs):
    space = nachos.MobileNetV3Space(resolutions=(16,), depths=(2, 3), expand_ratios=(3, 4))
    return nachos.NachosObjective(
        dataset=digits16,
        space=space,
        max_avg_macs=3e6,
        min_accuracy=0.1,
        train_config=TrainConfig(warmup_epochs=1, exit_epochs=1, batch_size=64, progress=False),
        supernet=trained.folder,
        **kwargs,
    )


def test_candidates_inherit_and_train_only_their_exits(trained, digits16, monkeypatch):
    import optuna_nachos.objective._objective as objective_module

    def no_phase_a(*args, **kwargs):
        raise AssertionError("a candidate of a supernet search must not train its backbone")

    monkeypatch.setattr(objective_module, "fit", no_phase_a)
    objective = _objective(trained, digits16)
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.optimize(objective, n_trials=2)
    trained_trials = [t for t in study.trials if "exit_ratios" in t.user_attrs]
    assert trained_trials, [t.user_attrs for t in study.trials]
    for trial in trained_trials:
        assert trial.state == optuna.trial.TrialState.COMPLETE
        assert 0.0 <= trial.values[0] <= 1.0
        assert trial.user_attrs["timings"]["train_seconds"] > 0
    recorded = objective.settings()["supernet"]
    assert recorded["path"] == str(trained.folder)
    assert recorded["weights_sha256"] == trained.supernet.weights_sha256
    assert recorded["recalibration_batches"] == 2


def test_inherited_backbone_is_not_changed_by_the_exit_phase(trained, digits16):
    import torch

    from optuna_nachos.supernet import random_config
    from optuna_nachos.train import fit_exits

    config = random_config(torch.Generator().manual_seed(1), resolution=16)
    model = trained.supernet.extract(config, calibration_data=digits16, batches=2)
    backbone = {
        k: v.clone() for k, v in model.state_dict().items() if not k.startswith("exit_heads")
    }
    heads = {k: v.clone() for k, v in model.state_dict().items() if k.startswith("exit_heads")}
    result = fit_exits(
        model, digits16, config=TrainConfig(warmup_epochs=1, exit_epochs=1, progress=False)
    )
    assert result.model is model
    assert [r.phase for r in result.records] == ["warmup", "exits"]
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in backbone.items())
    assert any(not torch.equal(state[k], v) for k, v in heads.items())


def test_a_supernet_of_other_data_is_refused(trained):
    other = nachos.data.load_dataset("digits", resolution=8, train_subset=128)
    with pytest.raises(SupernetError, match=r"trained for digits .*16x16.*uses digits .*8x8"):
        nachos.NachosObjective(
            dataset=other,
            space=nachos.MobileNetV3Space(resolutions=(8,)),
            max_avg_macs=3e6,
            min_accuracy=0.1,
            supernet=trained.folder,
        )


def test_cli_search_with_a_supernet(trained, tmp_path, capsys):
    storage = f"sqlite:///{tmp_path / 'sn.db'}"
    status = main(
        [
            "search",
            "--dataset",
            "digits",
            "--n-trials",
            "2",
            "--sampler",
            "random",
            "--max-avg-macs",
            "3M",
            "--min-accuracy",
            "0.1",
            "--warmup-epochs",
            "1",
            "--exit-epochs",
            "1",
            "--batch-size",
            "64",
            "--train-subset",
            "256",
            "--supernet",
            str(trained.folder),
            "--storage",
            storage,
            "--artifacts",
            str(tmp_path / "artifacts"),
            "--no-progress",
        ]
    )
    out = capsys.readouterr()
    assert status == 0, out.err
    study = optuna.load_study(study_name="nachos", storage=storage)
    assert len(study.trials) == 2
    settings = json.dumps(study.user_attrs)
    assert trained.supernet.weights_sha256 in settings


def test_cli_search_refuses_a_supernet_that_saw_its_validation_split(trained, tmp_path, capsys):
    status = main(
        [
            "search",
            "--dataset",
            "digits",
            "--n-trials",
            "1",
            "--max-avg-macs",
            "3M",
            "--min-accuracy",
            "0.1",
            "--supernet",
            str(trained.folder),
            "--data-seed",
            "1",
            "--storage",
            f"sqlite:///{tmp_path / 'x.db'}",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert err[-1].startswith("optuna-nachos: error:") and "trained with data seed 0" in err[-1]
    assert all(line.startswith("Training on") for line in err[:-1])  # the thread choice only


def test_cli_supernet_train_writes_a_loadable_folder(tmp_path, capsys):
    out = tmp_path / "sn8"
    argv = [
        "supernet",
        "train",
        "--dataset",
        "digits",
        "--resolution",
        "8",
        "--train-subset",
        "128",
        "--epochs",
        "1",
        "--batch-size",
        "64",
        "--random-subnets",
        "0",
        "--out",
        str(out),
        "--device",
        "cpu",
        "--no-progress",
        "--json",
    ]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["epochs"] == 1
    loaded = nachos.supernet.load_supernet(out)
    assert loaded.weights_sha256 == summary["weights_sha256"]
    assert loaded.metadata["data_seed"] == 0 and loaded.metadata["train_subset"] == 128
    # Running the same command again resumes a finished run: nothing more to train.
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["epochs"] == 1


def test_exit_phase_on_a_bounded_number_of_rows(trained, digits16, monkeypatch):
    import torch

    import optuna_nachos.train._cached as cached
    from optuna_nachos.supernet import random_config
    from optuna_nachos.train import fit_exits

    seen = []
    original = cached.cache_backbone_outputs

    def spy(model, dataset, **kwargs):
        seen.append(len(dataset))
        return original(model, dataset, **kwargs)

    monkeypatch.setattr(cached, "cache_backbone_outputs", spy)
    config = random_config(torch.Generator().manual_seed(2), resolution=16)
    model = trained.supernet.extract(config, calibration_data=digits16, batches=2)
    settings = TrainConfig(warmup_epochs=1, exit_epochs=0, progress=False)
    fit_exits(model, digits16, config=settings, max_rows=64)
    fit_exits(model, digits16, config=settings, max_rows=10_000)  # more than there are
    assert seen == [64, len(digits16.train)]
    with pytest.raises(ValueError, match="max_rows must be a positive integer"):
        fit_exits(model, digits16, config=settings, max_rows=0)


def test_objective_trains_inherited_exits_on_exit_rows(trained, digits16, monkeypatch):
    import optuna_nachos.objective._objective as module

    rows = []
    original = module.fit_exits

    def spy(*args, **kwargs):
        rows.append(kwargs.get("max_rows"))
        return original(*args, **kwargs)

    monkeypatch.setattr(module, "fit_exits", spy)
    objective = nachos.NachosObjective(
        dataset=digits16,
        space=nachos.MobileNetV3Space(resolutions=(16,)),
        max_avg_macs=3e6,
        min_accuracy=0.1,
        supernet=trained.folder,
        exit_rows=96,
        train_config=TrainConfig(warmup_epochs=1, exit_epochs=0, progress=False),
    )
    study = optuna.create_study(
        directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=0)
    )
    study.optimize(objective, n_trials=3)
    trained_trials = [t for t in study.trials if "timings" in t.user_attrs]
    assert rows and len(rows) == len(trained_trials)
    assert set(rows) == {96}
    with pytest.raises(ValueError, match="exit_rows must be a positive integer"):
        nachos.NachosObjective(
            dataset=digits16,
            space=nachos.MobileNetV3Space(resolutions=(16,)),
            max_avg_macs=3e6,
            min_accuracy=0.1,
            supernet=trained.supernet,
            exit_rows=0,
        )


def test_a_floor_above_the_supernet_warns(trained, digits16, caplog):
    import logging

    history = trained.supernet.metadata["history"]
    best = max(a for s in history[-1]["val"].values() for a in s["exit_accuracies"])
    with caplog.at_level(logging.WARNING, logger="optuna.optuna_nachos"):
        nachos.NachosObjective(
            dataset=digits16,
            space=nachos.MobileNetV3Space(resolutions=(16,)),
            max_avg_macs=3e6,
            min_accuracy=min(0.99, best + 0.005),
            supernet=trained.folder,
        )
    assert any("lies above every validation accuracy" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="optuna.optuna_nachos"):
        nachos.NachosObjective(
            dataset=digits16,
            space=nachos.MobileNetV3Space(resolutions=(16,)),
            max_avg_macs=3e6,
            min_accuracy=0.0,
            supernet=trained.folder,
        )
    assert not any("lies above" in r.getMessage() for r in caplog.records)
