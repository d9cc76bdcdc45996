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

import torch

from optuna_nachos._logging import get_logger
from optuna_nachos.config import EENNConfig
from optuna_nachos.deploy._preprocess import Preprocessing, as_preprocessing
from optuna_nachos.deploy._programs import PROGRAMS_DIR, load_programs, save_programs
from optuna_nachos.models import EarlyExitNetwork, EarlyExitPrediction, build_eenn

logger = get_logger(__name__)

FORMAT = "optuna-nachos/eenn"
FORMAT_VERSION = 2
PROGRAMS = "programs"
BUNDLE_FILE = "eenn.pt"
METADATA_FILE = "eenn.json"
WEIGHTS_FILE = "weights.pt"


@dataclass
class DeployedEENN:
    """A trained early-exit network ready for early-exit inference.

    Attributes:
        model: The network, in eval mode.
        thresholds: One calibrated threshold per early exit.
        metadata: Everything else recorded with it: ``num_classes``, ``in_channels``, costs
            (``exit_macs``, ``exit_params``), metrics, the trial number.
        preprocessing: What raw images go through before the network, when recorded.
    """

    model: EarlyExitNetwork
    thresholds: tuple[float, ...]
    metadata: dict[str, Any] = field(default_factory=dict)
    preprocessing: Preprocessing | None = None

    @property
    def config(self) -> EENNConfig | None:
        """The network's configuration (``None`` for exits on a user's own backbone)."""
        return self.model.config

    @property
    def exit_macs(self) -> tuple[int, ...] | None:
        """MACs of a sample leaving at each exit, as recorded at export."""
        macs = self.metadata.get("exit_macs")
        return None if macs is None else tuple(int(m) for m in macs)

    def preprocess(self, images: Any) -> torch.Tensor:
        """Raw images as the normalized batch the network reads, through the stored
        preprocessing, on the network's device.

        Args:
            images: uint8 (0..255) or float (0..1) tensors or numpy arrays, PIL images, or
                lists of them, in the layouts :class:`Preprocessing` documents.

        Raises:
            ValueError: If the export records no preprocessing, or on float images outside
                [0, 1] (a batch that is normalized already).
        """
        if self.preprocessing is None:
            raise ValueError(
                "this export records no preprocessing: feed normalized tensors to predict(x, "
                "preprocess=False), or export again with export_eenn(..., preprocessing=...)."
            )
        device = next(iter(self.model.parameters())).device
        return self.preprocessing(images).to(device)

    def predict(self, x: Any, *, preprocess: bool | None = None) -> EarlyExitPrediction:
        """Early-exit inference with the calibrated thresholds.

        It takes the input :meth:`~optuna_nachos.deploy.OnnxEENN.predict` takes: raw images
        through the recorded preprocessing by default, a normalized batch with
        ``preprocess=False``.

        Args:
            x: Raw images (see :meth:`preprocess`) when the export records its
                preprocessing; otherwise (or with ``preprocess=False``) a normalized batch
                ``(N, C, H, W)``.
            preprocess: Whether to run ``x`` through the stored preprocessing; by default,
                when one is stored (an export without one takes normalized batches).

        Raises:
            ValueError: On float images outside [0, 1] while preprocessing (pass a
                normalized batch with ``preprocess=False``), on ``preprocess=True`` without a
                recorded preprocessing, or on images of a rank or channel count the
                preprocessing cannot convert.
        """
        if preprocess is None:
            preprocess = self.preprocessing is not None
        if preprocess:
            x = self.preprocess(x)
        return self.model.predict(x, self.thresholds)


def _metadata(
    model: EarlyExitNetwork,
    thresholds: Sequence[float],
    in_channels: int | None,
    extra: Mapping[str, Any] | None,
) -> dict[str, Any]:
    if not isinstance(model, EarlyExitNetwork):
        raise TypeError(
            f"model must be an EarlyExitNetwork (build_eenn, attach_exits or "
            f"BackboneExitSpace.build), got {type(model).__name__}."
        )
    if in_channels is None:
        if model.input_shape is None:
            raise ValueError(
                "pass in_channels=<channels of the input images>: the network does not "
                "record its input shape."
            )
        in_channels = int(model.input_shape[0])
    thresholds = [float(t) for t in thresholds]
    if len(thresholds) != model.num_exits - 1:
        raise ValueError(
            f"expected {model.num_exits - 1} thresholds (one per early exit), "
            f"got {len(thresholds)}."
        )
    info: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": None if model.config is None else model.config.to_dict(),
        "num_classes": model.num_classes,
        "in_channels": in_channels,
        "thresholds": thresholds,
    }
    if model.input_shape is not None:
        info["input_shape"] = list(model.input_shape)
    exits_config = getattr(model, "exits_config", None)
    if exits_config is not None and hasattr(exits_config, "to_dict"):
        info["exits_config"] = exits_config.to_dict()
    info.update(dict(extra or {}))
    return info


