import json

import pytest
import torch

from optuna_nachos.models import select_exits
from optuna_nachos.train import ExitOutputs, evaluate, expected_calibration_error


def _outputs(n: int = 400, exits: int = 4, seed: int = 0) -> ExitOutputs:
    generator = torch.Generator().manual_seed(seed)
    b = torch.rand(n, exits - 1, generator=generator)
    conf = torch.cat([b, torch.ones(n, 1)], dim=1)
    labels = torch.randint(0, 5, (n,), generator=generator)
    right = torch.rand(n, exits, generator=generator) < torch.linspace(0.4, 0.9, exits)
    predictions = torch.where(right, labels[:, None], (labels[:, None] + 1) % 5)
    return ExitOutputs(conf, predictions, labels)


COSTS = [1.0e6, 1.5e6, 2.2e6, 3.0e6]


def test_thresholds_zero_and_one_send_everything_to_the_first_or_final_exit() -> None:
    outputs = _outputs()
    first = evaluate(outputs, [0.0, 0.0, 0.0], COSTS)
    assert first.exit_ratios == (1.0, 0.0, 0.0, 0.0)
    assert first.avg_macs == pytest.approx(COSTS[0])
    assert first.accuracy == pytest.approx(first.exit_accuracies[0])
    final = evaluate(outputs, [1.0, 1.0, 1.0], COSTS)
    assert final.exit_ratios == (0.0, 0.0, 0.0, 1.0)
    assert final.avg_macs == pytest.approx(COSTS[-1])
    assert final.accuracy == pytest.approx(final.backbone_accuracy)


def test_metrics_are_consistent() -> None:
    outputs = _outputs()
    thresholds = [0.6, 0.5, 0.4]
    result = evaluate(outputs, thresholds, COSTS)
    assert sum(result.exit_ratios) == pytest.approx(1.0)
    assert COSTS[0] <= result.avg_macs <= COSTS[-1]
    assert result.avg_macs == pytest.approx(
        sum(r * c for r, c in zip(result.exit_ratios, COSTS, strict=True))
    )
    assert result.peak_macs == COSTS[-1]
    assert len(result.ece) == 3 and all(0 <= e <= 1 for e in result.ece)
    exits = select_exits(outputs.confidences, thresholds)
    chosen = outputs.predictions[torch.arange(outputs.num_samples), exits]
    assert result.accuracy == pytest.approx((chosen == outputs.labels).float().mean().item())
    assert result.exit_accuracies == pytest.approx(outputs.correct.float().mean(0).tolist())
    assert result.backbone_accuracy == result.exit_accuracies[-1]
    plain = json.loads(json.dumps(result.to_dict()))
    assert plain["thresholds"] == pytest.approx(thresholds)
    assert all(type(v) is float for v in plain["exit_ratios"])


def test_expected_calibration_error_by_hand() -> None:
    confidences = torch.tensor([0.05, 0.05, 0.95, 0.95, 0.5])
    correct = torch.tensor([False, True, True, True, False])
    # bins: {0.05, 0.05} acc 0.5 conf 0.05; {0.95, 0.95} acc 1 conf 0.95; {0.5} acc 0 conf 0.5
    expected = (2 * 0.45 + 2 * 0.05 + 1 * 0.5) / 5
    assert expected_calibration_error(confidences, correct) == pytest.approx(expected)
    assert expected_calibration_error(torch.ones(3), torch.ones(3, dtype=torch.bool)) == 0.0


def test_evaluate_checks_the_costs() -> None:
    with pytest.raises(ValueError, match="one entry per exit"):
        evaluate(_outputs(), [0.5, 0.5, 0.5], [1.0, 2.0])
