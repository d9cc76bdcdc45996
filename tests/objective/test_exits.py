"""Exit searches on torchvision and timm backbones under NachosSampler, MOTPE and NSGA-II,
stored in SQLite; export, reload and predict reproduce the recorded figures."""

from __future__ import annotations

import math
import warnings
from types import SimpleNamespace

import optuna
import pytest
import torch
import torchvision
from torch.utils.data import TensorDataset

import optuna_nachos as nachos
from optuna_nachos.study import constraints_from_user_attrs

NUM_CLASSES = 3


def _split(n: int, seed: int, size: int) -> TensorDataset:
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % NUM_CLASSES
    images = torch.randn(n, 3, size, size, generator=generator) * 0.5
    for c in range(NUM_CLASSES):
        images[labels == c, c] += 1.5  # the class brightens one colour channel
    return TensorDataset(images, labels)


def _data(size: int) -> SimpleNamespace:
    return SimpleNamespace(
        train=_split(36, 0, size),
        val=_split(24, 1, size),
        test=_split(24, 2, size),
        num_classes=NUM_CLASSES,
    )


def _backbone(name: str):
    torch.manual_seed(0)
    if name == "resnet18":
        return torchvision.models.resnet18(num_classes=NUM_CLASSES), 32
    if name == "mobilenet_v3_small":
        return torchvision.models.mobilenet_v3_small(num_classes=NUM_CLASSES), 64
    timm = pytest.importorskip("timm")
    return timm.create_model("resnet18", num_classes=NUM_CLASSES, pretrained=False), 32


