"""The device of one search worker: ``--device``, or the worker's ``LOCAL_RANK`` among the GPUs.

A launcher that starts several workers on one machine (``torchrun``, or a script that sets
``LOCAL_RANK`` per worker) gives each its own GPU without a per-worker ``--device``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from optuna_nachos.cli._format import CommandError

LOCAL_RANK = "LOCAL_RANK"
"""The environment variable of a worker's index on its machine (torchrun sets it)."""


def _cuda_devices() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def worker_device(
    device: str | None,
    *,
    environ: Mapping[str, str] | None = None,
    cuda_devices: int | None = None,
) -> tuple[str | None, str | None]:
    """The device a search worker trains on.

    ``--device`` with a device index or another device type is kept. Without ``--device``
    (or with ``auto`` or ``cuda``), a worker whose environment sets ``LOCAL_RANK`` on a
    machine with GPUs trains on ``cuda:(LOCAL_RANK mod GPUs)``: one GPU per worker, several
    workers per GPU when there are more workers than GPUs.

    Args:
        device: The ``--device`` value (``None`` when not given).
        environ: The environment (``os.environ`` by default).
        cuda_devices: The number of CUDA GPUs (torch's count by default).

    Returns:
        The device (``None``: the training default) and a line saying that ``LOCAL_RANK``
        chose it (``None`` when it did not).

    Raises:
        CommandError: If ``LOCAL_RANK`` is set but is not a non-negative integer.
    """
    environ = os.environ if environ is None else environ
    text = environ.get(LOCAL_RANK)
    if device not in (None, "auto", "cuda") or text is None or text == "":
        return device, None
    try:
        local_rank = int(text)
    except ValueError:
        local_rank = -1
    if local_rank < 0:
        raise CommandError(
            f"{LOCAL_RANK}={text!r} is not a worker index (0, 1, ...); unset it, or pass "
            "--device cuda:K"
        )
    count = _cuda_devices() if cuda_devices is None else cuda_devices
    if count == 0:
        return device, None
    chosen = f"cuda:{local_rank % count}"
    return chosen, f"Worker device {chosen} ({LOCAL_RANK} {local_rank}, {count} GPU(s))."
