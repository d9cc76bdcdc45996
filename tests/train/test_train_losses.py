import math

import pytest
import torch
import torch.nn.functional as F

from optuna_nachos.models import EENNOutput, exit_probabilities
from optuna_nachos.train import (
    NachosLoss,
    classification_loss,
    confidence_loss,
    exit_correctness,
    expected_macs,
    macs_loss,
    support_loss,
)


def _ce(logits: list[float], target: int) -> float:
    return -logits[target] + math.log(sum(math.exp(z) for z in logits))


def _bce(b: float, t: float) -> float:
    return -(t * math.log(b) + (1 - t) * math.log(1 - b))


def test_classification_loss_by_hand() -> None:
    z0 = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    z1 = torch.tensor([[0.5, 0.5], [3.0, -1.0]])
    targets = torch.tensor([0, 1])
    conf = torch.tensor([[0.8, 1.0], [0.25, 1.0]])
    p = exit_probabilities(conf)
    assert torch.allclose(p, torch.tensor([[0.8, 0.2], [0.25, 0.75]]))
    expected = (
        0.8 * _ce([2, 0], 0)
        + 0.2 * _ce([0.5, 0.5], 0)
        + 0.25 * _ce([0, 1], 1)
        + 0.75 * _ce([3, -1], 1)
    ) / 2
    assert classification_loss([z0, z1], targets, p).item() == pytest.approx(expected, rel=1e-6)


def test_confidence_loss_is_class_balanced_per_exit() -> None:
    # one early exit: 3 correct samples and 1 wrong one; the final column is ignored.
    b = torch.tensor([0.9, 0.2, 0.6, 0.3])
    conf = torch.stack([b, torch.ones(4)], dim=1)
    correct = torch.tensor([[True, True], [False, True], [True, False], [True, True]])
    w_pos, w_neg = 4 / (2 * 3), 4 / (2 * 1)
    expected = (
        w_pos * _bce(0.9, 1) + w_neg * _bce(0.2, 0) + w_pos * _bce(0.6, 1) + w_pos * _bce(0.3, 1)
    ) / 4
    assert confidence_loss(conf, correct).item() == pytest.approx(expected, rel=1e-6)


def test_confidence_loss_with_one_group_and_without_early_exits() -> None:
    conf = torch.tensor([[0.5, 1.0], [0.25, 1.0]])
    correct = torch.ones(2, 2, dtype=torch.bool)
    expected = (_bce(0.5, 1) + _bce(0.25, 1)) / 2 * (2 / (2 * 2))
    assert confidence_loss(conf, correct).item() == pytest.approx(expected, rel=1e-6)
    assert confidence_loss(torch.ones(3, 1), torch.ones(3, 1, dtype=torch.bool)).item() == 0.0


def test_confidence_loss_lets_nan_through() -> None:
    conf = torch.tensor([[float("nan"), 1.0], [0.5, 1.0]])
    assert math.isnan(confidence_loss(conf, torch.ones(2, 2, dtype=torch.bool)).item())


def test_exit_correctness() -> None:
    logits = [torch.tensor([[1.0, 0.0], [1.0, 0.0]]), torch.tensor([[0.0, 1.0], [0.0, 1.0]])]
    correct = exit_correctness(logits, torch.tensor([0, 1]))
    assert correct.tolist() == [[True, False], [False, True]]


def test_macs_loss_by_hand() -> None:
    p = torch.tensor([[0.5, 0.25, 0.25], [0.0, 0.0, 1.0]])
    costs = torch.tensor([1.0, 2.0, 4.0])
    e = ((0.5 + 0.5 + 1.0) + 4.0) / 2  # 3.0
    assert expected_macs(p, costs).item() == pytest.approx(e)
    assert macs_loss(p, costs, 2.0).item() == pytest.approx((e - 2.0) / (4.0 - 2.0))
    assert macs_loss(p, costs, 3.5).item() == 0.0
    # cost_final equal to the budget: the budget is the denominator
    assert macs_loss(p, torch.tensor([1.0, 2.0, 2.5]), 2.5).item() == 0.0


def test_macs_loss_gradient_reaches_the_confidences_only_when_over_budget() -> None:
    costs = torch.tensor([1e6, 2e6, 3e6])
    b = torch.tensor([[0.2, 0.3], [0.1, 0.4]], requires_grad=True)
    conf = torch.cat([b, torch.ones(2, 1)], dim=1)
    loss = macs_loss(exit_probabilities(conf), costs, 1.5e6)
    assert loss.item() > 0 and loss.requires_grad
    (grad,) = torch.autograd.grad(loss, b)
    assert (grad < 0).all()  # more confidence, earlier exit, fewer MACs

    b2 = torch.tensor([[0.2, 0.3], [0.1, 0.4]], requires_grad=True)
    conf2 = torch.cat([b2, torch.ones(2, 1)], dim=1)
    loss2 = macs_loss(exit_probabilities(conf2), costs, 2.9e6)
    assert loss2.item() == 0.0
    (grad2,) = torch.autograd.grad(loss2, b2)
    assert torch.count_nonzero(grad2) == 0


