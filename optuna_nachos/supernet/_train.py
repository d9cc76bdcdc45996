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
from torch.utils.data import DataLoader, DistributedSampler
from tqdm.auto import tqdm

from optuna_nachos._logging import get_logger
from optuna_nachos.config import EXIT_STAGES
from optuna_nachos.supernet._distributed import (
    Processes,
    convert_sync_batchnorm,
    plain_batchnorm,
    processes,
    revert_sync_batchnorm,
)
from optuna_nachos.supernet._distributed import steps_per_epoch as _steps_per_epoch
from optuna_nachos.supernet._extract import extract
from optuna_nachos.supernet._io import (
    CHECKPOINT_FILE,
    FORMAT_VERSION,
    METADATA_FILE,
    WEIGHTS_FILE,
    SupernetError,
    atomic_write_bytes,
    file_sha256,
    load_supernet,
    package_versions,
    read_metadata,
    space_metadata,
    weights_state,
    write_metadata,
)
from optuna_nachos.supernet._network import (
    Supernet,
    largest_config,
    random_config,
    smallest_config,
)
from optuna_nachos.supernet._settings import SupernetSettings
from optuna_nachos.train import show_progress

_logger = get_logger(__name__)

_TIMED_STEPS = 4
"""Steps timed at the start of training for the estimate of its duration."""

_RESUME_KEYS = ("settings", "dataset", "num_classes", "in_channels", "resolution", "train_size")


