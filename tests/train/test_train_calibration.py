import pytest
import torch

from optuna_nachos.train import (
    NACHOS_GRID,
    ExitOutputs,
    calibrate_thresholds,
    evaluate,
    operating_curve,
)


def _synthetic(n: int = 2000, exits: int = 5, seed: int = 0) -> ExitOutputs:
    """Exits get better with depth, and confident samples are more often right."""
    generator = torch.Generator().manual_seed(seed)
    b = torch.sigmoid(2 * torch.randn(n, exits - 1, generator=generator))
    conf = torch.cat([b, torch.ones(n, 1)], dim=1)
    labels = torch.randint(0, 10, (n,), generator=generator)
    depth = torch.linspace(0.3, 0.95, exits)[None, :]
    p_right = 0.5 * depth + 0.5 * conf
    right = torch.rand(n, exits, generator=generator) < p_right
    predictions = torch.where(right, labels[:, None], (labels[:, None] + 1) % 10)
    return ExitOutputs(conf, predictions, labels)


COSTS = [1.0e6, 1.5e6, 2.0e6, 2.5e6, 3.0e6]


def test_search_respects_the_budget_and_reports_consistent_figures() -> None:
    outputs = _synthetic()
    for budget in (1.3e6, 2.0e6, 2.7e6):
        result = calibrate_thresholds(outputs, COSTS, max_avg_macs=budget)
        assert result.feasible and result.reason is None
        assert result.avg_macs <= budget
        check = evaluate(outputs, result.thresholds, COSTS)
        assert check.accuracy == pytest.approx(result.accuracy)
        assert check.avg_macs == pytest.approx(result.avg_macs)
        assert check.exit_ratios == pytest.approx(result.exit_ratios)


def test_search_is_at_least_as_good_as_the_reference_method() -> None:
    outputs = _synthetic()
    for budget in (1.6e6, 2.2e6):
        search = calibrate_thresholds(outputs, COSTS, max_avg_macs=budget)
        nachos = calibrate_thresholds(outputs, COSTS, max_avg_macs=budget, method="nachos")
        assert search.feasible
        if nachos.feasible:
            assert search.accuracy >= nachos.accuracy


def test_without_constraints_the_search_is_the_most_accurate_setting() -> None:
    outputs = _synthetic()
    result = calibrate_thresholds(outputs, COSTS)
    curve = operating_curve(outputs, COSTS)
    assert result.accuracy >= max(p.accuracy for p in curve) - 1e-12


def test_budget_below_the_first_exit_is_reported_infeasible() -> None:
    outputs = _synthetic()
    result = calibrate_thresholds(outputs, COSTS, max_avg_macs=0.5e6)
    assert not result.feasible
    assert "cheapest exit" in result.reason and "first exit" in result.reason
    # the least violating setting: every sample at the first exit
    assert result.exit_ratios[0] == 1.0
    nachos = calibrate_thresholds(outputs, COSTS, max_avg_macs=0.5e6, method="nachos")
    assert not nachos.feasible and "cheapest exit" in nachos.reason


def test_unreachable_accuracy_floor_is_reported_infeasible() -> None:
    outputs = _synthetic()
    result = calibrate_thresholds(outputs, COSTS, max_avg_macs=1.2e6, min_accuracy=0.99)
    assert not result.feasible
    assert "min_accuracy" in result.reason
    assert result.avg_macs <= 1.2e6  # the budget is still kept
    feasible = calibrate_thresholds(outputs, COSTS, max_avg_macs=2.5e6, min_accuracy=0.6)
    assert feasible.feasible and feasible.accuracy >= 0.6


