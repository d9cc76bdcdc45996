"""The two-phase NACHOS training of one early-exit network (DESIGN 2.4)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from optuna_nachos._logging import get_logger
from optuna_nachos.train._config import TrainConfig
from optuna_nachos.train._datasets import (
    dataset_labels,
    make_loader,
    model_to_device,
    resolve_device,
    subset,
    to_device,
    train_split,
    without_augmentation,
)
from optuna_nachos.train._errors import TrainingDivergedError
from optuna_nachos.train._inference import collect_exit_outputs
from optuna_nachos.train._losses import LOSS_TERMS, NachosLoss
from optuna_nachos.train._progress import show_progress
from optuna_nachos.train._support import balanced_support_indices, class_exit_accuracy

_logger = get_logger(__name__)

PHASES = ("backbone", "warmup", "exits")
"""Names of the training phases: phase A, then the two parts of phase B."""

_BACKBONE_TERMS = ("total", "cls")
_EXIT_TERMS = ("total", *LOSS_TERMS)


@dataclass(frozen=True)
class EpochRecord:
    """What happened during one training epoch.

    Attributes:
        phase: ``"backbone"`` (phase A), ``"warmup"`` or ``"exits"`` (phase B, the latter
            with the support term).
        epoch: 1-based epoch within ``phase``.
        losses: Mean over the epoch's samples of every loss term, unweighted, and of the
            weighted ``"total"``. Phase A has ``"total"`` and ``"cls"`` (the plain
            cross-entropy); phase B has ``"total"``, ``"cls"``, ``"conf"``, ``"macs"``, ``"sup"``.
        lr: Learning rate used during the epoch.
        seconds: Wall time of the epoch, support-set measurement included.
        images_per_second: Training samples processed per second of ``seconds``.
        step_seconds: Mean time of one training step (forward, loss, backward, update),
            data loading excluded.
        samples: Training samples processed.
        support_seconds: Time spent measuring the support-set accuracy (0 without it).
    """

    phase: str
    epoch: int
    losses: dict[str, float]
    lr: float
    seconds: float
    images_per_second: float
    step_seconds: float
    samples: int
    support_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serializable dictionary."""
        return {
            "phase": self.phase,
            "epoch": self.epoch,
            "losses": dict(self.losses),
            "lr": self.lr,
            "seconds": self.seconds,
            "images_per_second": self.images_per_second,
            "step_seconds": self.step_seconds,
            "samples": self.samples,
            "support_seconds": self.support_seconds,
        }


