import copy
import logging
import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from optuna_nachos._logging import LOGGER_NAME
from optuna_nachos.train import (
    PHASES,
    FitResult,
    TrainConfig,
    TrainingDivergedError,
    collect_exit_outputs,
    fit,
)

QUICK = dict(batch_size=16, progress=False, device="cpu", lr=0.05)


def _backbone_state(model: nn.Module) -> dict[str, torch.Tensor]:
    state = {}
    for index, module in enumerate(model.backbone_modules()):
        for name, tensor in module.state_dict().items():
            state[f"{index}.{name}"] = tensor.detach().clone()
    return state


def _bn_stats(model: nn.Module) -> list[torch.Tensor]:
    return [
        m.running_mean.clone()
        for module in model.backbone_modules()
        for m in module.modules()
        if isinstance(m, nn.BatchNorm2d)
    ]


def test_phases_records_and_schedule(network: nn.Module, dataset: TensorDataset) -> None:
    config = TrainConfig(backbone_epochs=2, warmup_epochs=1, exit_epochs=2, **QUICK)
    result = fit(network, dataset, config=config)
    assert isinstance(result, FitResult) and result.model is network
    assert [(r.phase, r.epoch) for r in result.records] == [
        ("backbone", 1),
        ("backbone", 2),
        ("warmup", 1),
        ("exits", 1),
        ("exits", 2),
    ]
    assert set(result.phase_seconds) == set(PHASES)
    assert result.total_seconds == pytest.approx(sum(r.seconds for r in result.records))
    backbone, warmup, exits = (result.phase_records(p) for p in PHASES)
    assert set(backbone[0].losses) == {"total", "cls"}
    assert set(warmup[0].losses) == {"total", "cls", "conf", "macs", "sup"}
    assert warmup[0].losses["sup"] == 0.0 and exits[0].losses["sup"] > 0.0
    assert warmup[0].losses["macs"] == 0.0  # no budget
    # cosine stepped per epoch, restarted with each phase's new optimizer
    assert backbone[0].lr == pytest.approx(0.05)
    assert backbone[1].lr == pytest.approx(0.05 * (1 + math.cos(math.pi / 2)) / 2)
    assert warmup[0].lr == pytest.approx(0.05)
    assert exits[0].lr == pytest.approx(0.05 * (1 + math.cos(math.pi / 3)) / 2)
    for record in result.records:
        assert record.images_per_second > 0 and record.step_seconds > 0
        assert all(math.isfinite(v) for v in record.losses.values())
    assert backbone[0].samples == 48
    # the support set (class-balanced 10 %: 2 per class here) sits out its epoch
    assert exits[0].samples == 48 - 3 * 2 and exits[0].support_seconds > 0
    assert result.support_accuracy.shape == (3, network.num_exits)
    assert result.to_dict()["records"][0]["phase"] == "backbone"


def test_frozen_backbone_and_its_batchnorm_do_not_move(
    network: nn.Module, dataset: TensorDataset
) -> None:
    before = _backbone_state(network)
    heads_before = copy.deepcopy(network.exit_heads.state_dict())
    flags = [p.requires_grad for p in network.parameters()]
    fit(
        network,
        dataset,
        config=TrainConfig(backbone_epochs=0, warmup_epochs=1, exit_epochs=1, **QUICK),
    )
    after = _backbone_state(network)
    assert before.keys() == after.keys()
    for name in before:
        assert torch.equal(before[name], after[name]), name
    assert any("running_mean" in name for name in before)
    moved = [
        not torch.equal(v, network.exit_heads.state_dict()[k]) for k, v in heads_before.items()
    ]
    assert any(moved)
    assert [p.requires_grad for p in network.parameters()] == flags  # restored


def test_unfrozen_backbone_is_fine_tuned(network: nn.Module, dataset: TensorDataset) -> None:
    weights = _backbone_state(network)
    stats = _bn_stats(network)
    config = TrainConfig(
        backbone_epochs=0, warmup_epochs=1, exit_epochs=0, freeze_backbone=False, **QUICK
    )
    fit(network, dataset, config=config)
    after = _backbone_state(network)
    assert any(not torch.equal(weights[k], after[k]) for k in weights if "weight" in k)
    assert any(not torch.equal(a, b) for a, b in zip(stats, _bn_stats(network), strict=True))


def test_frozen_forward_equals_the_model_forward(network: nn.Module) -> None:
    network.eval()
    x = torch.randn(5, 1, 8, 8)
    expected = network(x)
    got = network(x, backbone_grad=False)
    assert torch.allclose(got.confidences, expected.confidences)
    for a, b in zip(got.logits, expected.logits, strict=True):
        assert torch.allclose(a, b)
    assert not got.logits[-1].requires_grad and got.confidences.requires_grad


def test_fit_is_deterministic_for_a_seed(make_network, dataset: TensorDataset) -> None:
    config = TrainConfig(backbone_epochs=1, warmup_epochs=1, exit_epochs=1, **QUICK)
    first = fit(make_network(seed=3), dataset, config=config)
    second = fit(make_network(seed=3), dataset, config=config)
    assert [r.losses for r in first.records] == [r.losses for r in second.records]
    for a, b in zip(
        first.model.state_dict().values(), second.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)
    other = fit(
        make_network(seed=3), dataset, config=TrainConfig(**{**config.to_dict(), "seed": 1})
    )
    assert [r.losses for r in other.records] != [r.losses for r in first.records]