def test_operating_curve_is_a_pareto_front() -> None:
    outputs = _synthetic()
    curve = operating_curve(outputs, COSTS)
    assert len(curve) > 5
    macs = [p.avg_macs for p in curve]
    accuracy = [p.accuracy for p in curve]
    assert macs == sorted(macs) and accuracy == sorted(accuracy)
    assert len(set(accuracy)) == len(accuracy)
    assert COSTS[0] <= macs[0] and macs[-1] <= COSTS[-1]
    for point in curve[:: max(1, len(curve) // 7)]:
        check = evaluate(outputs, point.thresholds, COSTS)
        assert check.accuracy == pytest.approx(point.accuracy)
        assert sum(point.exit_ratios) == pytest.approx(1.0)


def test_invalid_arguments() -> None:
    outputs = _synthetic(n=50)
    with pytest.raises(ValueError, match="method"):
        calibrate_thresholds(outputs, COSTS, method="greedy")
    with pytest.raises(ValueError, match="max_avg_macs"):
        calibrate_thresholds(outputs, COSTS, max_avg_macs=-1.0)
    with pytest.raises(ValueError, match="min_accuracy"):
        calibrate_thresholds(outputs, COSTS, min_accuracy=1.5)
    with pytest.raises(ValueError, match="one entry per exit"):
        calibrate_thresholds(outputs, COSTS[:3])


# --- method="nachos" on a constructed example ---------------------------------------------
# Two early exits and the final one, costs 10, 20, 30. Confidences (b0, b1) and correctness
# (exit 0, exit 1, final) of the four samples:
#   A: (0.75, 0.00) wrong, right, right  -> c = (0.75, 0.75)
#   B: (0.00, 0.55) right, right, right  -> c = (0.00, 0.55)   (two copies)
#   C: (0.00, 0.25) right, wrong, right  -> c = (0.00, 0.25)
# Global grid: any e <= 0.7 gives exit 0 the threshold 0.7, where A leaves wrongly; e = 0.8
# sends everybody to the final exit, all right: thresholds (0.8, 0.8), 30 MACs.
NACHOS_COSTS = [10.0, 20.0, 30.0]


def _nachos_example() -> ExitOutputs:
    b = torch.tensor([[0.75, 0.0], [0.0, 0.55], [0.0, 0.55], [0.0, 0.25]])
    conf = torch.cat([b, torch.ones(4, 1)], dim=1)
    labels = torch.zeros(4, dtype=torch.long)
    right = torch.tensor(
        [[False, True, True], [True, True, True], [True, True, True], [True, False, True]]
    )
    return ExitOutputs(conf, torch.where(right, 0, 1), labels)


def test_nachos_global_grid_keeps_the_most_accurate_setting() -> None:
    result = calibrate_thresholds(_nachos_example(), NACHOS_COSTS, method="nachos")
    assert result.thresholds == pytest.approx((0.8, 0.8))
    assert result.accuracy == 1.0 and result.avg_macs == 30.0 and result.feasible
    assert NACHOS_GRID == (0.1, 0.2, 0.3, 0.5, 0.6, 0.7, 0.8)


def test_nachos_first_exit_threshold_is_at_least_0_7() -> None:
    # every exit always right: all grid values tie, the first (0.1) wins, exit 0 gets 0.7.
    outputs = ExitOutputs(
        torch.tensor([[0.5, 0.5, 1.0]] * 3),
        torch.zeros(3, 3, dtype=torch.long),
        torch.zeros(3).long(),
    )
    result = calibrate_thresholds(outputs, NACHOS_COSTS, method="nachos")
    assert result.thresholds == pytest.approx((0.7, 0.1))


def test_nachos_repair_lowers_the_last_intermediate_exit_first() -> None:
    # From (0.8, 0.8): exit 1 goes 0.7 (A leaves at exit 1: 27.5 MACs), 0.6, then 0.5 (the B
    # samples leave too: 22.5 MACs <= 25): stop.
    result = calibrate_thresholds(
        _nachos_example(), NACHOS_COSTS, max_avg_macs=25.0, method="nachos"
    )
    assert result.thresholds == pytest.approx((0.8, 0.5))
    assert result.avg_macs == pytest.approx(22.5) and result.accuracy == 1.0 and result.feasible


def test_nachos_repair_stops_at_the_accuracy_floor() -> None:
    # Budget 15: exit 1 goes down to 0.3; 0.2 would let C leave wrongly (accuracy 0.75 < 0.9):
    # rejected, move to exit 0, whose 0.7 would let A leave wrongly: rejected, stop.
    result = calibrate_thresholds(
        _nachos_example(), NACHOS_COSTS, max_avg_macs=15.0, min_accuracy=0.9, method="nachos"
    )
    assert result.thresholds == pytest.approx((0.8, 0.3))
    assert result.accuracy == 1.0 and result.avg_macs == pytest.approx(22.5)
    assert not result.feasible and "NACHOS repair" in result.reason


def test_nachos_repair_without_floor_walks_every_exit_down_to_0_1() -> None:
    result = calibrate_thresholds(
        _nachos_example(), NACHOS_COSTS, max_avg_macs=15.0, method="nachos"
    )
    assert result.thresholds == pytest.approx((0.1, 0.1))
    assert result.avg_macs == pytest.approx(17.5) and result.accuracy == 0.5
    assert not result.feasible


def test_global_method_shares_one_threshold_and_respects_the_budget() -> None:
    outputs = _synthetic()
    for budget in (1.3e6, 2.2e6):
        result = calibrate_thresholds(outputs, COSTS, max_avg_macs=budget, method="global")
        assert result.method == "global"
        assert len(set(result.thresholds)) == 1
        assert result.feasible and result.avg_macs <= budget
        # No single shared level on a fine grid does better within the budget.
        for eps in torch.linspace(0, 1, 101).tolist():
            check = evaluate(outputs, [eps] * (len(COSTS) - 1), COSTS)
            if check.avg_macs <= budget:
                assert check.accuracy <= result.accuracy + 1e-12
        search = calibrate_thresholds(outputs, COSTS, max_avg_macs=budget)
        assert search.accuracy >= result.accuracy - 1e-12


def test_fixed_method_only_evaluates_the_given_thresholds() -> None:
    outputs = _synthetic()
    thresholds = [0.2, 0.1, 1.0, 0.2]
    result = calibrate_thresholds(
        outputs, COSTS, max_avg_macs=1.2e6, method="fixed", thresholds=thresholds
    )
    check = evaluate(outputs, thresholds, COSTS)
    assert result.thresholds == tuple(thresholds)
    assert result.accuracy == pytest.approx(check.accuracy)
    assert result.avg_macs == pytest.approx(check.avg_macs)
    assert result.feasible == (check.avg_macs <= 1.2e6)
    with pytest.raises(ValueError, match="thresholds"):
        calibrate_thresholds(outputs, COSTS, method="fixed")
    with pytest.raises(ValueError, match="thresholds"):
        calibrate_thresholds(outputs, COSTS, thresholds=thresholds)
    with pytest.raises(ValueError, match="4 thresholds"):
        calibrate_thresholds(outputs, COSTS, method="fixed", thresholds=[0.5])
