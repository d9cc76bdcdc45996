"""The deployed early-exit network in every form, and the preprocessing of its input.

- The native bundle: :func:`save_eenn` (one file, the trial artifact), :func:`export_eenn` (a
  folder) and :func:`load_eenn`, which gives a :class:`DeployedEENN`. A network built from an
  :class:`~optuna_nachos.config.EENNConfig` is rebuilt from its configuration; any other one is
  saved as ``torch.export`` programs, one per piece (:class:`ExportedPiece`).
- ONNX: :func:`export_onnx` writes a chain of segments (backbone stages up to an exit plus that
  exit's head; the final segment) and a ``manifest.json`` with the thresholds, the exit rule
  and the preprocessing; :class:`OnnxEENN` runs the chain on onnxruntime with real early
  exiting. onnx and onnxruntime come with the optional extra ``optuna-nachos[onnx]``.

Every form takes the same input: by default raw images (uint8, or floats in [0, 1]) that go
through the recorded :class:`Preprocessing`; with ``preprocess=False`` a batch that is
normalized already. Without a recorded preprocessing, the input is a normalized batch.
"""

from optuna_nachos.deploy._bundle import (
    BUNDLE_FILE,
    DeployedEENN,
    export_eenn,
    load_eenn,
    save_eenn,
)
from optuna_nachos.deploy._onnx_export import MANIFEST_FILE, export_onnx
from optuna_nachos.deploy._onnx_runtime import OnnxEENN, OnnxPrediction
from optuna_nachos.deploy._preprocess import RESIZE_MODES, Preprocessing
from optuna_nachos.deploy._programs import ExportedPiece

__all__ = [
    "BUNDLE_FILE",
    "MANIFEST_FILE",
    "RESIZE_MODES",
    "DeployedEENN",
    "ExportedPiece",
    "OnnxEENN",
    "OnnxPrediction",
    "Preprocessing",
    "export_eenn",
    "export_onnx",
    "load_eenn",
    "save_eenn",
]
