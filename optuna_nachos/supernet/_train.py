"""Training the supernet: the sandwich rule with in-place distillation, resumable by epoch."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from optuna_nachos._logging import get_logger
from optuna_nachos.config import EXIT_STAGES
from optuna_nachos.supernet._extract import extract
from optuna_nachos.supernet._io import (
    CHECKPOINT_FILE,
    FORMAT_VERSION,
    WEIGHTS_FILE,
    SupernetError,
    atomic_write_bytes,
    file_sha256,
    package_versions,
    space_metadata,
    write_metadata,
)
from optuna_nachos.supernet._network import (
    Supernet,
    largest_config,
    random_config,
    smallest_config,
)
from optuna_nachos.supernet._settings import SupernetSettings
from optuna_nachos.train import resolve_device, show_progress

_logger = get_logger(__name__)

_RESUME_KEYS = ("settings", "dataset", "num_classes", "in_channels", "resolution", "train_size")


def _parameter_groups(supernet: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for name, parameter in supernet.named_parameters():
        if not parameter.requires_grad:
            continue
        # BatchNorm, biases and OFA's kernel transformation matrices are not decayed.
        if parameter.dim() <= 1 or name.endswith("_matrix"):
            no_decay.append(parameter)
        else:
            decay.append(parameter)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def subnet_accuracies(
    supernet: Supernet,
    data: Any,
    *,
    recalibration_batches: int,
    batch_size: int = 256,
) -> dict[str, dict[str, Any]]:
    """Validation accuracy of every exit of the largest and the smallest subnets.

    Each is extracted with all four early exits and recalibrated first.
    """
    from optuna_nachos.train import collect_exit_outputs

    device = next(supernet.parameters()).device
    result = {}
    for name, config in (
        (
            "largest",
            largest_config(resolution=supernet.resolution),
        ),
        (
            "smallest",
            smallest_config(resolution=supernet.resolution),
        ),
    ):
        config = dataclasses.replace(config, exit_head=supernet.exit_head_names[0])
        model = extract(supernet, config, calibration_data=data, batches=recalibration_batches)
        outputs = collect_exit_outputs(model, data.val, batch_size=batch_size, device=device)
        correct = (outputs.predictions == outputs.labels[:, None]).float().mean(dim=0)
        result[name] = {
            "final_accuracy": float(correct[-1]),
            "exit_accuracies": [float(a) for a in correct.tolist()],
        }
    return result


def _metadata(
    data: Any,
    settings: SupernetSettings,
    *,
    history: list[dict[str, Any]],
    epochs_done: int,
    extra: dict[str, Any],
) -> dict[str, Any]:
    return {
        "format": FORMAT_VERSION,
        "space": space_metadata(),
        "dataset": data.name,
        "num_classes": int(data.num_classes),
        "in_channels": int(data.in_channels),
        "resolution": int(data.resolution),
        "mean": list(data.mean),
        "std": list(data.std),
        "class_names": list(getattr(data, "class_names", ())),
        "train_size": len(data.train),
        "val_size": len(data.val),
        "exit_stages": list(EXIT_STAGES),
        "settings": settings.to_dict(),
        "versions": package_versions(),
        "epochs_done": epochs_done,
        "complete": epochs_done >= settings.epochs,
        "history": history,
        **extra,
    }


def _check_resumable(checkpoint: dict[str, Any], expected: dict[str, Any], folder: Path) -> None:
    recorded = checkpoint["metadata"]
    differences = [key for key in _RESUME_KEYS if recorded.get(key) != expected.get(key)]
    if differences:
        raise SupernetError(
            f"{folder / CHECKPOINT_FILE} was written with other {', '.join(differences)}; "
            f"resume with the same settings and data, or write to another folder."
        )


def train_supernet(
    data: Any,
    out: str | os.PathLike[str],
    *,
    settings: SupernetSettings | None = None,
    supernet: Supernet | None = None,
    resume: bool = True,
    metadata: dict[str, Any] | None = None,
    time_limit: float | None = None,
) -> Supernet:
    """Train a weight-sharing supernet of the MobileNetV3 space on ``data``.

    Every step (BigNAS's sandwich rule): the largest subnet learns from the labels, then the
    smallest and ``settings.random_subnets`` random subnets learn from the largest's soft
    labels (in-place distillation); the exit heads of every position learn on each subnet's
    detached stage features; the gradients are summed and SGD takes one step (cosine decay
    per step). After every epoch the largest and smallest subnets are extracted, recalibrated
    and scored on the validation split, and a checkpoint is written, so a killed run resumes
    exactly where its last epoch ended (same weights as an uninterrupted run on the CPU).

    The folder ``out`` receives ``checkpoint.pt`` (training state), ``supernet.json``
    (metadata: space, dataset, classes, channels, resolution, normalization, settings,
    software versions, per-epoch losses and accuracies) and, at the end, ``supernet.pt``
    (the weights; loadable with ``weights_only=True``).

    Args:
        data: Dataset splits (:func:`~optuna_nachos.data.load_dataset`); ``train`` is
            trained on (with its augmentation), ``val`` scored.
        out: Output folder (created).
        settings: Training settings; :class:`SupernetSettings` defaults when ``None``.
        supernet: Start from these weights (e.g. imported OFA weights) instead of a new
            supernet.
        resume: Continue from ``out``'s checkpoint when there is one.
        metadata: Extra JSON values recorded in the metadata (e.g. the data seed).
        time_limit: Seconds after which training stops: the epoch running when the time
            runs out finishes and writes its checkpoint, then the call returns. The supernet
            is then unfinished (``supernet.metadata["complete"]`` is false,
            ``metadata["epochs_done"]`` says how far it got, ``supernet.pt`` is not written);
            calling again resumes it. ``None``: no limit.

    Returns:
        The trained supernet (unfinished if ``time_limit`` stopped it), in eval mode, with its
        metadata.

    Raises:
        SupernetError: If ``out`` holds a checkpoint of other settings or data.
        ValueError: If ``time_limit`` is not positive.
    """
    started_at = time.perf_counter()
    if time_limit is not None and not time_limit > 0:
        raise ValueError(f"time_limit must be positive seconds (or None), got {time_limit!r}.")
    settings = settings or SupernetSettings()
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise SupernetError(f"{folder} is a file; the supernet needs a folder.")
    folder.mkdir(parents=True, exist_ok=True)
    device = resolve_device(settings.device)
    extra = dict(metadata or {})
    expected = _metadata(data, settings, history=[], epochs_done=0, extra=extra)
    checkpoint_path = folder / CHECKPOINT_FILE
    checkpoint = None
    if resume and checkpoint_path.is_file():
        checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        _check_resumable(checkpoint, expected, folder)

    rng_devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=rng_devices):
        torch.manual_seed(settings.seed)
        if supernet is None:
            supernet = Supernet(
                num_classes=data.num_classes,
                in_channels=data.in_channels,
                resolution=data.resolution,
                exit_heads=settings.exit_heads,
            )
        supernet.to(device, memory_format=torch.channels_last)
        optimizer = torch.optim.SGD(
            _parameter_groups(supernet, settings.weight_decay),
            lr=settings.lr,
            momentum=settings.momentum,
            nesterov=settings.momentum > 0,
        )
        steps_per_epoch = math.ceil(len(data.train) / settings.batch_size)
        total_steps = settings.epochs * steps_per_epoch
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer,
            lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps)),
        )
        loader_generator = torch.Generator().manual_seed(settings.seed)
        subnet_generator = torch.Generator().manual_seed(settings.seed + 1)
        history: list[dict[str, Any]] = []
        start_epoch = 0
        if checkpoint is not None:
            supernet.load_state_dict(checkpoint["model"])
            optimizer.load_state_dict(checkpoint["optimizer"])
            scheduler.load_state_dict(checkpoint["scheduler"])
            loader_generator.set_state(checkpoint["loader_generator"])
            subnet_generator.set_state(checkpoint["subnet_generator"])
            torch.set_rng_state(checkpoint["torch_rng"])
            history = list(checkpoint["metadata"]["history"])
            start_epoch = int(checkpoint["metadata"]["epochs_done"])
            _logger.info(
                "Resuming supernet training at epoch %d of %d.", start_epoch + 1, settings.epochs
            )
        use_amp = settings.amp and device.type == "cuda"
        progress = show_progress(settings.progress)
        for epoch in range(start_epoch, settings.epochs):
            started = time.perf_counter()
            supernet.train()
            loader = DataLoader(
                data.train,
                batch_size=settings.batch_size,
                shuffle=True,
                generator=loader_generator,
                pin_memory=device.type == "cuda",
            )
            sums = {"largest": 0.0, "smallest": 0.0, "random": 0.0, "heads": 0.0}
            samples = 0
            bar = tqdm(
                loader,
                desc=f"supernet {epoch + 1}/{settings.epochs}",
                unit="batch",
                leave=False,
                disable=not progress,
                dynamic_ncols=True,
            )
            for images, targets in bar:
                images = images.to(device, memory_format=torch.channels_last, non_blocking=True)
                targets = torch.as_tensor(targets).to(device, non_blocking=True)
                losses = _sandwich_step(
                    supernet,
                    images,
                    targets,
                    settings=settings,
                    generator=subnet_generator,
                    use_amp=use_amp,
                )
                if not all(math.isfinite(v) for v in losses.values()):
                    raise FloatingPointError(
                        f"supernet training diverged at epoch {epoch + 1}: losses {losses}; "
                        f"lower the learning rate (lr={settings.lr})."
                    )
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                scheduler.step()
                size = int(targets.shape[0])
                samples += size
                for key, value in losses.items():
                    sums[key] += value * size
                if progress:
                    bar.set_postfix(loss=f"{losses['largest']:.3f}", refresh=False)
            bar.close()
            train_seconds = time.perf_counter() - started
            scores = subnet_accuracies(
                supernet, data, recalibration_batches=settings.recalibration_batches
            )
            record = {
                "epoch": epoch + 1,
                "losses": {k: v / max(samples, 1) for k, v in sums.items()},
                "lr": optimizer.param_groups[0]["lr"],
                "train_seconds": train_seconds,
                "seconds": time.perf_counter() - started,
                "val": scores,
            }
            history.append(record)
            _logger.info(
                "supernet epoch %d/%d: loss %.4f, val accuracy largest %.4f smallest %.4f, %.0fs",
                epoch + 1,
                settings.epochs,
                record["losses"]["largest"],
                scores["largest"]["final_accuracy"],
                scores["smallest"]["final_accuracy"],
                record["seconds"],
            )
            state = _metadata(data, settings, history=history, epochs_done=epoch + 1, extra=extra)
            payload = {
                "model": supernet.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "loader_generator": loader_generator.get_state(),
                "subnet_generator": subnet_generator.get_state(),
                "torch_rng": torch.get_rng_state(),
                "metadata": state,
            }
            atomic_write_bytes(checkpoint_path, lambda tmp, p=payload: torch.save(p, tmp))
            write_metadata(folder, state)
            out_of_time = time_limit is not None and time.perf_counter() - started_at >= time_limit
            if out_of_time and epoch + 1 < settings.epochs:
                _logger.info(
                    "Supernet training stopped after epoch %d of %d (time limit %.0f s); "
                    "run again to resume.",
                    epoch + 1,
                    settings.epochs,
                    time_limit,
                )
                supernet.metadata = state
                supernet.source = str(folder)
                return supernet.eval()
    weights = folder / WEIGHTS_FILE
    atomic_write_bytes(weights, lambda tmp: torch.save(supernet.state_dict(), tmp))
    final = _metadata(
        data,
        settings,
        history=history,
        epochs_done=settings.epochs,
        extra={**extra, "weights_sha256": file_sha256(weights)},
    )
    write_metadata(folder, final)
    supernet.metadata = final
    supernet.source = str(folder)
    supernet.weights_sha256 = final["weights_sha256"]
    return supernet.eval()


def _sandwich_step(
    supernet: Supernet,
    images: torch.Tensor,
    targets: torch.Tensor,
    *,
    settings: SupernetSettings,
    generator: torch.Generator,
    use_amp: bool,
) -> dict[str, float]:
    resolution = supernet.resolution
    configs = [
        (
            "largest",
            largest_config(resolution=resolution),
        ),
        (
            "smallest",
            smallest_config(resolution=resolution),
        ),
    ]
    configs += [
        ("random", random_config(generator, resolution=resolution))
        for _ in range(settings.random_subnets)
    ]
    autocast = (
        torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        if use_amp
        else contextlib.nullcontext()
    )
    losses = {"largest": 0.0, "smallest": 0.0, "random": 0.0, "heads": 0.0}
    soft_labels = None
    for name, config in configs:
        supernet.set_active(config)
        with autocast:
            features, logits = supernet.forward_stages(images)
            logits = logits.float()
            if soft_labels is None or not settings.distillation:
                loss = F.cross_entropy(logits, targets)
            else:
                loss = F.cross_entropy(logits, soft_labels)
            head_loss = supernet.head_loss(features, targets, generator)
        if soft_labels is None:
            soft_labels = logits.detach().softmax(dim=1)
        (loss + head_loss).backward()
        losses[name] += float(loss.detach())
        losses["heads"] += float(head_loss.detach())
    if settings.random_subnets:
        losses["random"] /= settings.random_subnets
    return losses
