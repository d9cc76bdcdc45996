import json

import pytest

from optuna_nachos.train import TrainConfig


def test_defaults_reproduce_the_reference() -> None:
    config = TrainConfig()
    assert (config.backbone_epochs, config.warmup_epochs, config.exit_epochs) == (10, 5, 5)
    assert config.batch_size == 128
    assert (config.lr, config.momentum, config.weight_decay) == (0.01, 0.9, 5e-5)
    assert config.scheduler == "cosine"
    assert (config.w_alpha, config.beta, config.w_beta, config.w_gamma) == (1, 1, 1, 1)
    assert config.support_fraction == 0.1
    assert config.freeze_backbone is True
    assert config.device == "auto" and config.seed == 0 and config.progress is None
    assert config.num_workers == 0
    assert config.exit_phase_epochs == 10


def test_keyword_only_and_frozen() -> None:
    with pytest.raises(TypeError):
        TrainConfig(10)  # type: ignore[misc]
    config = TrainConfig()
    with pytest.raises(AttributeError):
        config.lr = 1.0  # type: ignore[misc]


def test_round_trip_through_json() -> None:
    config = TrainConfig(backbone_epochs=2, lr=0.05, w_gamma=0.0, progress=False, device="cpu")
    again = TrainConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"backbone_epochs": -1}, "backbone_epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"lr": 0.0}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"momentum": 1.0}, "momentum"),
        ({"w_beta": -1.0}, "w_beta"),
        ({"scheduler": "step"}, "scheduler"),
        ({"support_fraction": 1.0}, "support_fraction"),
        ({"progress": "yes"}, "progress"),
        ({"w_alpha": 0, "beta": 0, "w_beta": 0, "w_gamma": 0}, "at least one loss weight"),
    ],
)
def test_invalid_settings_are_named(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


def test_from_dict_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError, match="unknown TrainConfig keys"):
        TrainConfig.from_dict({"epochs": 3})
