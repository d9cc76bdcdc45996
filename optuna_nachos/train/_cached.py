"""Phase B on cached features: the exit heads of a frozen backbone, trained without rerunning it."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import Subset, TensorDataset

from optuna_nachos.models import EarlyExitNetwork, EENNOutput
from optuna_nachos.train._config import TrainConfig
from optuna_nachos.train._datasets import (
    make_loader,
    model_to_device,
    resolve_device,
    to_device,
    train_split,
    without_augmentation,
)
from optuna_nachos.train._trainer import FitResult, fit


class CachedFeatureHeads(nn.Module):
    """The exit heads of an early-exit network, fed with cached backbone outputs.

    An input row packs, flattened, the outputs of the segments the exits read and the final
    logits (as :func:`cache_backbone_outputs` writes them). The heads are the network's own
    modules, so training this wrapper trains the network's heads.
    """

    def __init__(self, model: EarlyExitNetwork, shapes: Sequence[torch.Size]) -> None:
        super().__init__()
        self.exit_heads = model.exit_heads
        self.num_classes = model.num_classes
        self.shapes = [tuple(s) for s in shapes]
        self.sizes = [math.prod(s) for s in self.shapes] + [model.num_classes]

    @property
    def num_exits(self) -> int:
        """Exits, the final one included."""
        return len(self.exit_heads) + 1

    def backbone_modules(self) -> list[nn.Module]:
        """None: the backbone's outputs are cached."""
        return []

    def backbone_parameters(self) -> list[nn.Parameter]:
        """None: the backbone is frozen."""
        return []

    def exit_head_parameters(self) -> list[nn.Parameter]:
        """The early-exit heads' parameters."""
        return list(self.exit_heads.parameters())

    def _split(self, packed: torch.Tensor) -> list[torch.Tensor]:
        return list(torch.split(packed.float(), self.sizes, dim=1))

    def forward_backbone(self, packed: torch.Tensor) -> torch.Tensor:
        """The cached final logits."""
        return self._split(packed)[-1]

    def forward(self, packed: torch.Tensor, *, backbone_grad: bool = True) -> EENNOutput:
        """All exits on the cached outputs (``backbone_grad`` has nothing to act on)."""
        del backbone_grad
        parts = self._split(packed)
        logits, confidences = [], []
        for head, part, shape in zip(self.exit_heads, parts, self.shapes):
            feature = part.reshape(-1, *shape).contiguous(memory_format=torch.channels_last)
            out = head(feature)
            logits.append(out[:, :-1])
            confidences.append(torch.sigmoid(out[:, -1]))
        final = parts[-1]
        logits.append(final)
        confidences.append(torch.ones(final.shape[0], dtype=final.dtype, device=final.device))
        return EENNOutput(tuple(logits), torch.stack(confidences, dim=1))


@torch.no_grad()
def cache_backbone_outputs(
    model: EarlyExitNetwork,
    dataset: Any,
    *,
    batch_size: int = 256,
    device: str | torch.device = "auto",
) -> tuple[TensorDataset, list[torch.Size]]:
    """Run the frozen backbone (eval mode) once over ``dataset`` without augmentation.

    Returns:
        A dataset of ``(packed outputs, label)`` rows (on the CPU) and the shape of each
        cached feature map.
    """
    torch_device = resolve_device(device)
    model_to_device(model, torch_device)
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    loader = make_loader(
        without_augmentation(dataset),
        batch_size=batch_size,
        shuffle=False,
        generator=None,
        num_workers=0,
        device=torch_device,
    )
    positions = set(model.exit_positions)
    rows, labels, shapes = [], [], []
    try:
        for images, targets in loader:
            x = to_device(images, torch_device)
            parts = []
            for index, segment in enumerate(model.segments):
                x = segment(x)
                if index in positions:
                    parts.append(x)
            parts.append(model.final_head(x))
            if not shapes:
                shapes = [p.shape[1:] for p in parts[:-1]]
            rows.append(torch.cat([p.float().flatten(1) for p in parts], dim=1).cpu())
            labels.append(torch.as_tensor(targets).to(torch.int64).cpu())
    finally:
        for module, mode in modes:
            module.training = mode
    return TensorDataset(torch.cat(rows), torch.cat(labels)), shapes


def fit_exits(
    model: EarlyExitNetwork,
    data: Any,
    *,
    config: TrainConfig | None = None,
    exit_costs: Sequence[float] | None = None,
    max_avg_macs: float | None = None,
    max_rows: int | None = None,
) -> FitResult:
    """Phase B only, on a frozen backbone whose outputs are computed once.

    The backbone (with its BatchNorm statistics) does not change in phase B when it is
    frozen, so its outputs at the exit positions are computed once, without augmentation,
    and every epoch trains the heads on them: the same loss, support sets and schedule as
    :func:`fit`'s phase B (``config.warmup_epochs`` + ``config.exit_epochs``), at a fraction
    of the cost. Augmentation is the price: the heads see each training image as it is.
    ``config.backbone_epochs`` and ``config.freeze_backbone`` are ignored.

    Args:
        model: An early-exit network whose backbone is already trained (e.g. inherited from
            a supernet); its heads are trained in place.
        data: Splits (their ``train`` is used) or a dataset of ``(image, label)`` items.
        config: Training settings.
        exit_costs: MACs of each exit, for the MAC term.
        max_avg_macs: Budget of the MAC term.
        max_rows: Train on at most this many training images, a fixed random subset drawn
            with ``config.seed`` (the same for every candidate): computing the backbone's
            outputs and every exit epoch cost in proportion to the rows. ``None``: all.

    Returns:
        The result of the exit phase, with ``model`` as its model.
    """
    config = TrainConfig() if config is None else config
    device = resolve_device(config.device)
    if model.num_exits == 1 or config.exit_phase_epochs == 0:
        return FitResult(model=model, records=[], phase_seconds={}, config=config)
    train = train_split(data)
    if max_rows is not None:
        if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
            raise ValueError(f"max_rows must be a positive integer or None, got {max_rows!r}.")
        if max_rows < len(train):
            generator = torch.Generator().manual_seed(config.seed)
            rows = torch.randperm(len(train), generator=generator)[:max_rows]
            train = Subset(without_augmentation(train), sorted(rows.tolist()))
    cached, shapes = cache_backbone_outputs(
        model, train, batch_size=max(256, config.batch_size), device=device
    )
    heads = CachedFeatureHeads(model, shapes)
    phase_config = dataclasses.replace(config, backbone_epochs=0, freeze_backbone=True)
    result = fit(
        heads, cached, config=phase_config, exit_costs=exit_costs, max_avg_macs=max_avg_macs
    )
    return dataclasses.replace(result, model=model)
