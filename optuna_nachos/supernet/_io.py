"""A trained supernet on disk: a folder with its weights and JSON metadata."""

from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path
from typing import Any

import torch

from optuna_nachos._errors import UserError
from optuna_nachos.supernet._network import (
    DEPTHS,
    EXPAND_RATIOS,
    KERNEL_SIZES,
    Supernet,
    new_ofa_backbone,
)

WEIGHTS_FILE = "supernet.pt"
"""Weights of the supernet (a state dict, loadable with ``weights_only=True``)."""

METADATA_FILE = "supernet.json"
"""Metadata: space, data, settings, versions, per-epoch history."""

CHECKPOINT_FILE = "checkpoint.pt"
"""Training state of the last finished epoch, for exact resumption."""

FORMAT_VERSION = 1


class SupernetError(UserError, ValueError):
    """A supernet folder is missing, malformed, or does not fit the data it is used with."""


def package_versions() -> dict[str, str]:
    """Versions of the software that trained or used a supernet."""
    from importlib import metadata

    versions = {"python": platform.python_version(), "torch": str(torch.__version__)}
    for name in ("ofa", "optuna-nachos", "numpy"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def space_metadata() -> dict[str, Any]:
    """The space a supernet serves, as recorded in its metadata."""
    return {
        "name": "mobilenetv3",
        "kernel_sizes": list(KERNEL_SIZES),
        "expand_ratios": list(EXPAND_RATIOS),
        "depths": list(DEPTHS),
        "width_mult": 1.0,
    }


def atomic_write_bytes(path: Path, writer: Any) -> None:
    """Write through ``writer(tmp_path)`` then rename, so a kill never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    writer(tmp)
    os.replace(tmp, path)


def weights_state(supernet: torch.nn.Module, *, dtype: str = "float32") -> dict[str, Any]:
    """The supernet's state dict on the CPU, its floating-point tensors in ``dtype``
    (``"float32"`` or ``"float16"``); integer buffers (BatchNorm batch counters) unchanged."""
    target = getattr(torch, dtype)
    return {
        key: (value.detach().to("cpu", target) if value.is_floating_point() else value.cpu())
        for key, value in supernet.state_dict().items()
    }


def write_metadata(folder: Path, metadata: dict[str, Any]) -> None:
    """Write ``supernet.json`` atomically."""
    text = json.dumps(metadata, indent=2, sort_keys=True) + "\n"
    atomic_write_bytes(folder / METADATA_FILE, lambda tmp: tmp.write_text(text))


def read_metadata(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check a supernet folder's metadata.

    Raises:
        SupernetError: If the folder or its files are missing or malformed.
    """
    folder = Path(folder)
    path = folder / METADATA_FILE
    if not folder.is_dir():
        raise SupernetError(
            f"{folder} is not a supernet folder (no such directory); train one with "
            f"`optuna-nachos supernet train --out {folder}`."
        )
    if not path.is_file():
        raise SupernetError(f"{folder} holds no {METADATA_FILE}: it is not a supernet folder.")
    try:
        metadata = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise SupernetError(f"{path} is not valid JSON: {error}.") from error
    needed = ("format", "num_classes", "in_channels", "resolution", "settings")
    missing = [key for key in needed if key not in metadata]
    if missing or metadata.get("format") != FORMAT_VERSION:
        raise SupernetError(
            f"{path} is not a supernet metadata file of format {FORMAT_VERSION} "
            f"(missing {missing or 'nothing'}, format {metadata.get('format')!r})."
        )
    return metadata


def load_supernet(
    folder: str | os.PathLike[str], *, device: str | torch.device = "cpu"
) -> Supernet:
    """Load a trained supernet from its folder.

    Args:
        folder: A folder written by :func:`~optuna_nachos.supernet.train_supernet`.
        device: Where to put it.

    Weights written in half precision (``weights_dtype="float16"``) are read back into the
    supernet's ``float32`` parameters.

    Returns:
        The supernet in eval mode; its metadata in ``supernet.metadata``, its folder in
        ``supernet.source`` and the SHA-256 of its weights in ``supernet.weights_sha256``.

    Raises:
        SupernetError: If the folder is not a finished supernet, or its weights do not fit.
    """
    folder = Path(folder)
    metadata = read_metadata(folder)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise SupernetError(
            f"{folder} holds no {WEIGHTS_FILE}: its training has not finished; resume it with "
            f"`optuna-nachos supernet train --out {folder}` and the same settings."
        )
    from optuna_nachos.supernet._settings import SupernetSettings

    settings = SupernetSettings.from_dict(metadata["settings"])
    supernet = Supernet(
        num_classes=int(metadata["num_classes"]),
        in_channels=int(metadata["in_channels"]),
        resolution=int(metadata["resolution"]),
        exit_heads=settings.exit_heads,
        backbone=new_ofa_backbone(int(metadata["num_classes"])),
    )
    state = torch.load(weights, map_location="cpu", weights_only=True)
    try:
        supernet.load_state_dict(state)
    except RuntimeError as error:
        first = str(error).strip().splitlines()[:2]
        raise SupernetError(
            f"{weights} does not fit the supernet its metadata describes: {' '.join(first)}"
        ) from None
    supernet.metadata = metadata
    supernet.source = str(folder)
    supernet.weights_sha256 = file_sha256(weights)
    return supernet.to(device).eval()
