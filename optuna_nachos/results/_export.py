"""Saving, exporting and loading trained early-exit networks with their thresholds."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import torch

from optuna_nachos.config import EENNConfig
from optuna_nachos.models import EarlyExitNetwork, EarlyExitPrediction, build_eenn

FORMAT = "optuna-nachos/eenn"
FORMAT_VERSION = 1
BUNDLE_FILE = "eenn.pt"
METADATA_FILE = "eenn.json"
WEIGHTS_FILE = "weights.pt"
ARTIFACT_ATTR = "nachos_artifact_id"


@dataclass
class DeployedEENN:
    """A trained early-exit network ready for early-exit inference.

    Attributes:
        model: The network, in eval mode.
        thresholds: One calibrated threshold per early exit.
        metadata: Everything else recorded with it: ``num_classes``, ``in_channels``, costs
            (``exit_macs``, ``exit_params``), metrics, the trial number.
    """

    model: EarlyExitNetwork
    thresholds: tuple[float, ...]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> EENNConfig:
        """The network's configuration."""
        assert self.model.config is not None
        return self.model.config

    def predict(self, x: torch.Tensor) -> EarlyExitPrediction:
        """Early-exit inference with the calibrated thresholds."""
        return self.model.predict(x, self.thresholds)


def _metadata(
    model: EarlyExitNetwork,
    thresholds: Sequence[float],
    in_channels: int,
    extra: Mapping[str, Any] | None,
) -> dict[str, Any]:
    if model.config is None:
        raise ValueError("only networks built from an EENNConfig can be saved; got none.")
    thresholds = [float(t) for t in thresholds]
    if len(thresholds) != model.num_exits - 1:
        raise ValueError(
            f"expected {model.num_exits - 1} thresholds (one per early exit), "
            f"got {len(thresholds)}."
        )
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": model.config.to_dict(),
        "num_classes": model.num_classes,
        "in_channels": in_channels,
        "thresholds": thresholds,
        **dict(extra or {}),
    }


