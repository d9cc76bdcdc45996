import math

import pytest
import torch

from optuna_nachos.models import (
    cumulative_confidence,
    exit_probabilities,
    select_exits,
    survival,
)
from optuna_nachos.models._exit_rule import as_threshold_tensor

# two samples, two early exits and the final exit (b = 1)
CONFIDENCES = torch.tensor([[0.5, 0.5, 1.0], [0.2, 0.25, 1.0]], dtype=torch.float64)


def test_survival_is_the_running_product_of_misses():
    expected = torch.tensor([[0.5, 0.25, 0.0], [0.8, 0.6, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(survival(CONFIDENCES), expected)


def test_exit_probabilities_by_hand():
    # p_j = b_j * prod_{k<j} (1 - b_k)
    expected = torch.tensor([[0.5, 0.25, 0.25], [0.2, 0.2, 0.6]], dtype=torch.float64)
    probabilities = exit_probabilities(CONFIDENCES)
    torch.testing.assert_close(probabilities, expected)
    torch.testing.assert_close(probabilities.sum(1), torch.ones(2, dtype=torch.float64))


def test_exit_probabilities_rows_sum_to_one_for_random_confidences():
    generator = torch.Generator().manual_seed(0)
    confidences = torch.rand(50, 6, generator=generator, dtype=torch.float64)
    confidences[:, -1] = 1.0
    probabilities = exit_probabilities(confidences)
    assert (probabilities >= 0).all()
    torch.testing.assert_close(probabilities.sum(1), torch.ones(50, dtype=torch.float64))
    # the cumulative confidence is the running sum of the exit probabilities
    torch.testing.assert_close(cumulative_confidence(confidences), probabilities.cumsum(1))


def test_cumulative_confidence_by_hand():
    # c_j = 1 - prod_{k<=j} (1 - b_k)
    expected = torch.tensor([[0.5, 0.75, 1.0], [0.2, 0.4, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(cumulative_confidence(CONFIDENCES), expected)
    single = cumulative_confidence(torch.tensor([[0.3, 0.6, 1.0]]))
    torch.testing.assert_close(single, torch.tensor([[0.3, 1 - 0.7 * 0.4, 1.0]]))


@pytest.mark.parametrize(
    ("thresholds", "expected"),
    [
        ([0.6, 0.7], [1, 2]),  # c = (0.5, 0.75) and (0.2, 0.4)
        ([0.5, 0.7], [0, 2]),  # c_0 = 0.5 reaches 0.5: >= is inclusive
        ([0.15, 0.3], [0, 0]),
        ([0.3, 0.35], [0, 1]),
        ([0.0, 0.0], [0, 0]),  # threshold 0: everything leaves at the first exit
        ([0.9, 0.9], [2, 2]),
        ([1.0, 0.7], [1, 2]),  # a threshold of 1 disables exit 0 ...
        ([1.0, 1.0], [2, 2]),  # ... and both
        ([2.0, 0.3], [1, 1]),  # thresholds above 1 disable too
    ],
)
def test_select_exits_by_hand(thresholds, expected):
    assert select_exits(CONFIDENCES, thresholds).tolist() == expected
    assert select_exits(CONFIDENCES, torch.tensor(thresholds)).tolist() == expected


def test_threshold_one_disables_an_exit_even_at_full_confidence():
    confidences = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 1.0]])
    assert select_exits(confidences, [1.0, 1.0]).tolist() == [2, 2]
    assert select_exits(confidences, [1.0, 0.99]).tolist() == [1, 1]
    assert select_exits(confidences, [0.99, 1.0]).tolist() == [0, 0]


def test_select_exits_without_early_exits_takes_the_final_one():
    confidences = torch.ones(4, 1)
    assert select_exits(confidences, []).tolist() == [0, 0, 0, 0]


def test_select_exits_returns_long_indices_in_float32():
    confidences = torch.tensor([[0.9, 0.1, 1.0]], dtype=torch.float32)
    exits = select_exits(confidences, [0.5, 0.5])
    assert exits.dtype == torch.long
    assert exits.tolist() == [0]


def test_as_threshold_tensor_validates():
    values = as_threshold_tensor([0.1, 1.0, 3.0], 3)
    assert values.dtype == torch.float64
    assert values.tolist() == [0.1, 1.0, 3.0]
    with pytest.raises(ValueError, match=r"expected 2 thresholds \(one per early exit"):
        as_threshold_tensor([0.5], 2)
    with pytest.raises(ValueError, match=r"finite and >= 0"):
        as_threshold_tensor([0.5, -0.1], 2)
    with pytest.raises(ValueError, match=r"finite and >= 0"):
        as_threshold_tensor([math.nan, 0.5], 2)
    with pytest.raises(ValueError, match=r"finite and >= 0"):
        as_threshold_tensor([math.inf, 0.5], 2)
    with pytest.raises(ValueError, match=r"expected 2 thresholds"):
        select_exits(CONFIDENCES, [0.5, 0.5, 0.5])


@pytest.mark.parametrize("num_exits", [1, 3])
def test_select_exits_keeps_the_device_of_the_confidences(num_exits):
    # "meta" tensors stand in for an accelerator: CPU thresholds must be moved to their device
    confidences = torch.ones(4, num_exits, device="meta")
    exits = select_exits(confidences, [0.5] * (num_exits - 1))
    assert exits.device.type == "meta"
    assert exits.shape == (4,)