def _parameter_groups(
    supernet: nn.Module, weight_decay: float, *, exclude: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for name, parameter in supernet.named_parameters():
        if not parameter.requires_grad or name.startswith(exclude):
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


def zero_init_residual(supernet: Supernet) -> int:
    """Set the last BatchNorm gamma of every residual block of the backbone to zero.

    Each residual block then starts as the identity, which every weight-sharing trainer does
    in a short schedule (OFA, BigNAS, AttentiveNAS): the deep subnets start as shallow ones.

    Returns:
        The number of blocks changed.
    """
    changed = 0
    with torch.no_grad():
        for block in supernet.backbone.blocks:
            if getattr(block, "shortcut", None) is None:
                continue
            norm = block.conv.point_linear.bn
            norm = getattr(norm, "bn", norm)  # OFA's dynamic BatchNorm wraps a plain one
            norm.weight.zero_()
            changed += 1
    return changed


def build_optimizers(
    supernet: Supernet, settings: SupernetSettings, *, steps_per_epoch: int
) -> tuple[list[torch.optim.Optimizer], list[torch.optim.lr_scheduler.LambdaLR]]:
    """The optimizers of a supernet training and their per-step schedules.

    SGD (Nesterov momentum, weight decay on convolution and linear weights only) for the
    backbone; with ``settings.head_lr``, Adam for the exit heads, else the heads join the SGD.
    Each follows :func:`learning_rate_factor` (warm-up, then cosine decay).
    """
    own_heads = settings.head_lr is not None
    backbone = torch.optim.SGD(
        _parameter_groups(
            supernet, settings.weight_decay, exclude=("heads.",) if own_heads else ()
        ),
        lr=settings.lr,
        momentum=settings.momentum,
        nesterov=settings.momentum > 0,
    )
    optimizers: list[torch.optim.Optimizer] = [backbone]
    if own_heads:
        optimizers.append(torch.optim.Adam(supernet.heads.parameters(), lr=settings.head_lr))
    total_steps = settings.epochs * steps_per_epoch
    warmup_steps = round(settings.warmup_epochs * steps_per_epoch)

    def factor(step: int) -> float:
        return learning_rate_factor(step, warmup_steps=warmup_steps, total_steps=total_steps)

    schedulers = [torch.optim.lr_scheduler.LambdaLR(each, factor) for each in optimizers]
    return optimizers, schedulers


def clip_gradients(optimizers: list[torch.optim.Optimizer], max_norm: float) -> list[float]:
    """Clip the gradients of each optimizer's parameters apart, to norm ``max_norm``; ``0``
    does not clip. Returns each optimizer's gradient norm before clipping."""
    norms = []
    for each in optimizers:
        parameters = [p for group in each.param_groups for p in group["params"]]
        if max_norm > 0:
            norms.append(float(torch.nn.utils.clip_grad_norm_(parameters, max_norm)))
        else:
            grads = [p.grad.norm() for p in parameters if p.grad is not None]
            norms.append(float(torch.stack(grads).norm()) if grads else 0.0)
    return norms


def learning_rate_factor(step: int, *, warmup_steps: int, total_steps: int) -> float:
    """The learning rate at ``step`` as a fraction of the peak: a linear warm-up from 0 over
    ``warmup_steps``, then a cosine decay to 0 at ``total_steps``."""
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    span = max(total_steps - warmup_steps, 1)
    progress = min(step - warmup_steps, span) / span
    return 0.5 * (1 + math.cos(math.pi * progress))


def typical_step_seconds(step_seconds: list[float]) -> float:
    """The median duration of the timed steps, the first dropped when there are others (it
    pays one-time costs: memory allocation, kernel selection)."""
    timed = sorted(step_seconds[1:] if len(step_seconds) > 1 else step_seconds)
    if not timed:
        raise ValueError("at least one step duration is needed.")
    return timed[len(timed) // 2]


def estimate_seconds(
    step_seconds: list[float], *, steps_per_epoch: int, epochs: int, epochs_done: int = 0
) -> float:
    """Training time left, in seconds, after the steps timed in ``step_seconds`` (the first
    steps of epoch ``epochs_done + 1``): their typical duration times the steps left."""
    steps_left = (epochs - epochs_done) * steps_per_epoch - len(step_seconds)
    return typical_step_seconds(step_seconds) * max(steps_left, 0)


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {seconds:02d} s"
    return f"{seconds} s"


def _exit_line(scores: dict[str, Any]) -> str:
    return " / ".join(f"{100 * a:.1f}" for a in scores["exit_accuracies"])


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


def _comparable(settings: Any) -> Any:
    """Recorded settings with the defaults of settings added since filled in, so that a
    folder written before a new setting existed still resumes."""
    try:
        return SupernetSettings.from_dict(settings).to_dict()
    except (TypeError, ValueError):
        return settings


def _check_resumable(checkpoint: dict[str, Any], expected: dict[str, Any], folder: Path) -> None:
    recorded = checkpoint["metadata"]
    differences = [
        key
        for key in _RESUME_KEYS
        if (_comparable(recorded.get(key)) if key == "settings" else recorded.get(key))
        != expected.get(key)
    ]
    if differences:
        raise SupernetError(
            f"{folder} holds a supernet of other {', '.join(differences)}; resume with the "
            f"same settings and data, or write to another folder (or restart: resume=False, "
            f"--restart)."
        )


def _read_folder(
    folder: Path, expected: dict[str, Any], *, resume: bool, device: torch.device
) -> tuple[dict[str, Any] | None, Supernet | None]:
    """What ``folder`` holds to start from: a checkpoint to resume, or a finished supernet
    of the same settings and data (then nothing is trained). Creates the folder."""
    if folder.exists() and not folder.is_dir():
        raise SupernetError(f"{folder} is a file; the supernet needs a folder.")
    folder.mkdir(parents=True, exist_ok=True)
    checkpoint_path = folder / CHECKPOINT_FILE
    if resume and checkpoint_path.is_file():
        checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        _check_resumable(checkpoint, expected, folder)
        return checkpoint, None
    if resume and (folder / WEIGHTS_FILE).is_file() and (folder / METADATA_FILE).is_file():
        # A finished run (its checkpoint removed): nothing to train with the same settings
        # and data; anything else would overwrite it.
        _check_resumable({"metadata": read_metadata(folder)}, expected, folder)
        _logger.info("The supernet in %s is already trained.", folder)
        return None, load_supernet(folder, device=device)
    return None, None


def _check_processes(settings: SupernetSettings, run: Processes) -> None:
    if not run.distributed:
        return
    if settings.batch_size % run.world_size:
        multiple = -(-settings.batch_size // run.world_size) * run.world_size
        raise SupernetError(
            f"batch_size {settings.batch_size} is the global batch of a step and must be a "
            f"multiple of the {run.world_size} processes (each takes an equal share); use "
            f"e.g. {multiple}."
        )
    if settings.sync_batchnorm and run.device.type != "cuda":
        raise SupernetError(
            "sync_batchnorm needs CUDA devices (torch.nn.SyncBatchNorm synchronizes GPU "
            "tensors only); on the CPU leave it off: each process then normalizes over its "
            "own share of the batch."
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

    Started by ``torchrun --nproc_per_node N`` (or inside a process group), the N processes
    train together: the same subnets every step on each process's shard of the data
    (:class:`~torch.utils.data.DistributedSampler`), ``settings.batch_size`` being the global
    batch, gradients averaged over the processes (one all-reduce per step), BatchNorm per
    process unless ``settings.sync_batchnorm``. Rank 0 alone reads and writes ``out``,
    validates after each epoch and logs; every process returns the same supernet. A killed
    run resumes on the same number of processes exactly as an uninterrupted one would have
    continued, and on another number (with ``batch_size`` a multiple of it) with the same
    weights, optimizer states, schedule and subnet draws, only the data order of the
    remaining epochs changing.

    Args:
        data: Dataset splits (:func:`~optuna_nachos.data.load_dataset`); ``train`` is
            trained on (with its augmentation), ``val`` scored.
        out: Output folder (created).
        settings: Training settings; :class:`SupernetSettings` defaults when ``None``.
        supernet: Start from these weights (e.g. imported OFA weights) instead of a new
            supernet (rank 0's, under ``torchrun``).
        resume: Continue from ``out``'s checkpoint when there is one.
        metadata: Extra JSON values recorded in the metadata (e.g. the data seed).
        time_limit: Seconds after which training stops: the epoch running when the time
            runs out finishes and writes its checkpoint, then the call returns. The supernet
            is then unfinished (``supernet.metadata["complete"]`` is false,
            ``metadata["epochs_done"]`` says how far it got, ``supernet.pt`` is not written);
            calling again resumes it. ``None``: no limit. Rank 0's clock decides.

    Returns:
        The trained supernet (unfinished if ``time_limit`` stopped it), in eval mode, with its
        metadata.

    Raises:
        SupernetError: If ``out`` holds a checkpoint of other settings or data, or the
            processes cannot train together (a batch size that is not a multiple of their
            number, synchronized BatchNorm on the CPU, an incomplete ``torchrun``
            environment).
        ValueError: If ``time_limit`` is not positive.
    """
    started_at = time.perf_counter()
    if time_limit is not None and not time_limit > 0:
        raise ValueError(f"time_limit must be positive seconds (or None), got {time_limit!r}.")
    settings = settings or SupernetSettings()
    folder = Path(out)
    with processes(settings.device) as run:
        _check_processes(settings, run)
        return _train(
            data,
            folder,
            settings=settings,
            supernet=supernet,
            resume=resume,
            metadata=metadata,
            time_limit=time_limit,
            started_at=started_at,
            run=run,
        )


def _train(
    data: Any,
    folder: Path,
    *,
    settings: SupernetSettings,
    supernet: Supernet | None,
    resume: bool,
    metadata: dict[str, Any] | None,
    time_limit: float | None,
    started_at: float,
    run: Processes,
) -> Supernet:
    device = run.device
    log = _logger.info if run.main else _quiet
    extra = dict(metadata or {})
    expected = _metadata(data, settings, history=[], epochs_done=0, extra=extra)
    checkpoint_path = folder / CHECKPOINT_FILE
    # Rank 0 alone reads the folder (no shared file system is needed) and hands over what
    # it holds; a finished supernet goes over on the CPU.
    read_on = torch.device("cpu") if run.distributed else device
    checkpoint, finished = run.from_main(
        lambda: _read_folder(folder, expected, resume=resume, device=read_on)
    )
    if finished is not None:
        return finished.to(device)

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
            if settings.zero_init_residual:
                zero_init_residual(supernet)
        supernet.to(device, memory_format=torch.channels_last)
        synced = run.distributed and settings.sync_batchnorm
        if synced:
            convert_sync_batchnorm(supernet)
        world = run.world_size
        steps_per_epoch = _steps_per_epoch(len(data.train), settings.batch_size, world)
        optimizers, schedulers = build_optimizers(
            supernet, settings, steps_per_epoch=steps_per_epoch
        )
        warmup_steps = round(settings.warmup_epochs * steps_per_epoch)
        loader_generator = torch.Generator().manual_seed(settings.seed)
        # The same seed on every rank: every process draws the same subnets each step.
        subnet_generator = torch.Generator().manual_seed(settings.seed + 1)
        history: list[dict[str, Any]] = []
        start_epoch = 0
        if checkpoint is not None:
            supernet.load_state_dict(checkpoint["model"])
            for each, state in zip(optimizers, checkpoint["optimizers"]):
                each.load_state_dict(state)
            for each, state in zip(schedulers, checkpoint["schedulers"]):
                each.load_state_dict(state)
            loader_generator.set_state(checkpoint["loader_generator"])
            subnet_generator.set_state(checkpoint["subnet_generator"])
            torch.set_rng_state(checkpoint["torch_rng"])
            history = list(checkpoint["metadata"]["history"])
            start_epoch = int(checkpoint["metadata"]["epochs_done"])
            log("Resuming supernet training at epoch %d of %d.", start_epoch + 1, settings.epochs)
        # Every rank starts from rank 0's weights (as DDP does), whatever it built.
        run.broadcast_state(supernet)
        use_amp = settings.amp and device.type == "cuda"
        progress = show_progress(settings.progress) and run.main
        subnets = 2 + settings.random_subnets
        log(
            "Supernet: %d epochs of %d steps, batch %d, %d subnets per step (largest, smallest, "
            "%d random), %d training images, on %s.",
            settings.epochs,
            steps_per_epoch,
            settings.batch_size,
            subnets,
            settings.random_subnets,
            len(data.train),
            device,
        )
        if run.distributed:
            log(
                "Supernet: %d processes, %d images each per step, BatchNorm %s.",
                world,
                settings.batch_size // world,
                "synchronized" if synced else "per process",
            )
        step_seconds: list[float] = []
        retimed = False
        for epoch in range(start_epoch, settings.epochs):
            started = time.perf_counter()
            supernet.train()
            if run.distributed:
                sampler = DistributedSampler(
                    data.train,
                    num_replicas=world,
                    rank=run.rank,
                    shuffle=True,
                    seed=settings.seed,
                )
                sampler.set_epoch(epoch)
                # The augmentation of each rank: its own stream, reproducible per epoch.
                torch.manual_seed(run.augmentation_seed(settings.seed, epoch))
                loader = DataLoader(
                    data.train,
                    batch_size=settings.batch_size // world,
                    sampler=sampler,
                    pin_memory=device.type == "cuda",
                )
            else:
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
            step_started = time.perf_counter()
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
                    train_heads=schedulers[0].last_epoch >= warmup_steps,
                )
                finite = all(math.isfinite(v) for v in losses.values())
                if run.distributed:
                    # After the step's backward passes, before clipping: one all-reduce.
                    finite = run.average_gradients(list(supernet.parameters()), finite=finite)
                if not finite:
                    raise FloatingPointError(
                        f"supernet training diverged at epoch {epoch + 1}: losses {losses}; "
                        f"lower the learning rate (lr={settings.lr})."
                    )
                clip_gradients(optimizers, settings.grad_clip)
                for each, scheduler in zip(optimizers, schedulers):
                    each.step()
                    each.zero_grad(set_to_none=True)
                    scheduler.step()
                if schedulers[0].last_epoch == warmup_steps + 1 and warmup_steps and not retimed:
                    # The heads start now: time the steps again for a better estimate.
                    step_seconds, retimed = [], True
                    step_started = time.perf_counter()
                if len(step_seconds) < _TIMED_STEPS:
                    now = time.perf_counter()
                    step_seconds.append(now - step_started)
                    step_started = now
                    if len(step_seconds) == _TIMED_STEPS or len(step_seconds) == steps_per_epoch:
                        left = estimate_seconds(
                            step_seconds,
                            steps_per_epoch=steps_per_epoch,
                            epochs=settings.epochs,
                            epochs_done=epoch,
                        )
                        log(
                            "Supernet: the first steps took %.1f s each: about %s of training "
                            "left, plus a validation after every epoch.",
                            typical_step_seconds(step_seconds),
                            _duration(left),
                        )
                size = int(targets.shape[0])
                samples += size
                for key, value in losses.items():
                    sums[key] += value * size
                if progress:
                    bar.set_postfix(loss=f"{losses['largest']:.3f}", refresh=False)
            bar.close()
            if run.distributed:
                run.broadcast_buffers(supernet)
                *totals, samples = run.summed([*sums.values(), samples])
                sums = dict(zip(sums, totals))
            train_seconds = time.perf_counter() - started
            record = None
            if run.main:
                with plain_batchnorm(supernet, synced):
                    scores = subnet_accuracies(
                        supernet, data, recalibration_batches=settings.recalibration_batches
                    )
                record = {
                    "epoch": epoch + 1,
                    "losses": {k: v / max(samples, 1) for k, v in sums.items()},
                    "lr": optimizers[0].param_groups[0]["lr"],
                    "train_seconds": train_seconds,
                    "seconds": time.perf_counter() - started,
                    "val": scores,
                }
                if run.distributed:
                    record["processes"] = world
            record = run.shared(record)
            history.append(record)
            log(
                "Supernet epoch %d/%d: loss %.3f (largest) %.3f (smallest) %.3f (heads); "
                "validation accuracy per exit (%%) largest %s, smallest %s; %s.",
                epoch + 1,
                settings.epochs,
                record["losses"]["largest"],
                record["losses"]["smallest"],
                record["losses"]["heads"],
                _exit_line(record["val"]["largest"]),
                _exit_line(record["val"]["smallest"]),
                _duration(record["seconds"]),
            )
            state = _metadata(data, settings, history=history, epochs_done=epoch + 1, extra=extra)
            if run.main:
                payload = {
                    "model": supernet.state_dict(),
                    "optimizers": [each.state_dict() for each in optimizers],
                    "schedulers": [each.state_dict() for each in schedulers],
                    "loader_generator": loader_generator.get_state(),
                    "subnet_generator": subnet_generator.get_state(),
                    "torch_rng": torch.get_rng_state(),
                    "metadata": state,
                }
                atomic_write_bytes(checkpoint_path, lambda tmp, p=payload: torch.save(p, tmp))
                write_metadata(folder, state)
            # Rank 0's clock decides for every rank.
            out_of_time = run.shared(
                time_limit is not None and time.perf_counter() - started_at >= time_limit
            )
            if out_of_time and epoch + 1 < settings.epochs:
                log(
                    "Supernet training stopped after epoch %d of %d (time limit %.0f s); "
                    "run again to resume.",
                    epoch + 1,
                    settings.epochs,
                    time_limit,
                )
                if synced:
                    revert_sync_batchnorm(supernet)
                supernet.metadata = state
                supernet.source = str(folder)
                return supernet.eval()
    if synced:
        revert_sync_batchnorm(supernet)
    final = None
    if run.main:
        weights = folder / WEIGHTS_FILE
        state_dict = weights_state(supernet, dtype=settings.weights_dtype)
        atomic_write_bytes(weights, lambda tmp: torch.save(state_dict, tmp))
        final = _metadata(
            data,
            settings,
            history=history,
            epochs_done=settings.epochs,
            extra={
                **extra,
                "weights_sha256": file_sha256(weights),
                "weights_dtype": settings.weights_dtype,
                "train_seconds": sum(r["seconds"] for r in history),
            },
        )
        write_metadata(folder, final)
        if not settings.keep_checkpoint:
            checkpoint_path.unlink(missing_ok=True)
    final = run.shared(final)
    supernet.metadata = final
    supernet.source = str(folder)
    supernet.weights_sha256 = final["weights_sha256"]
    return supernet.eval()


def _quiet(*args: Any, **kwargs: Any) -> None:
    """The log of the ranks other than 0: nothing (rank 0 speaks for all)."""


def _sandwich_step(
    supernet: Supernet,
    images: torch.Tensor,
    targets: torch.Tensor,
    *,
    settings: SupernetSettings,
    generator: torch.Generator,
    use_amp: bool,
    train_heads: bool = True,
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
    # The first recipe (head_lr None) trains one random pool size per position on every
    # subnet, losses summed; otherwise every head learns on the last subnet of the step (a
    # random one, as a search draws them; the smallest when there is none), once the warm-up
    # is over: heads that start on the features of a random backbone die (measured).
    legacy_heads = settings.head_lr is None
    head_scale = len(EXIT_STAGES) * len(supernet.exit_head_names)
    for index, (name, config) in enumerate(configs):
        supernet.set_active(config)
        with autocast:
            features, logits = supernet.forward_stages(images)
            logits = logits.float()
            if soft_labels is None:
                loss = F.cross_entropy(logits, targets, label_smoothing=settings.label_smoothing)
            elif not settings.distillation:
                loss = F.cross_entropy(logits, targets)
            else:
                loss = F.cross_entropy(logits, soft_labels)
            if legacy_heads:
                head_loss = supernet.head_loss(features, targets, generator) * head_scale
            elif train_heads and index == len(configs) - 1:
                rows = max(1, round(settings.head_batch_fraction * targets.shape[0]))
                head_loss = supernet.head_loss(
                    [feature[:rows] for feature in features],
                    targets[:rows],
                    confidence_weight=settings.head_confidence_weight,
                )
            else:
                head_loss = loss.new_zeros(())
        if soft_labels is None:
            soft_labels = logits.detach().softmax(dim=1)
        (loss + head_loss).backward()
        losses[name] += float(loss.detach())
        losses["heads"] += float(head_loss.detach())
    if settings.random_subnets:
        losses["random"] /= settings.random_subnets
    return losses