def test_support_loss_per_sample_and_per_exit() -> None:
    conf = torch.tensor([[0.9, 0.5, 1.0], [0.1, 0.6, 1.0], [0.3, 0.2, 1.0]])
    targets = torch.tensor([0, 1, 1])
    accuracy = torch.tensor([[0.8, 0.7], [0.2, 0.9]])  # (classes, early exits)
    squared = support_loss(conf, targets, accuracy, reduction="none")
    expected = torch.tensor(
        [
            [(0.9 - 0.8) ** 2, (0.5 - 0.7) ** 2],
            [(0.1 - 0.2) ** 2, (0.6 - 0.9) ** 2],
            [(0.3 - 0.2) ** 2, (0.2 - 0.9) ** 2],
        ]
    )
    assert squared.shape == (3, 2)
    assert torch.allclose(squared, expected, atol=1e-7)
    assert support_loss(conf, targets, accuracy).item() == pytest.approx(expected.mean().item())
    # a (classes, exits) matrix is accepted, its final column ignored
    full = torch.cat([accuracy, torch.ones(2, 1)], dim=1)
    assert support_loss(conf, targets, full).item() == pytest.approx(expected.mean().item())
    with pytest.raises(ValueError, match="support_accuracy"):
        support_loss(conf, targets, torch.ones(2, 5))


def _output(seed: int = 0) -> tuple[EENNOutput, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    logits = tuple(torch.randn(6, 4, generator=generator, requires_grad=True) for _ in range(3))
    b = torch.rand(6, 2, generator=generator).requires_grad_()
    conf = torch.cat([b, torch.ones(6, 1)], dim=1)
    return EENNOutput(logits, conf), torch.tensor([0, 1, 2, 3, 0, 1]), b


def test_nachos_loss_total_is_the_weighted_sum_of_the_terms() -> None:
    output, targets, b = _output()
    accuracy = torch.rand(4, 2)
    loss = NachosLoss(
        w_alpha=0.5, beta=2.0, w_beta=3.0, w_gamma=4.0, exit_costs=[1.0, 2.0, 3.0], max_avg_macs=1.2
    )
    terms = loss(output, targets, support_accuracy=accuracy)
    probs = exit_probabilities(output.confidences)
    assert terms.cls.item() == pytest.approx(
        classification_loss(output.logits, targets, probs).item()
    )
    assert terms.macs.item() > 0 and terms.sup.item() > 0 and terms.conf.item() > 0
    total = 0.5 * terms.cls + 2 * terms.conf + 3 * terms.macs + 4 * terms.sup
    assert terms.total.item() == pytest.approx(total.item(), rel=1e-6)
    terms.total.backward()
    assert b.grad is not None and torch.count_nonzero(b.grad) == b.numel()
    assert all(torch.count_nonzero(z.grad) > 0 for z in output.logits)


def test_nachos_loss_terms_switch_off() -> None:
    output, targets, b = _output()
    terms = NachosLoss(beta=0.0, w_gamma=0.0)(output, targets, support_accuracy=torch.rand(4, 2))
    assert terms.conf.item() == 0.0 and terms.sup.item() == 0.0
    assert terms.macs.item() == 0.0  # no budget, no MAC term
    assert terms.total.item() == pytest.approx(terms.cls.item())
    only_conf = NachosLoss(w_alpha=0.0, w_beta=0.0, w_gamma=0.0)(output, targets)
    assert only_conf.cls.item() == 0.0 and only_conf.total.item() == pytest.approx(
        only_conf.conf.item()
    )
    no_support = NachosLoss()(output, targets)
    assert no_support.sup.item() == 0.0


def test_nachos_loss_checks_its_settings() -> None:
    with pytest.raises(ValueError, match="exit_costs"):
        NachosLoss(max_avg_macs=1.0)
    with pytest.raises(ValueError, match="max_avg_macs"):
        NachosLoss(exit_costs=[1.0, 2.0], max_avg_macs=0.0)
    output, targets, b = _output()
    with pytest.raises(ValueError, match="3 exits"):
        NachosLoss(exit_costs=[1.0, 2.0], max_avg_macs=1.0)(output, targets)


def test_classification_loss_matches_plain_cross_entropy_for_one_exit() -> None:
    logits = torch.randn(5, 3)
    targets = torch.tensor([0, 1, 2, 0, 1])
    p = torch.ones(5, 1)
    assert classification_loss([logits], targets, p).item() == pytest.approx(
        F.cross_entropy(logits, targets).item(), rel=1e-6
    )


def test_uniform_classification_weighting_is_the_plain_multi_exit_loss() -> None:
    generator = torch.Generator().manual_seed(0)
    logits = [torch.randn(6, 4, generator=generator) for _ in range(3)]
    targets = torch.tensor([0, 1, 2, 3, 0, 1])
    confident_first = torch.zeros(6, 3)
    confident_first[:, 0] = 1.0  # every sample would leave at the first exit
    expected = torch.stack([F.cross_entropy(z, targets) for z in logits]).mean()
    uniform = classification_loss(logits, targets, confident_first, weighting="uniform")
    assert torch.allclose(uniform, expected)
    weighted = classification_loss(logits, targets, confident_first)
    assert torch.allclose(weighted, F.cross_entropy(logits[0], targets))
    with pytest.raises(ValueError, match="weighting"):
        classification_loss(logits, targets, confident_first, weighting="equal")
    with pytest.raises(ValueError, match="cls_weighting"):
        NachosLoss(cls_weighting="equal")
