"""The packaged objective chooses on validation and reports on test."""

import math

import optuna
import torch

import optuna_nachos as nachos
from optuna_nachos.record import reported_values, selection_values

from .conftest import BUDGET, RESOLUTION

FLOOR = 0.2


def _config():
    return nachos.EENNConfig(
        depths=(2,) * 5,
        kernel_sizes=((3, 3),) * 5,
        expand_ratios=((3, 3),) * 5,
        exit_stages=(1, 3),
        resolution=RESOLUTION,
    )


def test_objective_values_are_validation_and_test_attributes_match_the_exported_network(
    tmp_path, digits
):
    space = nachos.MobileNetV3Space(resolutions=(RESOLUTION,), depths=(2,), expand_ratios=(3, 4))
    store_dir = tmp_path / "artifacts"
    store_dir.mkdir()
    store = optuna.artifacts.FileSystemArtifactStore(str(store_dir))
    objective = nachos.NachosObjective(
        dataset=digits,
        space=space,
        max_avg_macs=BUDGET,
        min_accuracy=FLOOR,
        artifact_store=store,
        train_config=nachos.TrainConfig(
            backbone_epochs=2, warmup_epochs=1, exit_epochs=1, progress=False, batch_size=64
        ),
        test_evaluation="every",  # its test figures, admissible or not
    )
    storage = f"sqlite:///{tmp_path / 'protocol.db'}"
    study = nachos.create_study(storage=storage, study_name="p", settings=objective.settings())
    study.enqueue_trial(space.params_from_config(_config()))
    study.optimize(objective, n_trials=1)
    trial = optuna.load_study(study_name="p", storage=storage).trials[0]
    attrs = trial.user_attrs
    assert study.user_attrs["nachos_settings"]["objective_split"] == "validation"
    assert attrs["objective_split"] == "validation"

    # Objective values and the measured constraints are the validation figures.
    accuracy, avg_macs = trial.values
    assert accuracy == attrs["val_accuracy"]
    assert avg_macs == attrs["val_avg_macs"]
    assert math.isclose(trial.constraints["min_accuracy"], FLOOR - accuracy, abs_tol=1e-12)
    assert math.isclose(trial.constraints["max_avg_macs"], avg_macs - BUDGET, rel_tol=1e-9)
    assert selection_values(trial) == (accuracy, avg_macs)
    costs = attrs["exit_macs"]
    val_ratios = attrs["val_exit_ratios"]
    assert math.isclose(avg_macs, sum(r * c for r, c in zip(val_ratios, costs)), rel_tol=1e-9)

    # The test attributes equal an independent re-evaluation of the exported network.
    deployed = nachos.load_eenn(trial, artifact_store=store)
    images = torch.stack([digits.test[i][0] for i in range(len(digits.test))])
    labels = torch.tensor([digits.test[i][1] for i in range(len(digits.test))])
    prediction = deployed.predict(images, preprocess=False)  # normalized already
    test_accuracy = (prediction.predictions == labels).double().mean().item()
    exits = prediction.exit_indices
    test_macs = sum(costs[j] * (exits == j).double().mean().item() for j in range(len(costs)))
    assert math.isclose(attrs["test_accuracy"], test_accuracy, abs_tol=1e-9)
    assert math.isclose(attrs["test_avg_macs"], test_macs, rel_tol=1e-9)
    assert reported_values(trial) == (attrs["test_accuracy"], attrs["test_avg_macs"])

    # The validation and test splits are different images: the two figures are measured apart.
    val_images = torch.stack([digits.val[i][0] for i in range(len(digits.val))])
    val_labels = torch.tensor([digits.val[i][1] for i in range(len(digits.val))])
    val_prediction = deployed.predict(val_images, preprocess=False)
    val_accuracy = (val_prediction.predictions == val_labels).double().mean().item()
    assert math.isclose(val_accuracy, accuracy, abs_tol=1e-9)
