import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from optuna_nachos.models import select_exits
from optuna_nachos.train import ExitOutputs, collect_exit_outputs


def test_collect_exit_outputs_matches_the_model(network: nn.Module, dataset: TensorDataset) -> None:
    network.train()
    outputs = collect_exit_outputs(network, dataset, batch_size=20, device="cpu")
    assert network.training  # modes restored
    n = len(dataset)
    assert outputs.num_samples == n and outputs.num_exits == network.num_exits
    assert outputs.confidences.shape == outputs.predictions.shape == (n, network.num_exits)
    assert torch.equal(outputs.labels, dataset.tensors[1])
    assert torch.all(outputs.confidences[:, -1] == 1)
    network.eval()
    images = dataset.tensors[0]
    thresholds = [0.3, 0.4, 0.5, 0.6]
    static = network.predict_static(images, thresholds)
    exits = select_exits(outputs.confidences, thresholds)
    assert torch.equal(exits, static.exit_indices)
    chosen = outputs.predictions[torch.arange(n), exits]
    assert torch.equal(chosen, static.predictions)


def test_collect_accepts_a_loader(network: nn.Module, dataset: TensorDataset) -> None:
    loader = DataLoader(dataset, batch_size=7)
    outputs = collect_exit_outputs(network, loader, device="cpu")
    assert outputs.num_samples == len(dataset)


def test_exit_outputs_validate_shapes() -> None:
    with pytest.raises(ValueError, match="confidences and predictions"):
        ExitOutputs(torch.ones(3, 2), torch.zeros(3, 3, dtype=torch.long), torch.zeros(3).long())
    with pytest.raises(ValueError, match="labels"):
        ExitOutputs(torch.ones(3, 2), torch.zeros(3, 2, dtype=torch.long), torch.zeros(4).long())
