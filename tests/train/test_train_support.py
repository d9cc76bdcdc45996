import torch

from optuna_nachos.train import ExitOutputs, balanced_support_indices, class_exit_accuracy


def test_support_set_is_class_balanced_and_reproducible() -> None:
    labels = torch.cat([torch.zeros(500), torch.ones(300), torch.full((200,), 2)]).long()
    labels = labels[torch.randperm(1000, generator=torch.Generator().manual_seed(1))]
    chosen = balanced_support_indices(
        labels, fraction=0.1, num_classes=3, generator=torch.Generator().manual_seed(0)
    )
    assert len(chosen) == len(torch.unique(chosen)) == 3 * 33
    assert torch.bincount(labels[chosen], minlength=3).tolist() == [33, 33, 33]
    again = balanced_support_indices(
        labels, fraction=0.1, num_classes=3, generator=torch.Generator().manual_seed(0)
    )
    assert torch.equal(chosen, again)
    other = balanced_support_indices(
        labels, fraction=0.1, num_classes=3, generator=torch.Generator().manual_seed(1)
    )
    assert not torch.equal(chosen, other)


def test_support_set_is_capped_by_the_smallest_class() -> None:
    labels = torch.tensor([0] * 50 + [1] * 2)
    chosen = balanced_support_indices(labels, fraction=0.5, num_classes=2)
    assert torch.bincount(labels[chosen]).tolist() == [2, 2]


def test_class_exit_accuracy() -> None:
    labels = torch.tensor([0, 0, 1, 1])
    predictions = torch.tensor([[0, 0], [1, 0], [1, 1], [1, 0]])
    outputs = ExitOutputs(torch.ones(4, 2), predictions, labels)
    accuracy = class_exit_accuracy(outputs, num_classes=3)
    assert accuracy.shape == (3, 2)
    assert accuracy[:2].tolist() == [[0.5, 1.0], [1.0, 0.5]]
    # class 2 has no sample: the exits' overall accuracy
    assert accuracy[2].tolist() == [0.75, 0.75]
