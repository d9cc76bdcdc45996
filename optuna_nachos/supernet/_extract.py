"""Extraction of a candidate from the supernet as the ordinary network of ``build_eenn``."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.data import DataLoader

from optuna_nachos.config import EENNConfig
from optuna_nachos.models import EarlyExitNetwork, build_eenn
from optuna_nachos.supernet._network import Supernet, head_key

_LEAF_TYPES = (nn.Conv2d, nn.BatchNorm2d, nn.Linear)


def _leaves(modules: list[nn.Module]) -> list[nn.Module]:
    return [m for module in modules for m in module.modules() if isinstance(m, _LEAF_TYPES)]


@torch.no_grad()
def _copy_layer(target: nn.Module, source: nn.Module) -> None:
    if type(target) is not type(source) or target.weight.shape != source.weight.shape:
        raise RuntimeError(
            f"supernet layout mismatch: {source} cannot be copied into {target}; the "
            f"supernet and the space disagree."
        )
    target.weight.copy_(source.weight)
    if target.bias is not None:
        if source.bias is None:
            target.bias.zero_()
        else:
            target.bias.copy_(source.bias)
    if isinstance(target, nn.BatchNorm2d):
        target.running_mean.copy_(source.running_mean)
        target.running_var.copy_(source.running_var)
        target.num_batches_tracked.copy_(source.num_batches_tracked)
        target.eps, target.momentum = source.eps, source.momentum


def extract_network(supernet: Supernet, config: EENNConfig) -> EarlyExitNetwork:
    """``build_eenn(config)`` with the supernet's weights and BatchNorm statistics copied in.

    OFA's ``get_active_subnet(preserve_weight=True)`` materializes the active backbone (it
    applies the kernel transformations and slices the channels); its layers are copied, in
    order, into the segments and final head of the built network (the final head's 1x1
    feature convolution has a bias that OFA's has not: it is set to zero). The exit heads are
    copied from the supernet's head for the same design, position and pool size; a design
    the supernet does not hold keeps its fresh initialization.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_eenn(
            config, num_classes=supernet.num_classes, in_channels=supernet.in_channels
        )
    supernet.set_active(config)
    subnet = supernet.backbone.get_active_subnet(preserve_weight=True)
    targets = _leaves([model.segments, model.final_head])
    sources = _leaves([subnet])
    if len(targets) != len(sources):
        raise RuntimeError(
            f"supernet layout mismatch: {len(sources)} layers in the supernet's subnet, "
            f"{len(targets)} in the built network."
        )
    for target, source in zip(targets, sources):
        _copy_layer(target, source)
    pools = model.exit_pools or (1,) * len(model.exit_positions)
    for head, position, pool in zip(model.exit_heads, model.exit_positions, pools):
        key = head_key(config.exit_head, position, pool)
        if key in supernet.heads:
            head.load_state_dict(supernet.heads[key].state_dict())
    device = next(supernet.parameters()).device
    return model.to(device)


@torch.no_grad()
def recalibrate_batchnorm(
    model: nn.Module,
    dataset: Any,
    *,
    batches: int,
    batch_size: int = 128,
    seed: int = 0,
) -> nn.Module:
    """Recompute the BatchNorm statistics of ``model`` on ``batches`` batches of ``dataset``.

    Weights do not change: only the running means and variances (and batch counters) of the
    BatchNorm layers, set to the exact average over the batches (OFA and BigNAS practice:
    the statistics shared in a supernet belong to no single subnet). The batches are drawn
    without augmentation, shuffled with ``seed``; the model's modes are restored. An
    early-exit network whose exit heads hold no BatchNorm runs its backbone only
    (``forward_backbone``): the heads cannot change a statistic, and skipping them saves
    their cost.

    Args:
        model: The network (its ``forward`` is run on the batches).
        dataset: ``(image, label)`` items, e.g. the training split.
        batches: Number of batches; at least 1.
        batch_size: Images per batch.
        seed: Seed of the batch draw.

    Returns:
        ``model``.
    """
    if batches < 1:
        raise ValueError(f"batches must be >= 1, got {batches}.")
    norms = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    if not norms:
        return model
    own = getattr(dataset, "without_augmentation", None)
    dataset = own() if callable(own) else dataset
    device = next(model.parameters()).device
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
    )
    forward = model
    heads = getattr(model, "exit_heads", None)
    if (
        heads is not None
        and hasattr(model, "forward_backbone")
        and not any(isinstance(m, _BatchNorm) for m in heads.modules())
    ):
        forward = model.forward_backbone
    modes = {m: m.training for m in model.modules()}
    momenta = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average over the batches
    model.eval()
    for norm in norms:
        norm.train()
    try:
        for index, (images, _) in enumerate(loader):
            if index >= batches:
                break
            forward(images.to(device, memory_format=torch.channels_last))
    finally:
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum
        for module, mode in modes.items():
            module.train(mode)
    return model


def extract(
    supernet: Supernet,
    config: EENNConfig,
    *,
    calibration_data: Any = None,
    batches: int = 20,
    batch_size: int = 128,
    seed: int = 0,
) -> EarlyExitNetwork:
    """A candidate inherited from ``supernet``; see :meth:`Supernet.extract`."""
    model = extract_network(supernet, config)
    if calibration_data is not None and batches > 0:
        train = getattr(calibration_data, "train", calibration_data)
        recalibrate_batchnorm(model, train, batches=batches, batch_size=batch_size, seed=seed)
    return model
