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
from optuna_nachos.deploy._preprocess import RESIZE_MODES, Preprocessing


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


def _manifest_preprocessing(manifest: dict[str, Any], source: Path) -> Preprocessing | None:
    """The preprocessing a manifest records, or ``None`` when it records no mean and std."""
    recorded = manifest.get("preprocessing") or {}
    if "mean" not in recorded or "std" not in recorded:
        return None
    channels, resolution, _ = (int(v) for v in manifest["input_shape"])
    resize = recorded.get("resize", "stretch")
    try:
        # The segments read the manifest's input shape, whatever else was recorded. Exports
        # made before export_onnx checked the preprocessing may hold free-form values (a
        # "resize" that is no mode): such a resize reads as the default, "stretch".
        return Preprocessing(
            mean=tuple(recorded["mean"]),
            std=tuple(recorded["std"]),
            resolution=resolution,
            channels=channels,
            resize=resize if resize in RESIZE_MODES else "stretch",
        )
    except (TypeError, ValueError) as error:
        raise ValueError(f"{source} records an invalid preprocessing: {error}") from None


class OnnxEENN:
    """An exported early-exit network run by onnxruntime, segment by segment.

    The segments run on onnxruntime with numpy arrays. Each sample runs them in order and
    leaves at the first early exit ``k`` whose cumulative confidence ``1 - prod_{i<=k}(1 -
    b_i)`` reaches ``thresholds[k]``; samples that have left are dropped from the batch, so
    deeper segments run on the remaining ones only. The decisions equal
    :meth:`~optuna_nachos.models.EarlyExitNetwork.predict` on the same inputs.

    :meth:`predict` takes the input :meth:`~optuna_nachos.deploy.DeployedEENN.predict` takes:
    raw images through the preprocessing the manifest records (the same
    :class:`~optuna_nachos.deploy.Preprocessing`, so both forms see the same batch), or a
    normalized batch with ``preprocess=False``.

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
        self.preprocessing: Preprocessing | None = _manifest_preprocessing(manifest, manifest_path)
        """What raw images go through before the network, when the manifest records it."""

    @property
    def num_exits(self) -> int:
        """Number of exits, the final one included."""
        return len(self._sessions)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(channels, height, width)`` of one input."""
        return tuple(int(v) for v in self.manifest["input_shape"])  # type: ignore[return-value]

    def preprocess(self, images: Any) -> np.ndarray:
        """Raw images as the normalized batch the network reads, through the recorded
        preprocessing.

        Args:
            images: uint8 (0..255) or float (0..1) arrays or tensors, ``(N, C, H, W)`` or
                channels last, of any size, PIL images, or lists of them (the layouts
                :class:`~optuna_nachos.deploy.Preprocessing` documents).

        Returns:
            A float32 array ``(N, C, H, W)`` at the network's resolution.

        Raises:
            ValueError: If the manifest records no preprocessing, or on float images outside
                [0, 1] (a batch that is normalized already).
        """
        if self.preprocessing is None:
            raise ValueError(
                "the manifest records no preprocessing: feed normalized arrays to predict(x, "
                "preprocess=False), or export again with export_onnx(..., preprocessing=...)."
            )
        return self.preprocessing(images).numpy()

    def _inputs(self, x: Any, preprocess: bool | None) -> np.ndarray:
        if preprocess is None:
            preprocess = self.preprocessing is not None
        if preprocess:
            x = self.preprocess(x)
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 4 or tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"expected inputs of shape (N, *{self.input_shape}), got {x.shape}.")
        return x

    def _thresholds(self, thresholds: Sequence[float] | None) -> list[float]:
        eps = list(self.thresholds if thresholds is None else (float(t) for t in thresholds))
        if len(eps) != self.num_exits - 1:
            raise ValueError(
                f"expected {self.num_exits - 1} thresholds (one per early exit), got {len(eps)}."
            )
        return eps

    def predict(
        self,
        x: Any,
        thresholds: Sequence[float] | None = None,
        *,
        preprocess: bool | None = None,
    ) -> OnnxPrediction:
        """Early-exit inference on a batch.

        Args:
            x: Raw images (see :meth:`preprocess`) when the manifest records the
                preprocessing; otherwise (or with ``preprocess=False``) a normalized float
                batch ``(N, C, H, W)`` at the network's resolution.
            thresholds: One threshold per early exit; the manifest's by default.
            preprocess: Whether to run ``x`` through the recorded preprocessing; by default,
                when one is recorded (an export without one takes normalized batches).

        Returns:
            Predictions, exit indices and the logits of the exit each sample left at.

        Raises:
            ValueError: On float images outside [0, 1] while preprocessing (pass a
                normalized batch with ``preprocess=False``), on ``preprocess=True`` without a
                recorded preprocessing, on a wrong input shape, or on a wrong threshold count.
        """
        eps = self._thresholds(thresholds)
        x = self._inputs(x, preprocess)
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

    def run_to_exit(self, x: Any, exit_index: int, *, preprocess: bool | None = None) -> np.ndarray:
        """Run the chain up to exit ``exit_index`` for the whole batch, without the exit rule
        (what a batch leaving there costs); returns that exit's logits. ``x`` and
        ``preprocess`` are as in :meth:`predict`."""
        if not 0 <= exit_index < self.num_exits:
            raise ValueError(f"exit_index must lie in 0..{self.num_exits - 1}, got {exit_index}.")
        x = self._inputs(x, preprocess)
        for session in self._sessions[:exit_index]:
            x = session.run(None, {"input": x})[0]
        outputs = self._sessions[exit_index].run(None, {"input": x})
        return outputs[0] if exit_index == self.num_exits - 1 else outputs[1]