def save_eenn(
    path: str | os.PathLike,
    model: EarlyExitNetwork,
    thresholds: Sequence[float],
    *,
    in_channels: int,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Save a network, its thresholds and metadata as one file (the trial artifact).

    Args:
        path: File to write (conventionally ``eenn.pt``).
        model: A network built by :func:`~optuna_nachos.build_eenn`.
        thresholds: One threshold per early exit.
        in_channels: Channels of the input images.
        metadata: Extra plain-JSON values to keep (costs, metrics).
    """
    bundle = _metadata(model, thresholds, in_channels, metadata)
    bundle["state_dict"] = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    path = Path(path)
    torch.save(bundle, path)
    return path


def export_eenn(
    out_dir: str | os.PathLike,
    model: EarlyExitNetwork,
    thresholds: Sequence[float],
    *,
    in_channels: int,
    metadata: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Export a network to a folder: ``eenn.json`` (config, thresholds, costs, metrics) and
    ``weights.pt`` (the state dict). The folder loads with :func:`load_eenn`.

    The files are written beside the folder first and moved in at the end, so a failed
    export leaves nothing behind (no half-written files, no new empty folder).

    Args:
        out_dir: The folder to write (created if missing).
        model: A network built by :func:`~optuna_nachos.build_eenn`.
        thresholds: One threshold per early exit.
        in_channels: Channels of the input images.
        metadata: Extra plain-JSON values to keep (costs, metrics).
        overwrite: Replace an export already in the folder.

    Raises:
        FileExistsError: If ``out_dir`` is a file, or holds an export and ``overwrite`` is
            false.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} is a file, not a folder")
    existing = [name for name in (METADATA_FILE, WEIGHTS_FILE) if (out / name).exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{out} already holds an exported network ({', '.join(existing)})")
    info = _metadata(model, thresholds, in_channels, metadata)
    created = [folder for folder in (out, *out.parents) if not folder.exists()]
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (staging / METADATA_FILE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        torch.save(state, staging / WEIGHTS_FILE)
        out.mkdir(exist_ok=True)
        for name in (WEIGHTS_FILE, METADATA_FILE):
            os.replace(staging / name, out / name)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for folder in created:  # deepest first: the folders this export created
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def _from_parts(
    info: Mapping[str, Any],
    state_dict: Mapping[str, torch.Tensor],
    *,
    source: str,
    map_location: str | torch.device,
) -> DeployedEENN:
    if info.get("format") != FORMAT:
        raise ValueError(
            f"{source} is not an optuna-nachos network (format {info.get('format')!r})."
        )
    if info.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(
            f"{source} was written by a newer optuna-nachos (format {info['format_version']}); "
            "upgrade optuna-nachos to load it."
        )
    try:
        config = EENNConfig.from_dict(info["config"])
        model = build_eenn(
            config, num_classes=int(info["num_classes"]), in_channels=int(info["in_channels"])
        )
        thresholds = tuple(float(t) for t in info["thresholds"])
    except (KeyError, TypeError, ValueError) as error:
        reason = f"missing {error}" if isinstance(error, KeyError) else str(error).rstrip(".")
        raise ValueError(f"{source} has an invalid network description: {reason}.") from None
    if len(thresholds) != model.num_exits - 1:
        raise ValueError(
            f"{source} has {len(thresholds)} thresholds; its network has "
            f"{model.num_exits - 1} early exits and needs one threshold per early exit."
        )
    expected = model.state_dict()
    wrong = sorted(set(expected) ^ set(state_dict)) + sorted(
        name
        for name in set(expected) & set(state_dict)
        if tuple(expected[name].shape) != tuple(state_dict[name].shape)
    )
    if wrong:
        raise ValueError(
            f"{source}: the weights do not fit the network its config describes "
            f"({len(wrong)} mismatched tensors, first {wrong[0]!r}); they belong to another "
            "architecture."
        )
    model.load_state_dict(state_dict)
    model.to(map_location).eval()
    metadata = {
        k: v for k, v in info.items() if k not in {"state_dict", "thresholds", "format", "config"}
    }
    return DeployedEENN(model, thresholds, metadata)


def _load_path(path: Path, map_location: str | torch.device) -> DeployedEENN:
    if path.is_dir():
        meta_path, weights_path = path / METADATA_FILE, path / WEIGHTS_FILE
        if not meta_path.is_file() or not weights_path.is_file():
            raise FileNotFoundError(
                f"{path} is not an exported network: expected {METADATA_FILE} and {WEIGHTS_FILE} "
                "(write one with `optuna-nachos export` or export_eenn)."
            )
        try:
            info = json.loads(meta_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"{meta_path} is not valid JSON: {error}.") from None
        if not isinstance(info, dict):
            raise ValueError(f"{meta_path} holds no network description (a JSON object).")
        try:
            state = torch.load(weights_path, map_location="cpu", weights_only=True)
        except Exception as error:  # torch raises several types for unreadable files
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise ValueError(f"{weights_path} is not a readable weights file: {reason}") from None
        return _from_parts(info, state, source=str(path), map_location=map_location)
    if not path.is_file():
        raise FileNotFoundError(f"no exported network at {path}.")
    bundle = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(bundle, dict) or "state_dict" not in bundle:
        raise ValueError(f"{path} is not an optuna-nachos network file.")
    return _from_parts(bundle, bundle["state_dict"], source=str(path), map_location=map_location)


def load_eenn(
    source: str | os.PathLike | optuna.trial.FrozenTrial,
    *,
    artifact_store: Any = None,
    map_location: str | torch.device = "cpu",
) -> DeployedEENN:
    """Load a trained network with its thresholds.

    Args:
        source: An exported folder, a saved ``eenn.pt`` file, or a finished trial of the
            packaged objective (then ``artifact_store`` is the store the search used).
        artifact_store: The Optuna artifact store holding the trial's artifact.
        map_location: Device to put the model on.

    Returns:
        The network in eval mode with its thresholds and metadata.
    """
    if isinstance(source, optuna.trial.FrozenTrial):
        artifact_id = source.user_attrs.get(ARTIFACT_ATTR)
        if artifact_id is None:
            raise ValueError(
                f"trial {source.number} has no saved network (it was skipped, failed, or the "
                "search ran without an artifact store)."
            )
        if artifact_store is None:
            raise ValueError("loading from a trial needs the artifact_store the search used.")
        with tempfile.TemporaryDirectory() as tmp:
            target = Path(tmp) / BUNDLE_FILE
            optuna.artifacts.download_artifact(
                artifact_store=artifact_store, file_path=str(target), artifact_id=artifact_id
            )
            return _load_path(target, map_location)
    return _load_path(Path(source), map_location)
