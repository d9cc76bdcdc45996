"""ONNX export of modules and onnxruntime sessions, shared by the profiler and the deployment."""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

ONNX_OPSET = 17
"""ONNX opset of every exported model (``HardSwish`` needs 14 or more)."""


def require_onnxruntime() -> Any:
    """Import onnxruntime, or raise an error that says how to install it."""
    try:
        import onnxruntime
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            "this needs onnx and onnxruntime: pip install 'optuna-nachos[onnx]'."
        ) from None
    return onnxruntime


def onnx_bytes(
    module: nn.Module,
    example: torch.Tensor,
    *,
    input_names: Sequence[str] = ("input",),
    output_names: Sequence[str] = ("output",),
) -> bytes:
    """Export ``module`` (in eval mode) to an ONNX model with a dynamic batch dimension.

    The TorchScript-based exporter is used: it needs no extra package and traces these static
    modules exactly.

    Args:
        module: The module; it is put in eval mode.
        example: An input batch of the right shape.
        input_names: Names of the graph inputs.
        output_names: Names of the graph outputs.

    Returns:
        The serialized ONNX model.
    """
    module.eval()
    buffer = io.BytesIO()
    dynamic = {name: {0: "batch"} for name in (*input_names, *output_names)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (example,),
            buffer,
            input_names=list(input_names),
            output_names=list(output_names),
            dynamic_axes=dynamic,
            opset_version=ONNX_OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    return buffer.getvalue()


def make_session(
    model: bytes | str,
    *,
    threads: int = 1,
    providers: Sequence[str] = ("CPUExecutionProvider",),
) -> Any:
    """An onnxruntime session with all graph optimizations and ``threads`` intra-op threads.

    Args:
        model: Serialized ONNX model or the path of an ``.onnx`` file.
        threads: Intra-op threads (inter-op parallelism is off: these graphs are sequential).
        providers: onnxruntime execution providers, in order of preference (CPU by default).
    """
    ort = require_onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(model, sess_options=options, providers=list(providers))
