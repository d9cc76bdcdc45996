"""End to end: train a small EENN on the real ``digits`` data, calibrate on val, report on test."""

import math
import time

import pytest
import torch

from optuna_nachos import EENNConfig, build_eenn
from optuna_nachos.train import TrainConfig, calibrate_and_evaluate, fit

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_small_eenn_on_digits() -> None:
    from optuna_nachos import cost as cost_module
    from optuna_nachos import data as data_module

    start = time.perf_counter()
    data = data_module.load_dataset("digits", resolution=16)
    config = EENNConfig(
        depths=(1, 1, 1, 1, 1),
        kernel_sizes=((3,),) * 5,
        expand_ratios=((3,),) * 5,
        exit_stages=(1, 2, 3, 4),
        resolution=16,
    )
    torch.manual_seed(0)
    model = build_eenn(config, num_classes=data.num_classes, in_channels=data.in_channels)
    costs = cost_module.exit_macs(
        config, num_classes=data.num_classes, in_channels=data.in_channels
    )
    assert len(costs) == model.num_exits
    budget = 0.8 * costs[-1]
    settings = TrainConfig(
        backbone_epochs=6, warmup_epochs=2, exit_epochs=2, batch_size=64, lr=0.05, progress=False
    )
    result = fit(model, data, config=settings, exit_costs=costs, max_avg_macs=budget)
    assert [r.phase for r in result.records].count("exits") == 2
    assert all(math.isfinite(v) for r in result.records for v in r.losses.values())

    report = calibrate_and_evaluate(model, data, costs, max_avg_macs=None, batch_size=256)
    test = report.test
    assert test.accuracy > 0.5  # chance is 0.1
    assert test.backbone_accuracy > 0.5
    assert sum(test.exit_ratios) == pytest.approx(1.0)
    assert costs[0] <= test.avg_macs <= costs[-1]

    constrained = calibrate_and_evaluate(model, data, costs, max_avg_macs=budget)
    assert constrained.feasible and constrained.validation.avg_macs <= budget
    assert sum(constrained.test.exit_ratios) == pytest.approx(1.0)
    assert costs[0] <= constrained.test.avg_macs <= costs[-1]
    assert time.perf_counter() - start < 300  # about 30-60 s on 2 cores
