"""Real early-exit inference speed against the MAC ratio, and per-trial overheads."""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from typing import Any

import optuna
import torch

from optuna_nachos.cost import exit_macs
from optuna_nachos.deploy import DeployedEENN
from optuna_nachos.record import (
    EENNTrial,
)


def _median_seconds(run: Any, repeats: int) -> float:
    run()  # warm-up: allocator and kernel selection
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def inference_speedup(
    deployed: DeployedEENN,
    images: torch.Tensor,
    *,
    batch_sizes: Sequence[int] = (1, 256),
    repeats: int = 5,
    max_single_images: int = 200,
    device: str | torch.device = "cpu",
) -> list[dict[str, Any]]:
    """Time early-exit inference against the full network on the same images.

    The full network is the backbone with its final classifier only (no exit heads); its
    MACs over the measured average MACs of early exiting is the ideal speed-up.

    Args:
        deployed: A trained network with its thresholds.
        images: Test images, ``(N, C, H, W)``.
        batch_sizes: Batch sizes to time (batch 1 uses the first ``max_single_images``).
        repeats: Timed repetitions (median reported) after one warm-up pass.
        max_single_images: Images timed one by one at batch 1.
        device: Where to run.

    Returns:
        One row per batch size: milliseconds per image of both, their ratio and the MAC ratio.
    """
    device = torch.device(device)
    model = deployed.model.to(device).eval()
    config = model.config
    num_classes = int(deployed.metadata["num_classes"])
    in_channels = int(deployed.metadata["in_channels"])
    costs = exit_macs(config, num_classes=num_classes, in_channels=in_channels)
    full_macs = exit_macs(
        config, num_classes=num_classes, in_channels=in_channels, convention="reference"
    )[-1]
    rows = []
    for batch_size in batch_sizes:
        subset = images[: max_single_images if batch_size == 1 else len(images)].to(device)
        batches = list(torch.split(subset, batch_size))

        def full(batches: list[torch.Tensor] = batches) -> None:
            with torch.inference_mode():
                for batch in batches:
                    model.forward_backbone(batch)
            _sync(device)

        def early(batches: list[torch.Tensor] = batches) -> None:
            with torch.inference_mode():
                for batch in batches:
                    model.predict(batch, deployed.thresholds)
            _sync(device)

        with torch.inference_mode():
            exits = torch.cat([model.predict(b, deployed.thresholds).exit_indices for b in batches])
        avg_macs = float(torch.tensor(costs, dtype=torch.float64)[exits.cpu()].mean())
        full_seconds = _median_seconds(full, repeats)
        early_seconds = _median_seconds(early, repeats)
        rows.append(
            {
                "device": str(device),
                "batch_size": batch_size,
                "images": len(subset),
                "full_ms_per_image": 1e3 * full_seconds / len(subset),
                "early_exit_ms_per_image": 1e3 * early_seconds / len(subset),
                "speedup": full_seconds / early_seconds,
                "full_macs": int(full_macs),
                "avg_macs": avg_macs,
                "mac_ratio": full_macs / avg_macs,
            }
        )
    return rows


def trial_overhead(trial: optuna.trial.FrozenTrial) -> float | None:
    """Share of a trained trial's wall time spent outside training and calibration: the
    plugin's own work (suggesting, costing, storing, uploading), as a fraction."""
    timings = EENNTrial.from_trial(trial).timings
    if not timings or trial.datetime_start is None or trial.datetime_complete is None:
        return None
    total = (trial.datetime_complete - trial.datetime_start).total_seconds()
    inside = timings["train_seconds"] + timings["calibration_seconds"]
    return max(0.0, total - inside) / total if total > 0 else None


def training_images_per_second(
    trial: optuna.trial.FrozenTrial, *, train_images: int, epochs: int
) -> float | None:
    """Training images processed per second by a trained trial, over all its epochs."""
    seconds = EENNTrial.from_trial(trial).train_seconds
    if not seconds:
        return None
    return train_images * epochs / seconds
