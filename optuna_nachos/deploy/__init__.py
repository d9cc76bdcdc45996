"""Deployment of trained early-exit networks: ONNX segments and an onnxruntime runtime.

An exported network is a chain of ONNX segments (backbone stages up to an exit plus that exit's
head; the final segment) and a ``manifest.json`` with the thresholds, the exit rule and the
preprocessing. :class:`OnnxEENN` runs the chain with real early exiting. onnx and onnxruntime
come with the optional extra ``optuna-nachos[onnx]``.
"""

from optuna_nachos.deploy._export import MANIFEST_FILE, export_onnx
from optuna_nachos.deploy._runtime import OnnxEENN, OnnxPrediction

__all__ = ["MANIFEST_FILE", "OnnxEENN", "OnnxPrediction", "export_onnx"]
