import optuna
import pytest
from optuna.distributions import FloatDistribution

from optuna_nachos.record import study_settings
from optuna_nachos.study import (
    SAMPLER_NAMES,
    constraint_values,
    create_sampler,
    create_study,
    is_feasible,
)
from optuna_nachos.study._create import settings_version


def test_create_study_sets_directions_metrics_and_settings(tmp_path):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    study = create_study(storage=storage, study_name="a", settings={"max_avg_macs": 2.7e6})
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert study.metric_names == ["accuracy", "avg_macs"]
    assert study_settings(study) == {"max_avg_macs": 2.7e6}
    again = create_study(storage=storage, study_name="a")  # resumes
    assert again._study_id == study._study_id
    assert study_settings(again) == {"max_avg_macs": 2.7e6}


def test_create_study_rejects_foreign_directions(tmp_path):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    optuna.create_study(storage=storage, study_name="b", direction="minimize")
    with pytest.raises(ValueError, match="directions"):
        create_study(storage=storage, study_name="b")


@pytest.mark.parametrize("name", [n for n in SAMPLER_NAMES if n != "nachos"])
def test_create_sampler_known_names(name):
    sampler = create_sampler(name, seed=1)
    assert isinstance(sampler, optuna.samplers.BaseSampler)


def test_create_sampler_motpe_is_multivariate_grouped_tpe():
    sampler = create_sampler("motpe", seed=0)
    assert isinstance(sampler, optuna.samplers.TPESampler)
    assert sampler._multivariate and sampler._group


def test_create_sampler_unknown_name_lists_choices():
    with pytest.raises(ValueError, match="motpe"):
        create_sampler("cmaes-typo")


def test_constraint_values_fixed_order_and_missing():
    trial = optuna.trial.create_trial(
        values=[0.5, 1.0],
        params={"x": 0.1},
        distributions={"x": FloatDistribution(0, 1)},
        system_attrs={"constraints:min_accuracy": 0.2, "constraints:max_avg_macs": -3.0},
    )
    assert constraint_values(trial) == [-3.0, 0.2]
    assert constraint_values(trial, names=["min_accuracy"]) == [0.2]
    assert not is_feasible(trial)
    with pytest.raises(KeyError, match="max_params"):
        constraint_values(trial, names=["max_params"])


SETTINGS = {
    "max_avg_macs": 2.7e6,
    "min_accuracy": 0.65,
    "sampler": "motpe",
    "train": {"backbone_epochs": 10, "device": "auto"},
}


def test_settings_are_fixed_at_creation(tmp_path):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    create_study(storage=storage, study_name="f", settings=SETTINGS)
    changed = {**SETTINGS, "min_accuracy": 0.5, "train": {"backbone_epochs": 2, "device": "auto"}}
    with pytest.raises(ValueError) as error:
        create_study(storage=storage, study_name="f", settings=changed)
    message = str(error.value)
    assert "\n" not in message
    assert "min_accuracy 0.65 -> 0.5" in message and "train.backbone_epochs 10 -> 2" in message
    assert "--new-settings" in message
    study = optuna.load_study(study_name="f", storage=storage)
    assert study_settings(study) == SETTINGS  # nothing rewritten

    # The sampler and the device may change: they do not change what a trial measures.
    free = {**SETTINGS, "sampler": "nachos", "train": {"backbone_epochs": 10, "device": "cpu"}}
    assert study_settings(create_study(storage=storage, study_name="f", settings=free)) == free


def test_new_settings_are_recorded_as_a_new_version(tmp_path):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    study = create_study(storage=storage, study_name="v", settings=SETTINGS)
    assert settings_version(study) == 1
    changed = {**SETTINGS, "max_avg_macs": 2.0e6}
    study = create_study(storage=storage, study_name="v", settings=changed, new_settings=True)
    assert study_settings(study) == changed
    assert settings_version(study) == 2
    assert study.user_attrs["nachos_settings_history"] == [{"version": 1, "settings": SETTINGS}]
