"""Deployment of trained early-exit networks: ONNX segments and an onnxruntime runtime.

An exported network is a chain of ONNX segments (backbone stages up to an exit plus that exit's
head; the final segment) and a ``manifest.json`` with the thresholds, the exit rule and the
preprocessing. :class:`OnnxEENN` runs the chain with real early exiting. onnx and onnxruntime
come with the optional extra ``optuna-nachos[onnx]``. :func:`calibrate_latency` fits a latency
table to whole networks timed as deployed.
"""

from optuna_nachos.deploy._calibrate import (
    calibrate_latency,
    fit_term_latencies,
    measure_exit_latency,
    random_table_configs,
)
from optuna_nachos.deploy._export import MANIFEST_FILE, export_onnx
from optuna_nachos.deploy._runtime import OnnxEENN, OnnxPrediction

__all__ = [
    "MANIFEST_FILE",
    "OnnxEENN",
    "OnnxPrediction",
    "calibrate_latency",
    "export_onnx",
    "fit_term_latencies",
    "measure_exit_latency",
    "random_table_configs",
]
