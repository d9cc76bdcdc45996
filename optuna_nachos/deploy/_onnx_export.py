"""Export of a trained early-exit network as a chain of ONNX segments with a JSON manifest."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from optuna_nachos.cost import ONNX_OPSET, onnx_bytes
from optuna_nachos.deploy._preprocess import Preprocessing, as_preprocessing
from optuna_nachos.models import EarlyExitNetwork

MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = "optuna-nachos-onnx-eenn"
MANIFEST_VERSION = 1


class _ExitSegment(nn.Module):
    """Backbone segments up to an exit, then that exit's head: features, logits, confidence."""

    def __init__(self, segments: Sequence[nn.Module], head: nn.Module) -> None:
        super().__init__()
        self.segments = nn.Sequential(*segments)
        self.head = head

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        features = self.segments(x)
        out = self.head(features)
        return features, out[:, :-1], torch.sigmoid(out[:, -1])


class _FinalSegment(nn.Module):
    """The backbone segments after the last early exit, then the final classifier."""

    def __init__(self, segments: Sequence[nn.Module], head: nn.Module) -> None:
        super().__init__()
        self.segments = nn.Sequential(*segments)
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.segments(x))


def export_onnx(
    out_dir: str | os.PathLike,
    model: EarlyExitNetwork,
    thresholds: Sequence[float],
    *,
    in_channels: int,
    preprocessing: Preprocessing | Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Export a trained early-exit network as ONNX segments and a JSON manifest.

    Segment ``k < E`` (``E`` early exits) runs the backbone stages after exit ``k - 1`` up to
    exit ``k`` and exit ``k``'s head; it outputs the features (input of the next segment), the
    exit's class logits and its confidence ``b_k`` (after the sigmoid). The final segment runs
    the remaining stages and the final classifier. :class:`~optuna_nachos.deploy.OnnxEENN`
    runs the chain with the cumulative exit rule.

    Args:
        out_dir: Folder to write (created): ``segment_0.onnx`` ... and ``manifest.json``.
        model: A network built from an :class:`~optuna_nachos.EENNConfig`.
        thresholds: One threshold per early exit (1 or more disables an exit).
        in_channels: Channels of the input images.
        preprocessing: How raw images become the network's input, recorded in the manifest
            for :meth:`~optuna_nachos.deploy.OnnxEENN.predict`: a
            :class:`~optuna_nachos.deploy.Preprocessing` or its dictionary (``mean`` and
            ``std`` per channel of the pixel values scaled to [0, 1]; ``resolution`` and
            ``channels`` default to the network's). ``None`` records nothing: the runtime
            then takes normalized batches.
        metadata: Extra plain-JSON values for the manifest (costs, metrics, trial number).

    Returns:
        The path of the manifest.

    Raises:
        ValueError: If the network has no configuration, or the thresholds or preprocessing
            do not fit it (channels, resolution, one mean and std per channel).
    """
    if not isinstance(model, EarlyExitNetwork):
        raise TypeError(f"model must be an EarlyExitNetwork, got {type(model).__name__}.")
    if model.config is None:
        raise ValueError("only networks built from an EENNConfig can be exported to ONNX.")
    thresholds = [float(t) for t in thresholds]
    if len(thresholds) != model.num_exits - 1:
        raise ValueError(
            f"expected {model.num_exits - 1} thresholds (one per early exit), got "
            f"{len(thresholds)}."
        )
    resolution = model.config.resolution
    recorded = None
    if preprocessing is not None:
        recorded = as_preprocessing(preprocessing, channels=in_channels, resolution=resolution)
        if recorded.resolution != resolution:
            raise ValueError(
                f"the preprocessing resizes to {recorded.resolution}x{recorded.resolution} but "
                f"the ONNX segments read {resolution}x{resolution} inputs."
            )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    x = torch.zeros(1, in_channels, resolution, resolution)
    entries: list[dict[str, Any]] = []
    start = 0
    try:
        with torch.no_grad():
            for index, (position, head) in enumerate(zip(model.exit_positions, model.exit_heads)):
                module = _ExitSegment(list(model.segments[start : position + 1]), head)
                name = f"segment_{index}.onnx"
                (out / name).write_bytes(
                    onnx_bytes(
                        module,
                        x,
                        output_names=("features", "logits", "confidence"),
                    )
                )
                entries.append(
                    {
                        "file": name,
                        "exit_index": index,
                        "stages": list(range(start + 1, position + 2)),
                        "outputs": ["features", "logits", "confidence"],
                    }
                )
                x = module.segments(x)
                start = position + 1
            module = _FinalSegment(list(model.segments[start:]), model.final_head)
            name = f"segment_{len(entries)}.onnx"
            (out / name).write_bytes(onnx_bytes(module, x, output_names=("logits",)))
            entries.append(
                {
                    "file": name,
                    "exit_index": len(entries),
                    "stages": list(range(start + 1, len(model.segments) + 1)),
                    "outputs": ["logits"],
                }
            )
    finally:
        model.train(was_training)
    manifest = {
        "format": MANIFEST_FORMAT,
        "format_version": MANIFEST_VERSION,
        "config": model.config.to_dict(),
        "num_classes": model.num_classes,
        "in_channels": in_channels,
        "input_shape": [in_channels, resolution, resolution],
        "input_name": "input",
        "thresholds": thresholds,
        "exit_rule": "leave at the first early exit k with 1 - prod_{i<=k}(1 - confidence_i) "
        ">= thresholds[k] (a threshold of 1 or more disables the exit), else at the final exit",
        "preprocessing": None if recorded is None else recorded.to_dict(),
        "segments": entries,
        "onnx_opset": ONNX_OPSET,
        "torch": torch.__version__,
        **dict(metadata or {}),
    }
    path = out / MANIFEST_FILE
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return path
