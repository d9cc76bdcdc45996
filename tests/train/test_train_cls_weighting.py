"""The three weightings of the classification term."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from optuna_nachos.models import EENNOutput, exit_probabilities
from optuna_nachos.train import CLS_WEIGHTINGS, NachosLoss, TrainConfig, classification_loss


def _batch(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    logits = [torch.randn(6, 4, generator=generator, requires_grad=True) for _ in range(3)]
    raw = torch.rand(6, 2, generator=generator)
    confidences = torch.cat([raw, torch.ones(6, 1)], dim=1).requires_grad_(True)
    targets = torch.randint(0, 4, (6,), generator=generator)
    return logits, confidences, targets


def test_the_three_weightings_are_offered() -> None:
    assert CLS_WEIGHTINGS == ("exit_probability", "weighted_logits", "uniform")
    for weighting in CLS_WEIGHTINGS:
        assert TrainConfig(cls_weighting=weighting).cls_weighting == weighting
        assert NachosLoss(cls_weighting=weighting).cls_weighting == weighting
    with pytest.raises(ValueError, match="cls_weighting"):
        TrainConfig(cls_weighting="mixture")


def test_each_weighting_computes_its_formula() -> None:
    logits, confidences, targets = _batch()
    p = exit_probabilities(confidences)
    ce = torch.stack([F.cross_entropy(z, targets, reduction="none") for z in logits], dim=1)
    expected = {
        "exit_probability": (p * ce).sum(dim=1).mean(),
        "weighted_logits": F.cross_entropy(
            sum(p[:, j : j + 1] * z for j, z in enumerate(logits)), targets
        ),
        "uniform": ce.mean(),
    }
    values = {w: classification_loss(logits, targets, p, weighting=w) for w in CLS_WEIGHTINGS}
    for weighting, value in values.items():
        assert torch.allclose(value, expected[weighting]), weighting
    # Three different quantities on the same batch.
    assert len({round(float(v.detach()), 6) for v in values.values()}) == 3


def test_which_weightings_reach_the_confidences_and_every_exit() -> None:
    for weighting in CLS_WEIGHTINGS:
        logits, confidences, targets = _batch(1)
        p = exit_probabilities(confidences)
        classification_loss(logits, targets, p, weighting=weighting).backward()
        grad = confidences.grad
        grad_b = 0.0 if grad is None else float(grad[:, :-1].abs().sum())
        if weighting == "uniform":
            assert grad_b == 0  # only the other terms train the confidences
        else:
            assert grad_b > 0
        for z in logits:  # every exit learns, whatever the weighting
            assert z.grad.abs().sum() > 0


def test_uniform_does_not_starve_an_exit_that_few_samples_reach() -> None:
    # Confidences near 1 at the first exit: the deeper exits have exit probability ~0.
    logits, _, targets = _batch(2)
    confidences = torch.cat(
        [torch.full((6, 1), 0.999), torch.full((6, 1), 0.5), torch.ones(6, 1)], 1
    )
    p = exit_probabilities(confidences)
    grads = {}
    for weighting in CLS_WEIGHTINGS:
        deep = logits[2].detach().clone().requires_grad_(True)
        classification_loss(
            [logits[0], logits[1], deep], targets, p, weighting=weighting
        ).backward()
        grads[weighting] = float(deep.grad.abs().sum())
    assert grads["uniform"] > 100 * grads["exit_probability"]
    assert grads["uniform"] > 100 * grads["weighted_logits"]


def test_nachos_loss_uses_the_weighting() -> None:
    logits, confidences, targets = _batch(3)
    output = EENNOutput(logits=logits, confidences=confidences)
    totals = {
        w: float(NachosLoss(cls_weighting=w, beta=0.0)(output, targets).cls.detach())
        for w in CLS_WEIGHTINGS
    }
    assert len(set(totals.values())) == 3
