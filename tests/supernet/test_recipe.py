"""The supernet's training recipe: optimizers, schedule, clipping, initialization, estimate."""

import logging
import math

import pytest
import torch

from optuna_nachos.supernet import Supernet, SupernetSettings
from optuna_nachos.supernet._train import (
    build_optimizers,
    clip_gradients,
    estimate_seconds,
    learning_rate_factor,
    typical_step_seconds,
    zero_init_residual,
)


@pytest.fixture(scope="module")
def supernet() -> Supernet:
    torch.manual_seed(0)
    return Supernet(num_classes=10, in_channels=1, resolution=16)


def _ids(parameters) -> set[int]:
    return {id(p) for p in parameters}


def test_heads_have_their_own_adam_optimizer(supernet):
    settings = SupernetSettings(head_lr=0.02, lr=0.3, epochs=2, warmup_epochs=0)
    optimizers, schedulers = build_optimizers(supernet, settings, steps_per_epoch=5)
    assert len(optimizers) == len(schedulers) == 2
    backbone, heads = optimizers
    assert isinstance(backbone, torch.optim.SGD) and isinstance(heads, torch.optim.Adam)
    head_ids = _ids(supernet.heads.parameters())
    backbone_ids = {id(p) for group in backbone.param_groups for p in group["params"]}
    assert backbone_ids == _ids(supernet.backbone.parameters())
    assert not backbone_ids & head_ids
    assert {id(p) for g in heads.param_groups for p in g["params"]} == head_ids
    assert backbone.param_groups[0]["lr"] == pytest.approx(0.3)
    assert heads.param_groups[0]["lr"] == pytest.approx(0.02)
    # Weight decay only on convolution and linear weights.
    decayed, plain = backbone.param_groups
    assert decayed["weight_decay"] == settings.weight_decay and plain["weight_decay"] == 0.0
    assert all(p.dim() > 1 for p in decayed["params"])
    names = {id(p): name for name, p in supernet.named_parameters()}
    # OFA's kernel transformation matrices are not decayed either.
    assert all(p.dim() <= 1 or names[id(p)].endswith("_matrix") for p in plain["params"])


def test_first_recipe_trains_the_heads_with_the_backbone(supernet):
    optimizers, _ = build_optimizers(supernet, SupernetSettings(head_lr=None), steps_per_epoch=5)
    assert len(optimizers) == 1
    held = {id(p) for group in optimizers[0].param_groups for p in group["params"]}
    assert held == _ids(supernet.parameters())


def test_warmup_then_cosine():
    factors = [learning_rate_factor(s, warmup_steps=10, total_steps=50) for s in range(50)]
    warmup, decay = factors[:10], factors[10:]
    assert 0 < warmup[0] < 0.2
    assert all(a < b for a, b in zip(warmup, warmup[1:]))
    assert decay[0] == pytest.approx(1.0)
    assert all(a > b for a, b in zip(decay, decay[1:]))
    assert decay[-1] == pytest.approx(0.5 * (1 + math.cos(math.pi * 39 / 40)))
    assert learning_rate_factor(50, warmup_steps=10, total_steps=50) == pytest.approx(0.0)
    # No warm-up: the cosine from the first step.
    assert learning_rate_factor(0, warmup_steps=0, total_steps=10) == pytest.approx(1.0)


def test_schedulers_follow_the_warmup(supernet):
    settings = SupernetSettings(epochs=2, warmup_epochs=1, lr=0.2, head_lr=0.01)
    optimizers, schedulers = build_optimizers(supernet, settings, steps_per_epoch=4)
    seen = []
    for _ in range(8):
        seen.append([each.param_groups[0]["lr"] for each in optimizers])
        for each, scheduler in zip(optimizers, schedulers):
            each.step()
            scheduler.step()
    peaks = [0.2, 0.01]
    for index, peak in enumerate(peaks):
        rates = [row[index] for row in seen]
        assert rates[0] == pytest.approx(peak / 5)
        assert rates[4] == pytest.approx(peak)  # the warm-up ends after 4 steps
        assert max(rates) == pytest.approx(peak)
        assert rates[-1] < rates[4]


def test_clipping_applies_to_backbone_and_heads_apart(supernet):
    settings = SupernetSettings(head_lr=0.01)
    optimizers, _ = build_optimizers(supernet, settings, steps_per_epoch=1)
    for parameter in supernet.parameters():
        parameter.grad = torch.full_like(parameter, 3.0)
    before = clip_gradients(optimizers, 1.0)
    assert all(norm > 1.0 for norm in before)
    for each in optimizers:
        params = [p for g in each.param_groups for p in g["params"]]
        norm = torch.stack([p.grad.norm() for p in params]).norm()
        assert norm == pytest.approx(1.0, rel=1e-4)
    # 0 does not clip: it only reports the norms.
    for parameter in supernet.parameters():
        parameter.grad = torch.full_like(parameter, 3.0)
    unclipped = clip_gradients(optimizers, 0.0)
    assert unclipped == pytest.approx(before, rel=1e-5)
    assert float(next(supernet.parameters()).grad.flatten()[0]) == 3.0
    supernet.zero_grad(set_to_none=True)


def test_zero_init_residual_zeroes_the_last_gamma_of_residual_blocks_only():
    torch.manual_seed(0)
    fresh = Supernet(num_classes=10, in_channels=1, resolution=16)
    changed = zero_init_residual(fresh)
    blocks = fresh.backbone.blocks
    residual = [b for b in blocks if b.shortcut is not None]
    assert changed == len(residual) > 0
    for block in blocks:
        norm = block.conv.point_linear.bn
        gamma = getattr(norm, "bn", norm).weight
        if block.shortcut is None:
            assert torch.all(gamma == 1.0)
        else:
            assert torch.all(gamma == 0.0)
    # A residual block then starts as the identity.
    block = residual[0].eval()
    x = torch.randn(2, 16, 8, 8)
    assert torch.allclose(block(x), x)


def test_time_estimate_from_the_first_steps():
    assert typical_step_seconds([9.0, 2.0, 3.0, 2.5]) == 2.5  # the first step dropped
    assert typical_step_seconds([4.0]) == 4.0
    # 3 epochs of 10 steps, 4 of them timed: 26 steps left at 2.5 s.
    assert estimate_seconds([9.0, 2.0, 3.0, 2.5], steps_per_epoch=10, epochs=3) == pytest.approx(
        65.0
    )
    # Resumed at epoch 3: 6 steps left.
    assert estimate_seconds(
        [9.0, 2.0, 3.0, 2.5], steps_per_epoch=10, epochs=3, epochs_done=2
    ) == pytest.approx(15.0)
    with pytest.raises(ValueError, match="at least one step"):
        typical_step_seconds([])


def test_training_says_what_it_will_cost_and_each_epoch(tmp_path, digits16, caplog):
    from optuna_nachos.supernet import train_supernet

    from .conftest import tiny_settings

    with caplog.at_level(logging.INFO, logger="optuna.optuna_nachos"):
        train_supernet(digits16, tmp_path / "sn", settings=tiny_settings(epochs=2, batch_size=32))
    messages = [r.getMessage() for r in caplog.records]
    plan = next(m for m in messages if m.startswith("Supernet: 2 epochs of 8 steps"))
    assert "batch 32" in plan and "3 subnets per step" in plan
    estimate = next(m for m in messages if "the first steps took" in m)
    assert "of training left" in estimate
    epochs = [m for m in messages if m.startswith("Supernet epoch ")]
    assert len(epochs) == 2
    assert "validation accuracy per exit (%) largest" in epochs[-1]
    assert epochs[-1].count(" / ") == 8  # five exits of two subnets