def _with_costs(info: dict[str, Any], model: EarlyExitNetwork) -> dict[str, Any]:
    """Add the per-exit MACs and parameters (fvcore) when the caller did not record them."""
    if "exit_macs" in info and "exit_params" in info:
        return info
    from optuna_nachos.cost import count_exit_macs, count_exit_params

    shape = info.get("input_shape")
    if shape is None and model.config is not None:
        resolution = model.config.resolution
        shape = [int(info["in_channels"]), resolution, resolution]
    if shape is not None:
        info.setdefault("exit_macs", count_exit_macs(model, tuple(shape)))
    info.setdefault("exit_params", count_exit_params(model))
    return info


def _preprocessing_dict(
    preprocessing: Preprocessing | Mapping[str, Any] | None,
    info: Mapping[str, Any],
    model: EarlyExitNetwork,
) -> dict[str, Any] | None:
    if preprocessing is None:
        preprocessing = info.get("preprocessing")
    if preprocessing is None:
        return None
    shape = info.get("input_shape")
    if shape is not None:
        resolution = int(shape[-1]) if int(shape[-1]) == int(shape[-2]) else None
    else:
        resolution = None if model.config is None else model.config.resolution
    return as_preprocessing(
        preprocessing, channels=int(info["in_channels"]), resolution=resolution
    ).to_dict()


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
    if model.config is None:
        raise ValueError(
            "save_eenn stores networks built from an EENNConfig in one file; export any other "
            "network (exits on your own backbone) to a folder with export_eenn(folder, ...)."
        )
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
    in_channels: int | None = None,
    metadata: Mapping[str, Any] | None = None,
    preprocessing: Preprocessing | Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Export a network to a folder that :func:`load_eenn` reloads without your code.

    The folder holds ``eenn.json`` (thresholds, class count, input shape, per-exit MACs and
    parameters, the preprocessing, metrics and whatever ``metadata`` adds) and
    ``weights.pt`` (the state dict, under the network's own names). A network built from an
    :class:`~optuna_nachos.EENNConfig` is rebuilt from the configuration recorded in
    ``eenn.json``; any other one (exits on a torchvision or timm backbone) is also saved as
    ``programs/*.pt2``: one ``torch.export`` program per backbone segment, exit head and final
    head (eval mode, any batch size), from which it is rebuilt for inference. The files are
    written to a temporary folder beside ``out_dir`` and moved in place at the end, so a
    failed export leaves nothing behind.

    Args:
        out_dir: The folder to write.
        model: The trained network.
        thresholds: One threshold per early exit.
        in_channels: Channels of the input images; by default the network's recorded input
            shape gives them.
        metadata: Extra plain-JSON values to keep (metrics, costs). Per-exit MACs and
            parameters are counted with fvcore when not given as ``exit_macs`` and
            ``exit_params``.
        preprocessing: What raw images go through before the network (mean, std,
            resolution, channels), e.g. ``Preprocessing.from_dataset(splits)``; may also come
            as ``metadata["preprocessing"]``.
        overwrite: Replace an export already in the folder.

    Returns:
        The folder.

    Raises:
        FileExistsError: If ``out_dir`` is a file, or holds an export and ``overwrite`` is
            false.
        ValueError: On a threshold count that does not match, or a preprocessing whose
            channels differ from the network's.
        RuntimeError: If a piece of a network outside the built-in space cannot be traced
            by ``torch.export``.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} is a file, not a folder")
    existing = [name for name in (METADATA_FILE, WEIGHTS_FILE) if (out / name).exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{out} already holds an exported network ({', '.join(existing)})")
    info = _metadata(model, thresholds, in_channels, metadata)
    info["preprocessing"] = _preprocessing_dict(preprocessing, info, model)
    info = _with_costs(info, model)
    created = [folder for folder in (out.parent, *out.parent.parents) if not folder.exists()]
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        if model.config is None:
            shape = info.get("input_shape")
            if shape is None:
                raise ValueError(
                    "exporting a network outside the built-in space needs its input shape: "
                    "build it with attach_exits(..., input_shape=...) or BackboneExitSpace."
                )
            info["architecture"] = {"kind": PROGRAMS, **save_programs(model, staging, tuple(shape))}
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        torch.save(state, staging / WEIGHTS_FILE)
        (staging / METADATA_FILE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
        _move_into(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for folder in created:  # deepest first: the folders this export created
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def _move_into(staging: Path, out: Path) -> None:
    """Put the staged export at ``out``: a rename when ``out`` does not exist, else file by
    file into it (the metadata last, so a reader never sees new metadata with old files)."""
    if not out.exists():
        staging.rename(out)
        return
    if not out.is_dir():
        raise NotADirectoryError(f"{out} exists and is not a folder.")
    stale = out / PROGRAMS_DIR
    if stale.is_dir() and not (staging / PROGRAMS_DIR).exists():
        shutil.rmtree(stale)
    entries = sorted(staging.iterdir(), key=lambda p: p.name == METADATA_FILE)
    for entry in entries:
        target = out / entry.name
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(entry, target)


def _from_parts(
    info: Mapping[str, Any],
    state_dict: Mapping[str, torch.Tensor],
    *,
    source: str,
    map_location: str | torch.device,
    folder: Path | None = None,
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
        architecture = info.get("architecture")
        if isinstance(architecture, Mapping) and architecture.get("kind") == PROGRAMS:
            if folder is None:
                raise ValueError(f"{source}: a network saved as programs loads from its folder.")
            model = load_programs(
                folder,
                architecture,
                num_classes=int(info["num_classes"]),
                input_shape=info.get("input_shape"),
            )
        else:
            if info.get("config") is None:
                raise ValueError(f"{source} records neither a configuration nor programs.")
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
    programs = isinstance(architecture, Mapping) and architecture.get("kind") == PROGRAMS
    expected = {} if programs else model.state_dict()  # programs carry their own layout
    wrong = sorted(set(expected) ^ set(state_dict)) if expected else []
    wrong += sorted(
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
    if not programs:
        model.load_state_dict(state_dict)
    model.to(map_location).eval()
    metadata = {
        k: v for k, v in info.items() if k not in {"state_dict", "thresholds", "format", "config"}
    }
    preprocessing = info.get("preprocessing")
    return DeployedEENN(
        model,
        thresholds,
        metadata,
        None if preprocessing is None else Preprocessing.from_dict(preprocessing),
    )


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
        return _from_parts(info, state, source=str(path), map_location=map_location, folder=path)
    if not path.is_file():
        raise FileNotFoundError(f"no exported network at {path}.")
    bundle = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(bundle, dict) or "state_dict" not in bundle:
        raise ValueError(f"{path} is not an optuna-nachos network file.")
    return _from_parts(bundle, bundle["state_dict"], source=str(path), map_location=map_location)


def _download_trial_bundle(trial: Any, artifact_store: Any, target: Path) -> None:
    """Copy the bundle a trial of the packaged objective uploaded to ``target``."""
    # The trial record names the attribute; it sits low in the layering and imports only
    # Optuna and the configuration, which a caller holding a trial has loaded already.
    from optuna_nachos.record import ARTIFACT_ATTR

    artifact_id = trial.user_attrs.get(ARTIFACT_ATTR)
    if artifact_id is None:
        raise ValueError(
            f"trial {trial.number} has no saved network (it was skipped, failed, or the "
            "search ran without an artifact store)."
        )
    if artifact_store is None:
        raise ValueError("loading from a trial needs the artifact_store the search used.")
    violated = sorted(name for name, value in trial.constraints.items() if value > 0)
    if violated:
        logger.warning(
            "trial %d is infeasible (violates %s): its network misses the search's "
            "constraints; loaded anyway.",
            trial.number,
            ", ".join(violated),
        )
    # What optuna.artifacts.download_artifact does, through the store's own protocol.
    with artifact_store.open_reader(artifact_id) as reader, open(target, "xb") as writer:
        shutil.copyfileobj(reader, writer)


def load_eenn(
    source: str | os.PathLike | Any,
    *,
    artifact_store: Any = None,
    map_location: str | torch.device = "cpu",
) -> DeployedEENN:
    """Load a trained network with its thresholds.

    Args:
        source: An exported folder, a saved ``eenn.pt`` file, or a finished trial
            (``optuna.trial.FrozenTrial``) of the packaged objective (then
            ``artifact_store`` is the store the search used).
        artifact_store: The Optuna artifact store holding the trial's artifact.
        map_location: Device to put the model on.

    Returns:
        The network in eval mode with its thresholds and metadata. Loading an infeasible
        trial (one that violates a constraint of the search) succeeds and logs a warning.

    Raises:
        FileNotFoundError: If no exported network is at the path.
        ValueError: If the files are not an optuna-nachos network, or the trial has none.
    """
    if isinstance(source, (str, os.PathLike)):
        return _load_path(Path(source), map_location)
    if not hasattr(source, "user_attrs"):
        raise TypeError(
            "source must be a path (an exported folder or an eenn.pt file) or a finished "
            f"Optuna trial, got {type(source).__name__}."
        )
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / BUNDLE_FILE
        _download_trial_bundle(source, artifact_store, target)
        return _load_path(target, map_location)