def _sampler(name: str, objective: nachos.ExitObjective, **legacy):
    if name == "nachos":
        return nachos.NachosSampler(
            **objective.sampler_options(),
            n_startup_trials=2,
            batch_size=2,
            population_size=8,
            n_generations=2,
            n_folds=2,
            seed=0,
        )
    if name == "motpe":
        return optuna.samplers.TPESampler(multivariate=True, n_startup_trials=2, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # constraints_func is deprecated
        return optuna.samplers.NSGAIISampler(population_size=2, seed=0, **legacy)


def _train_config() -> nachos.TrainConfig:
    return nachos.TrainConfig(
        backbone_epochs=0, warmup_epochs=1, exit_epochs=1, batch_size=12, progress=False
    )


@pytest.mark.parametrize("sampler_name", ["nachos", "motpe", "nsga2"])
@pytest.mark.parametrize("backbone", ["resnet18", "mobilenet_v3_small", "timm-resnet18"])
def test_exit_search_on_sqlite(tmp_path, backbone, sampler_name):
    model, size = _backbone(backbone)
    stages = nachos.cut_stages(model, input_shape=(3, size, size))
    space = nachos.BackboneExitSpace(
        stages, num_classes=NUM_CLASSES, exit_heads=("pool_linear", "mbconv")
    )
    backbone_before = [p.detach().clone() for p in stages.segments[0].parameters()]
    smallest = space.smallest_average_macs()
    peak = space.cost_profile(
        nachos.ExitsConfig(exit_stages=(1,), exit_heads=("pool_linear",))
    ).exit_macs[-1]
    budget = (smallest + peak) / 2
    objective = nachos.ExitObjective(
        space=space,
        data=_data(size),
        max_avg_macs=budget,
        min_accuracy=0.2,
        train_config=_train_config(),
    )
    storage = f"sqlite:///{tmp_path / 'exits.db'}"
    study = optuna.create_study(
        storage=storage,
        study_name=f"{backbone}-{sampler_name}",
        directions=["maximize", "minimize"],
        sampler=_sampler(sampler_name, objective),
    )
    study.optimize(objective, n_trials=5)
    reloaded = optuna.load_study(study_name=study.study_name, storage=storage)
    trials = reloaded.get_trials(states=[optuna.trial.TrialState.COMPLETE])
    assert len(trials) == 5
    names = set(space.distributions())
    for trial in trials:
        assert set(trial.params) == names  # flat: every parameter in every trial
        config = space.config_from_params(trial.params)
        assert trial.user_attrs["exit_macs"] == list(space.cost_profile(config).exit_macs)
        assert set(trial.constraints) == {"max_avg_macs", "min_accuracy", "min_exits"}
        if "skipped_training" in trial.user_attrs:
            assert trial.values[0] == 0.0
            assert trial.constraints["max_avg_macs"] > 0 or trial.constraints["min_exits"] > 0
        else:
            ratios = trial.user_attrs["exit_ratios"]
            expected = math.fsum(r * c for r, c in zip(ratios, trial.user_attrs["exit_macs"]))
            assert math.isclose(trial.values[1], expected, rel_tol=1e-9)
    assert any("skipped_training" not in t.user_attrs for t in trials)
    # the frozen backbone did not move
    for before, after in zip(backbone_before, stages.segments[0].parameters()):
        assert torch.equal(before, after)
    if sampler_name == "nachos":
        # the sampler never proposes a statically infeasible network after its random start
        proposed = [t for t in trials if "nachos:proposal" in t.system_attrs]
        for trial in proposed:
            assert "skipped_training" not in trial.user_attrs


def test_legacy_constraints_func_stores_each_constraint_once(tmp_path):
    model, size = _backbone("resnet18")
    space = nachos.BackboneExitSpace(
        nachos.cut_stages(model, input_shape=(3, size, size)),
        num_classes=NUM_CLASSES,
        exit_heads=("pool_linear",),
    )
    budget = space.smallest_average_macs() * 1.5
    objective = nachos.ExitObjective(
        space=space,
        data=_data(size),
        max_avg_macs=budget,
        min_accuracy=0.2,
        train_config=_train_config(),
        set_constraints=False,
    )
    func = constraints_from_user_attrs(max_avg_macs=budget, min_accuracy=0.2)
    storage = f"sqlite:///{tmp_path / 'legacy.db'}"
    study = optuna.create_study(
        storage=storage,
        directions=["maximize", "minimize"],
        sampler=_sampler("nsga2", objective, constraints_func=func),
    )
    study.optimize(objective, n_trials=4)
    for trial in optuna.load_study(study_name=study.study_name, storage=storage).trials:
        assert set(trial.constraints) == {"0", "1", "2"}  # one list, nothing else
        attrs = trial.user_attrs
        assert trial.constraints["0"] == pytest.approx(attrs["avg_macs"] - budget)
        assert trial.constraints["1"] == pytest.approx(0.2 - attrs["accuracy"])
        assert trial.constraints["2"] == attrs["exit_deficit"]
        assert attrs["accuracy"] == trial.values[0]
    with pytest.raises(KeyError, match="set_user_attr"):
        func(optuna.trial.create_trial(values=[0.5, 1.0], user_attrs={}))


def test_export_reload_predict_reproduces_the_trial(tmp_path):
    model, size = _backbone("resnet18")
    space = nachos.BackboneExitSpace(
        nachos.cut_stages(model, input_shape=(3, size, size)), num_classes=NUM_CLASSES
    )
    data = _data(size)
    objective = nachos.ExitObjective(
        space=space,
        data=data,
        max_avg_macs=space.smallest_average_macs() * 3,
        min_accuracy=0.0,
        train_config=_train_config(),
        export_dir=tmp_path / "exports",
    )
    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path / 'export.db'}", directions=["maximize", "minimize"]
    )
    config = nachos.ExitsConfig(exit_stages=(1, 3), exit_heads=("mbconv", "nachos"))
    study.enqueue_trial(space.params_from_config(config))
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    deployed = nachos.load_eenn(trial.user_attrs[nachos.record.EXPORT_ATTR])
    assert deployed.config is None and deployed.preprocessing is None
    assert list(deployed.exit_macs) == trial.user_attrs["exit_macs"]
    assert list(deployed.thresholds) == trial.user_attrs["thresholds"]
    images = torch.stack([x for x, _ in data.val])
    labels = torch.stack([y for _, y in data.val])
    prediction = deployed.predict(images)
    accuracy = (prediction.predictions == labels).double().mean().item()
    ratios = torch.bincount(prediction.exit_indices, minlength=3).double() / len(labels)
    assert accuracy == pytest.approx(trial.user_attrs["accuracy"], abs=1e-12)
    assert ratios.tolist() == pytest.approx(trial.user_attrs["exit_ratios"], abs=1e-12)
    avg = math.fsum(r * c for r, c in zip(ratios.tolist(), deployed.exit_macs))
    assert avg == pytest.approx(trial.values[1], rel=1e-9)
