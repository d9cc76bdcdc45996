import pytest
import torch
from torch import nn

from optuna_nachos.config import EENNConfig


@pytest.fixture
def small_config():
    """A cheap member of the NACHOS space with all four early exits."""
    return EENNConfig(
        depths=(2, 2, 2, 2, 2),
        kernel_sizes=((3, 5), (3, 3), (5, 3), (3, 7), (3, 3)),
        expand_ratios=((3, 3), (4, 3), (3, 6), (3, 3), (3, 4)),
    )


def _spread_confidences(model, x, scale=2.0):
    """Give an untrained network exit confidences that differ from sample to sample.

    An untrained network with default BatchNorm statistics maps every input to nearly the same
    confidences. Calibrate BatchNorm on ``x``, then rescale the confidence logit of each exit
    head to mean 0 and standard deviation ``scale`` over ``x``. Leaves the model in eval mode.
    """
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # cumulative average: one batch sets the statistics
    model.train()
    with torch.no_grad():
        model(x)
        model.eval()
        heads = dict(zip(model.exit_positions, model.exit_heads))
        features = x
        for index, segment in enumerate(model.segments):
            features = segment(features)
            head = heads.get(index)
            if head is None:
                continue
            linear = [m for m in head.modules() if isinstance(m, nn.Linear)][-1]
            logit = head(features)[:, -1]
            gain = scale / logit.std().clamp_min(1e-12)
            linear.weight[-1].mul_(gain)
            linear.bias[-1].sub_(logit.mean()).mul_(gain)
    return model


@pytest.fixture
def spread_confidences():
    return _spread_confidences


def _midpoint_thresholds(cumulative, position=0.5):
    """Per-exit thresholds halfway between two neighbouring cumulative confidences.

    ``cumulative`` has shape ``(samples, early exits)``; the threshold of each column lies near
    its ``position`` quantile, in the widest gap among the neighbouring values, so that float
    rounding (a smaller batch, another device) cannot flip a decision. Returns the thresholds
    and the smallest distance from a threshold to a sample's value.
    """
    thresholds, margins = [], []
    for column in cumulative.detach().cpu().double().T:
        values = column.sort().values
        middle = int(position * (len(values) - 1))
        start = max(middle - 4, 0)
        gaps = values[1:] - values[:-1]
        index = start + int(gaps[start : middle + 4].argmax())
        thresholds.append(float((values[index] + values[index + 1]) / 2))
        margins.append(float(gaps[index] / 2))
    return thresholds, min(margins)


@pytest.fixture
def midpoint_thresholds():
    return _midpoint_thresholds