@dataclass
class FitResult:
    """Result of :func:`fit`.

    Attributes:
        model: The trained network (the object passed in, trained in place).
        records: One :class:`EpochRecord` per epoch, in order.
        phase_seconds: Total wall time of each phase that ran.
        config: The settings used.
        support_accuracy: The last support-set accuracy matrix ``A`` (classes, exits), or
            ``None`` when no support epoch ran.
        exit_costs: The per-exit MACs the MAC term used, if any.
        max_avg_macs: The average-MAC budget of the MAC term, if any.
    """

    model: nn.Module
    records: list[EpochRecord]
    phase_seconds: dict[str, float]
    config: TrainConfig
    support_accuracy: torch.Tensor | None = field(default=None, repr=False)
    exit_costs: tuple[float, ...] | None = None
    max_avg_macs: float | None = None

    @property
    def total_seconds(self) -> float:
        """Wall time of all phases."""
        return float(sum(self.phase_seconds.values()))

    def phase_records(self, phase: str) -> list[EpochRecord]:
        """The records of one phase (``"backbone"``, ``"warmup"`` or ``"exits"``)."""
        return [r for r in self.records if r.phase == phase]

    def images_per_second(self, *phases: str) -> float:
        """Training throughput over the given phases (all when none given); NaN if none ran."""
        chosen = [r for r in self.records if not phases or r.phase in phases]
        seconds = sum(r.seconds for r in chosen)
        return sum(r.samples for r in chosen) / seconds if seconds > 0 else math.nan

    def step_seconds(self, *phases: str) -> float:
        """Mean training-step time over the given phases (all when none given)."""
        chosen = [r for r in self.records if not phases or r.phase in phases]
        steps = [r.step_seconds for r in chosen]
        return sum(steps) / len(steps) if steps else math.nan

    def final_losses(self) -> dict[str, float]:
        """Loss means of the last epoch (empty when nothing ran)."""
        return dict(self.records[-1].losses) if self.records else {}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serializable dictionary (the model excluded)."""
        return {
            "config": self.config.to_dict(),
            "records": [r.to_dict() for r in self.records],
            "phase_seconds": dict(self.phase_seconds),
            "total_seconds": self.total_seconds,
            "support_accuracy": (
                None if self.support_accuracy is None else self.support_accuracy.tolist()
            ),
            "exit_costs": None if self.exit_costs is None else list(self.exit_costs),
            "max_avg_macs": self.max_avg_macs,
        }


def _check_model(model: nn.Module) -> None:
    needed = (
        "forward_backbone",
        "backbone_parameters",
        "exit_head_parameters",
        "backbone_modules",
        "num_exits",
    )
    missing = [name for name in needed if not hasattr(model, name)]
    if missing:
        raise TypeError(
            f"fit needs an EarlyExitNetwork (see optuna_nachos.models.build_eenn); "
            f"{type(model).__name__} lacks {missing}."
        )


def _make_optimizer(
    params: Sequence[nn.Parameter], config: TrainConfig, epochs: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler | None]:
    optimizer = torch.optim.SGD(
        params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    scheduler = None
    if config.scheduler == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs))
    return optimizer, scheduler


StepFunction = Callable[[torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]


def _run_epoch(
    *,
    loader: Any,
    step: StepFunction,
    optimizer: torch.optim.Optimizer,
    term_names: tuple[str, ...],
    phase: str,
    epoch: int,
    num_epochs: int,
    device: torch.device,
    progress: bool,
) -> tuple[dict[str, float], int, float]:
    """Train one epoch; returns (term means, samples, summed step seconds)."""
    lr = optimizer.param_groups[0]["lr"]
    sums = [0.0] * len(term_names)
    samples = 0
    step_time = 0.0
    steps = 0
    bar = tqdm(
        loader,
        desc=f"{phase} {epoch}/{num_epochs}",
        unit="batch",
        leave=False,
        disable=not progress,
        dynamic_ncols=True,
    )
    try:
        for batch, (images, targets) in enumerate(bar):
            images = to_device(images, device)
            targets = torch.as_tensor(targets).to(device, non_blocking=True)
            start = time.perf_counter()
            terms = step(images, targets)
            values = torch.stack([terms[name].detach() for name in term_names]).tolist()
            bad = [(n, v) for n, v in zip(term_names, values, strict=True) if not math.isfinite(v)]
            if bad:
                names = [n for n, _ in bad if n != "total"] or ["total"]
                raise TrainingDivergedError(
                    phase=phase,
                    epoch=epoch,
                    batch=batch,
                    terms=names,
                    values=[dict(bad)[n] for n in names],
                    lr=lr,
                )
            optimizer.zero_grad(set_to_none=True)
            terms["total"].backward()
            optimizer.step()
            step_time += time.perf_counter() - start
            steps += 1
            size = int(targets.shape[0])
            samples += size
            for i, value in enumerate(values):
                sums[i] += value * size
            if progress:
                bar.set_postfix(loss=f"{values[0]:.4f}", refresh=False)
    finally:
        bar.close()
    means = {
        name: (total / samples if samples else math.nan)
        for name, total in zip(term_names, sums, strict=True)
    }
    return means, samples, (step_time / steps if steps else math.nan)


def _train_epoch(
    dataset: Any,
    *,
    step: StepFunction,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    term_names: tuple[str, ...],
    phase: str,
    epoch: int,
    num_epochs: int,
    start: float,
    config: TrainConfig,
    generator: torch.Generator,
    device: torch.device,
    progress: bool,
    support_seconds: float = 0.0,
) -> EpochRecord:
    """Train one epoch of a phase over ``dataset``, step the schedule, log and record it.

    ``start`` is when the epoch began (``time.perf_counter``), so the record's seconds
    include any preparation done before this call (such as measuring the support set).
    """
    loader = make_loader(
        dataset,
        batch_size=config.batch_size,
        shuffle=True,
        generator=generator,
        num_workers=config.num_workers,
        device=device,
    )
    lr = optimizer.param_groups[0]["lr"]
    means, samples, step_seconds = _run_epoch(
        loader=loader,
        step=step,
        optimizer=optimizer,
        term_names=term_names,
        phase=phase,
        epoch=epoch,
        num_epochs=num_epochs,
        device=device,
        progress=progress,
    )
    if scheduler is not None:
        scheduler.step()
    seconds = time.perf_counter() - start
    record = EpochRecord(
        phase=phase,
        epoch=epoch,
        losses=means,
        lr=lr,
        seconds=seconds,
        images_per_second=samples / seconds if seconds > 0 else math.nan,
        step_seconds=step_seconds,
        samples=samples,
        support_seconds=support_seconds,
    )
    _log_epoch(record, num_epochs)
    return record


def _log_epoch(record: EpochRecord, num_epochs: int) -> None:
    losses = " ".join(f"{k}={v:.4f}" for k, v in record.losses.items())
    _logger.info(
        "%s epoch %d/%d: %s lr=%.3g %.1fs %.0f img/s",
        record.phase,
        record.epoch,
        num_epochs,
        losses,
        record.lr,
        record.seconds,
        record.images_per_second,
    )


def _backbone_phase(
    model: nn.Module,
    train_set: Any,
    *,
    config: TrainConfig,
    device: torch.device,
    generator: torch.Generator,
    progress: bool,
    records: list[EpochRecord],
) -> None:
    epochs = config.backbone_epochs
    params = [p for p in model.backbone_parameters() if p.requires_grad]
    if not params:
        raise ValueError("the backbone has no trainable parameter for phase A.")
    optimizer, scheduler = _make_optimizer(params, config, epochs)

    def step(images: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        loss = F.cross_entropy(model.forward_backbone(images), targets)
        return {"total": loss, "cls": loss}

    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        model.train()
        records.append(
            _train_epoch(
                train_set,
                step=step,
                optimizer=optimizer,
                scheduler=scheduler,
                term_names=_BACKBONE_TERMS,
                phase="backbone",
                epoch=epoch,
                num_epochs=epochs,
                start=start,
                config=config,
                generator=generator,
                device=device,
                progress=progress,
            )
        )


def _set_exit_phase_modes(model: nn.Module, *, frozen: bool) -> None:
    model.train()
    if frozen:
        for module in model.backbone_modules():
            module.eval()


def _exit_phase(
    model: nn.Module,
    train_set: Any,
    *,
    config: TrainConfig,
    device: torch.device,
    generator: torch.Generator,
    progress: bool,
    records: list[EpochRecord],
    exit_costs: Sequence[float] | None,
    max_avg_macs: float | None,
    num_classes: int,
) -> torch.Tensor | None:
    frozen = config.freeze_backbone
    epochs = config.exit_phase_epochs
    backbone_params = list(model.backbone_parameters())
    saved_flags = [p.requires_grad for p in backbone_params]
    head_params = [p for p in model.exit_head_parameters() if p.requires_grad]
    params = list(head_params)
    if not frozen:
        params += [p for p in backbone_params if p.requires_grad]
    if not params:
        raise ValueError("the network has no trainable exit-head parameter for phase B.")
    loss_fn = NachosLoss(
        w_alpha=config.w_alpha,
        beta=config.beta,
        w_beta=config.w_beta,
        w_gamma=config.w_gamma,
        exit_costs=exit_costs,
        max_avg_macs=max_avg_macs,
        cls_weighting=config.cls_weighting,
    ).to(device)
    labels = None
    support_accuracy: torch.Tensor | None = None
    current_accuracy: torch.Tensor | None = None

    def step(images: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        # A frozen backbone runs under no_grad: no autograd graph, no saved activations.
        output = model(images, backbone_grad=not frozen)
        terms = loss_fn(output, targets, support_accuracy=current_accuracy)
        return terms._asdict()

    try:
        if frozen:
            for p in backbone_params:
                p.requires_grad_(False)
        optimizer, scheduler = _make_optimizer(params, config, epochs)
        for index in range(epochs):
            start = time.perf_counter()
            phase = "warmup" if index < config.warmup_epochs else "exits"
            epoch = index + 1 if phase == "warmup" else index + 1 - config.warmup_epochs
            phase_epochs = config.warmup_epochs if phase == "warmup" else config.exit_epochs
            epoch_set = train_set
            current_accuracy = None
            support_seconds = 0.0
            if phase == "exits" and config.w_gamma > 0:
                if labels is None:
                    labels = dataset_labels(train_set)
                support_start = time.perf_counter()
                chosen = balanced_support_indices(
                    labels,
                    fraction=config.support_fraction,
                    num_classes=num_classes,
                    generator=generator,
                )
                outputs = collect_exit_outputs(
                    model,
                    without_augmentation(subset(train_set, chosen)),
                    batch_size=max(256, config.batch_size),
                    device=device,
                )
                support_accuracy = class_exit_accuracy(outputs, num_classes=num_classes)
                current_accuracy = support_accuracy[:, :-1].to(device)
                keep = torch.ones(len(labels), dtype=torch.bool)
                keep[chosen] = False
                epoch_set = subset(train_set, torch.nonzero(keep).flatten())
                support_seconds = time.perf_counter() - support_start
            _set_exit_phase_modes(model, frozen=frozen)
            records.append(
                _train_epoch(
                    epoch_set,
                    step=step,
                    optimizer=optimizer,
                    scheduler=scheduler,
                    term_names=_EXIT_TERMS,
                    phase=phase,
                    epoch=epoch,
                    num_epochs=phase_epochs,
                    start=start,
                    config=config,
                    generator=generator,
                    device=device,
                    progress=progress,
                    support_seconds=support_seconds,
                )
            )
    finally:
        for p, flag in zip(backbone_params, saved_flags, strict=True):
            p.requires_grad_(flag)
    return support_accuracy


def fit(
    model: nn.Module,
    data: Any,
    *,
    config: TrainConfig | None = None,
    exit_costs: Sequence[float] | None = None,
    max_avg_macs: float | None = None,
) -> FitResult:
    """Train an early-exit network with the two NACHOS phases.

    Phase A trains the single-exit network (``forward_backbone``) with cross-entropy for
    ``config.backbone_epochs``. Phase B trains the exits with the NACHOS loss
    (:class:`NachosLoss`): ``warmup_epochs`` with ``L_cls``, ``L_conf`` and ``L_macs``, then
    ``exit_epochs`` adding ``L_sup``, whose per-class exit accuracies come from a fresh
    class-balanced support set drawn every epoch (those samples sit out that epoch's
    training, as in the reference). With ``freeze_backbone`` (default) the backbone is frozen
    and its BatchNorm layers stay in eval mode, so neither its weights nor its running
    statistics move. Each phase gets its own SGD optimizer and cosine schedule stepped per
    epoch.

    Randomness (shuffling, support sets, augmentation drawn from torch's global generator)
    is seeded with ``config.seed`` inside a forked RNG state, so the caller's state is
    untouched and two fits of identical models give identical results on the CPU.

    Args:
        model: An :class:`~optuna_nachos.models.EarlyExitNetwork`; trained in place and moved
            to the device.
        data: A ``DatasetSplits``-like object (its ``.train`` is used) or a torch dataset of
            ``(image, label)`` items.
        config: Training settings; :class:`TrainConfig` defaults when ``None``.
        exit_costs: MACs of a sample leaving at each exit (one per exit, final included),
            e.g. from :func:`optuna_nachos.cost.exit_macs`; required with ``max_avg_macs``.
        max_avg_macs: Average-MAC budget of ``L_macs``; ``None`` turns the term off.

    Returns:
        The per-epoch records, phase timings and the trained model.

    Raises:
        TrainingDivergedError: At once when a loss term is NaN or infinite.
        ValueError: On inconsistent arguments (exit costs, empty data).
        TypeError: If ``model`` is not an early-exit network.
    """
    config = TrainConfig() if config is None else config
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}.")
    _check_model(model)
    train_set = train_split(data)
    if len(train_set) == 0:
        raise ValueError("the training dataset is empty.")
    if exit_costs is not None:
        exit_costs = [float(c) for c in exit_costs]
        if len(exit_costs) != model.num_exits:
            raise ValueError(
                f"exit_costs must have one entry per exit ({model.num_exits}), "
                f"got {len(exit_costs)}."
            )
    if max_avg_macs is not None:
        if exit_costs is None:
            raise ValueError("max_avg_macs needs exit_costs, the MACs of each exit.")
        if not max_avg_macs > 0:
            raise ValueError(f"max_avg_macs must be > 0, got {max_avg_macs!r}.")
    num_classes = int(getattr(data, "num_classes", None) or model.num_classes)
    device = resolve_device(config.device)
    progress = show_progress(config.progress)
    was_training = model.training
    model_to_device(model, device)
    records: list[EpochRecord] = []
    phase_seconds: dict[str, float] = {}
    support_accuracy = None
    rng_devices = []
    if device.type == "cuda":
        rng_devices = [device.index if device.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=rng_devices):
        torch.manual_seed(config.seed)
        generator = torch.Generator().manual_seed(config.seed)
        if config.backbone_epochs > 0:
            _backbone_phase(
                model,
                train_set,
                config=config,
                device=device,
                generator=generator,
                progress=progress,
                records=records,
            )
        if config.exit_phase_epochs > 0 and model.num_exits > 1:
            support_accuracy = _exit_phase(
                model,
                train_set,
                config=config,
                device=device,
                generator=generator,
                progress=progress,
                records=records,
                exit_costs=exit_costs,
                max_avg_macs=max_avg_macs,
                num_classes=num_classes,
            )
        elif config.exit_phase_epochs > 0:
            _logger.info("the network has no early exit: phase B skipped.")
    for record in records:
        phase_seconds[record.phase] = phase_seconds.get(record.phase, 0.0) + record.seconds
    model.train(was_training)
    return FitResult(
        model=model,
        records=records,
        phase_seconds=phase_seconds,
        config=config,
        support_accuracy=support_accuracy,
        exit_costs=None if exit_costs is None else tuple(exit_costs),
        max_avg_macs=None if max_avg_macs is None else float(max_avg_macs),
    )