def test_fit_leaves_the_global_rng_alone(network: nn.Module, dataset: TensorDataset) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    fit(
        network,
        dataset,
        config=TrainConfig(backbone_epochs=1, warmup_epochs=0, exit_epochs=0, **QUICK),
    )
    assert torch.equal(torch.rand(3), expected)


def test_divergence_names_phase_epoch_and_term(network: nn.Module, dataset: TensorDataset) -> None:
    config = TrainConfig(backbone_epochs=3, warmup_epochs=0, exit_epochs=0, **{**QUICK, "lr": 1e6})
    with pytest.raises(TrainingDivergedError) as info:
        fit(network, dataset, config=config)
    error = info.value
    assert isinstance(error, RuntimeError)
    assert error.phase == "backbone" and error.terms == ("cls",)
    assert f"epoch {error.epoch}" in str(error) and "cls=" in str(error)


def test_injected_nan_stops_at_once(network: nn.Module, dataset: TensorDataset) -> None:
    images, labels = dataset.tensors
    images = images.clone()
    images[:] = float("nan")
    poisoned = TensorDataset(images, labels)
    config = TrainConfig(backbone_epochs=0, warmup_epochs=1, exit_epochs=0, **QUICK)
    with pytest.raises(TrainingDivergedError) as info:
        fit(network, poisoned, config=config)
    assert info.value.phase == "warmup" and info.value.epoch == 1 and info.value.batch == 0
    assert "cls" in info.value.terms and "conf" in info.value.terms
    assert "'warmup', epoch 1" in str(info.value)


def test_mac_term_is_trained_when_a_budget_is_set(
    network: nn.Module, dataset: TensorDataset
) -> None:
    costs = [1.0, 2.0, 3.0, 4.0, 5.0]
    config = TrainConfig(backbone_epochs=0, warmup_epochs=3, exit_epochs=0, **QUICK)
    result = fit(network, dataset, config=config, exit_costs=costs, max_avg_macs=1.5)
    macs = [r.losses["macs"] for r in result.records]
    assert macs[0] > 0 and macs[-1] < macs[0]


def test_splits_objects_and_argument_checks(network: nn.Module, dataset: TensorDataset) -> None:
    splits = SimpleNamespace(train=dataset, num_classes=3)
    config = TrainConfig(backbone_epochs=1, warmup_epochs=0, exit_epochs=0, **QUICK)
    assert fit(network, splits, config=config).records[0].samples == 48
    with pytest.raises(ValueError, match="one entry per exit"):
        fit(network, dataset, config=config, exit_costs=[1.0, 2.0])
    with pytest.raises(ValueError, match="needs exit_costs"):
        fit(network, dataset, config=config, max_avg_macs=1.0)
    with pytest.raises(TypeError, match="EarlyExitNetwork"):
        fit(nn.Linear(2, 2), dataset, config=config)


def test_epoch_summaries_are_logged(network, dataset, nachos_log: pytest.LogCaptureFixture) -> None:
    config = TrainConfig(backbone_epochs=1, warmup_epochs=1, exit_epochs=0, **QUICK)
    with nachos_log.at_level(logging.INFO, logger=LOGGER_NAME):
        fit(network, dataset, config=config)
    messages = [r.getMessage() for r in nachos_log.records if r.name.startswith(LOGGER_NAME)]
    assert any(m.startswith("backbone epoch 1/1") for m in messages)
    assert any(m.startswith("warmup epoch 1/1") and "conf=" in m for m in messages)


def test_training_learns_the_backbone_and_the_exits(make_network, make_dataset) -> None:
    network = make_network(seed=0)
    data, held_out = make_dataset(n=96), make_dataset(n=96, seed=5)
    # The final classifier starts near zero (linear layers normal(0, 0.01), as torchvision
    # initializes MobileNetV3), so the tiny backbone needs a few more epochs than 8.
    config = TrainConfig(backbone_epochs=12, warmup_epochs=2, exit_epochs=2, **QUICK)
    fit(network, data, config=config)
    accuracy = collect_exit_outputs(network, held_out, device="cpu").correct.float().mean(0)
    assert accuracy[-1] > 0.9
    assert (accuracy[:-1] > 0.6).all()  # chance is 1/3


def test_fit_is_deterministic_with_random_augmentation(make_network) -> None:
    from optuna_nachos import data as data_module

    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (40, 1, 8, 8), dtype=torch.uint8, generator=generator)
    labels = torch.arange(40) % 3
    augmented = data_module.TensorImageDataset(
        images, labels, mean=(0.5,), std=(0.25,), padding=1, horizontal_flip=True
    )
    config = TrainConfig(backbone_epochs=1, warmup_epochs=1, exit_epochs=1, **QUICK)
    first = fit(make_network(seed=1), augmented, config=config)
    second = fit(make_network(seed=1), augmented, config=config)
    assert [r.losses for r in first.records] == [r.losses for r in second.records]
