"""MAC and parameter counting of early-exit networks: analytic closed form and fvcore.

MACs are the multiply-accumulates of convolutions and linear layers at inference, in eval mode
(BatchNorm, activations, pooling, biases, the squeeze-excitation multiply and residual adds are
not counted). ``cost_j`` is what one sample leaving at exit ``j`` pays. Latency lookup tables
(:func:`profile_latency`, :func:`exit_latency`) give the same per-exit costs in milliseconds
measured on a device, for each registered runtime (:class:`LatencyBackend`);
:func:`calibrate_latency` fits a table to whole networks timed as deployed.
"""

from optuna_nachos.cost._analytic import exit_pools_analytic
from optuna_nachos.cost._backends import (
    LatencyBackend,
    OnnxRuntimeBackend,
    TorchBackend,
    get_latency_backend,
    list_latency_backends,
    register_latency_backend,
)
from optuna_nachos.cost._calibrate import (
    calibrate_latency,
    fit_term_latencies,
    measure_exit_latency,
    random_table_configs,
)
from optuna_nachos.cost._common import CONVENTIONS, METHODS, check_convention, compose_exits
from optuna_nachos.cost._exits import exit_macs, exit_params, total_params
from optuna_nachos.cost._fvcore import count_exit_macs, count_exit_params, module_macs
from optuna_nachos.cost._latency import (
    CALL_TERM,
    CLOCKS,
    FIXED_TERM,
    BlockPath,
    LatencyTable,
    block_path,
    exit_block_counts,
    exit_latency,
    profile_latency,
    round_robin_times,
    space_blocks,
)
from optuna_nachos.cost._onnx import ONNX_OPSET, make_session, onnx_bytes, require_onnxruntime
from optuna_nachos.cost._summary import (
    CostProfile,
    average_macs,
    cost_profile,
    min_average_macs,
    peak_macs,
)

__all__ = [
    "CALL_TERM",
    "CLOCKS",
    "CONVENTIONS",
    "FIXED_TERM",
    "METHODS",
    "ONNX_OPSET",
    "BlockPath",
    "CostProfile",
    "LatencyBackend",
    "LatencyTable",
    "OnnxRuntimeBackend",
    "TorchBackend",
    "average_macs",
    "block_path",
    "calibrate_latency",
    "check_convention",
    "compose_exits",
    "cost_profile",
    "count_exit_macs",
    "count_exit_params",
    "exit_block_counts",
    "exit_latency",
    "exit_macs",
    "exit_params",
    "exit_pools_analytic",
    "fit_term_latencies",
    "get_latency_backend",
    "list_latency_backends",
    "make_session",
    "measure_exit_latency",
    "min_average_macs",
    "module_macs",
    "onnx_bytes",
    "peak_macs",
    "profile_latency",
    "random_table_configs",
    "register_latency_backend",
    "require_onnxruntime",
    "round_robin_times",
    "space_blocks",
    "total_params",
]
