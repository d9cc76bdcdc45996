"""Early-exit inference on onnxruntime: the chain of segments and the cumulative exit rule."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from optuna_nachos.cost import make_session, require_onnxruntime
from optuna_nachos.deploy._onnx_export import MANIFEST_FILE, MANIFEST_FORMAT, MANIFEST_VERSION


class OnnxPrediction(NamedTuple):
    """Result of :meth:`OnnxEENN.predict`.

    Attributes:
        predictions: Predicted class of every sample, shape ``(N,)``, ``int64``.
        exit_indices: Exit each sample left at (``0`` the first early exit, ``num_exits - 1``
            the final one), shape ``(N,)``, ``int64``.
        logits: Class logits of the exit each sample left at, shape ``(N, classes)``.
    """

    predictions: np.ndarray
    exit_indices: np.ndarray
    logits: np.ndarray


class OnnxEENN:
    """An exported early-exit network run by onnxruntime, segment by segment.

    Only numpy and onnxruntime are needed at inference (no torch). Each sample runs the
    segments in order and leaves at the first early exit ``k`` whose cumulative confidence
    ``1 - prod_{i<=k}(1 - b_i)`` reaches ``thresholds[k]``; samples that have left are dropped
    from the batch, so deeper segments run on the remaining ones only. The decisions equal
    :meth:`~optuna_nachos.models.EarlyExitNetwork.predict` on the same inputs.

    Args:
        path: The folder written by :func:`~optuna_nachos.deploy.export_onnx` or its
            ``manifest.json``.
        threads: Intra-op threads of onnxruntime.
        providers: onnxruntime execution providers (CPU by default).

    Raises:
        FileNotFoundError: If the manifest or a segment file is missing.
        ValueError: If the manifest is not an optuna-nachos ONNX export.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        threads: int = 1,
        providers: Sequence[str] = ("CPUExecutionProvider",),
    ) -> None:
        require_onnxruntime()
        path = Path(path)
        manifest_path = path / MANIFEST_FILE if path.is_dir() else path
        if not manifest_path.is_file():
            raise FileNotFoundError(
                f"no ONNX export at {path}: expected {MANIFEST_FILE} (write one with "
                "'optuna-nachos export --format onnx' or export_onnx)."
            )
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"{manifest_path} is not an optuna-nachos ONNX export.")
        if int(manifest.get("format_version", 0)) > MANIFEST_VERSION:
            raise ValueError(
                f"{manifest_path} was written by a newer optuna-nachos; upgrade to run it."
            )
        self.manifest: dict[str, Any] = manifest
        self._sessions = []
        for entry in manifest["segments"]:
            file = manifest_path.parent / entry["file"]
            if not file.is_file():
                raise FileNotFoundError(f"segment {file} of {manifest_path} is missing.")
            self._sessions.append(make_session(str(file), threads=threads, providers=providers))
        self.thresholds: tuple[float, ...] = tuple(float(t) for t in manifest["thresholds"])

    @property
    def num_exits(self) -> int:
        """Number of exits, the final one included."""
        return len(self._sessions)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(channels, height, width)`` of one input."""
        return tuple(int(v) for v in self.manifest["input_shape"])  # type: ignore[return-value]

    @property
    def preprocessing(self) -> dict[str, Any]:
        """The preprocessing recorded in the manifest (empty when none was)."""
        return dict(self.manifest.get("preprocessing") or {})

    def preprocess(self, images: np.ndarray) -> np.ndarray:
        """Turn ``uint8`` images ``(N, C, H, W)`` (or ``(N, H, W, C)``) into network inputs.

        Pixels are scaled to [0, 1] and normalized with the manifest's ``mean`` and ``std``.
        The images must already have the network's resolution.

        Raises:
            ValueError: If the manifest records no mean and std, or the shape is wrong.
        """
        prep = self.preprocessing
        if "mean" not in prep or "std" not in prep:
            raise ValueError(
                "the manifest records no preprocessing mean and std; export with "
                "preprocessing={'mean': ..., 'std': ...} or normalize the inputs yourself."
            )
        images = np.asarray(images)
        channels, height, width = self.input_shape
        if images.ndim == 4 and images.shape[1:] == (height, width, channels) != (
            channels,
            height,
            width,
        ):
            images = images.transpose(0, 3, 1, 2)
        if images.ndim != 4 or images.shape[1:] != (channels, height, width):
            raise ValueError(
                f"expected images of shape (N, {channels}, {height}, {width}) or "
                f"(N, {height}, {width}, {channels}), got {images.shape}; resize them first."
            )
        mean = np.asarray(prep["mean"], dtype=np.float32).reshape(1, -1, 1, 1)
        std = np.asarray(prep["std"], dtype=np.float32).reshape(1, -1, 1, 1)
        return ((images.astype(np.float32) / np.float32(255.0) - mean) / std).astype(np.float32)

    def _thresholds(self, thresholds: Sequence[float] | None) -> list[float]:
        eps = list(self.thresholds if thresholds is None else (float(t) for t in thresholds))
        if len(eps) != self.num_exits - 1:
            raise ValueError(
                f"expected {self.num_exits - 1} thresholds (one per early exit), got {len(eps)}."
            )
        return eps

    def predict(self, x: np.ndarray, thresholds: Sequence[float] | None = None) -> OnnxPrediction:
        """Early-exit inference on a batch of network inputs.

        Args:
            x: Float inputs of shape ``(N, C, H, W)`` (already preprocessed).
            thresholds: One threshold per early exit; the manifest's by default.

        Returns:
            Predictions, exit indices and the logits of the exit each sample left at.

        Raises:
            ValueError: On a wrong input shape or threshold count.
        """
        eps = self._thresholds(thresholds)
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 4 or tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"expected inputs of shape (N, *{self.input_shape}), got {x.shape}.")
        n = x.shape[0]
        classes = int(self.manifest["num_classes"])
        logits_out = np.zeros((n, classes), dtype=np.float32)
        exit_indices = np.full(n, self.num_exits - 1, dtype=np.int64)
        remaining = np.arange(n)
        passed: np.ndarray | None = None
        for index, session in enumerate(self._sessions[:-1]):
            features, logits, confidence = session.run(None, {"input": x})
            survive = np.float32(1.0) - confidence
            passed = survive if passed is None else passed * survive
            if eps[index] < 1.0:
                leave = (np.float32(1.0) - passed) >= eps[index]
                if leave.any():
                    left = remaining[leave]
                    logits_out[left] = logits[leave]
                    exit_indices[left] = index
                    stay = ~leave
                    features, passed, remaining = features[stay], passed[stay], remaining[stay]
            x = features
            if remaining.size == 0:
                break
        else:
            if remaining.size:
                (logits,) = self._sessions[-1].run(None, {"input": x})
                logits_out[remaining] = logits
        return OnnxPrediction(logits_out.argmax(axis=1), exit_indices, logits_out)

    def run_to_exit(self, x: np.ndarray, exit_index: int) -> np.ndarray:
        """Run the chain up to exit ``exit_index`` for the whole batch, without the exit rule
        (what a batch leaving there costs); returns that exit's logits."""
        if not 0 <= exit_index < self.num_exits:
            raise ValueError(f"exit_index must lie in 0..{self.num_exits - 1}, got {exit_index}.")
        x = np.ascontiguousarray(x, dtype=np.float32)
        for session in self._sessions[:exit_index]:
            x = session.run(None, {"input": x})[0]
        outputs = self._sessions[exit_index].run(None, {"input": x})
        return outputs[0] if exit_index == self.num_exits - 1 else outputs[1]
