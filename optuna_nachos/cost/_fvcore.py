"""Counting per-exit MACs and parameters of any early-exit network with fvcore."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch

from optuna_nachos.cost._common import check_convention, compose_exits
from optuna_nachos.models import EarlyExitNetwork

# fvcore's handles for the ops that carry multiply-accumulates of convolutions and linear
# layers; everything else (BatchNorm, pooling, activations, element-wise ops) is left out.
_COUNTED_OPS = {
    "aten::_convolution": "conv_flop_jit",
    "aten::addmm": "addmm_flop_jit",
    "aten::linear": "linear_flop_jit",
    "aten::matmul": "matmul_flop_jit",
    "aten::mm": "matmul_flop_jit",
    "aten::bmm": "bmm_flop_jit",
    "aten::einsum": "einsum_flop_jit",
}


def _fvcore() -> tuple[Any, Any, Any]:
    """fvcore's ``FlopCountAnalysis``, ``parameter_count`` and handles module, imported quietly."""
    try:
        with warnings.catch_warnings():
            # fvcore and iopath touch deprecated torch.jit / pkg_resources APIs at import time.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            from fvcore.nn import FlopCountAnalysis, jit_handles, parameter_count
    except ImportError as error:  # pragma: no cover - fvcore is a dependency
        raise ImportError(
            "counting MACs on a network needs fvcore: pip install fvcore "
            "(or use method='analytic' for MobileNetV3 configurations)."
        ) from error
    return FlopCountAnalysis, parameter_count, jit_handles


def _check_network(model: Any) -> None:
    if not isinstance(model, EarlyExitNetwork):
        raise TypeError(
            f"model must be an EarlyExitNetwork (see build_eenn and attach_exits), "
            f"got {type(model).__name__}."
        )


def _example_input(model: torch.nn.Module, input_shape: Sequence[int]) -> torch.Tensor:
    shape = tuple(input_shape)
    if not shape or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in shape):
        raise ValueError(
            f"input_shape must be the shape of ONE sample as positive integers, e.g. "
            f"(channels, height, width), got {input_shape!r}."
        )
    reference = next(iter(model.parameters()), None)
    if reference is None:
        return torch.zeros(1, *shape)
    return torch.zeros(1, *shape, dtype=reference.dtype, device=reference.device)


def module_macs(model: EarlyExitNetwork, input_shape: Sequence[int]) -> dict[str, int]:
    """Conv/linear MACs per module name of one all-exits forward at batch 1, in eval mode."""
    flop_count_analysis, _, handles = _fvcore()
    example = _example_input(model, input_shape)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            analysis = flop_count_analysis(model, example).clear_op_handles()
            for op, handle in _COUNTED_OPS.items():
                analysis.set_op_handle(op, getattr(handles, handle))
            analysis.unsupported_ops_warnings(False)
            analysis.uncalled_modules_warnings(False)
            analysis.tracer_warnings("none")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                warnings.simplefilter("ignore", FutureWarning)
                counts = analysis.by_module()
    finally:
        model.train(was_training)
    return {name: int(value) for name, value in counts.items()}


def _per_exit(model: EarlyExitNetwork, values: dict[str, int], *, passed_heads: bool) -> list[int]:
    cumulative = []
    total = 0
    for index in range(len(model.segments)):
        total += values.get(f"segments.{index}", 0)
        cumulative.append(total)
    heads = [values.get(f"exit_heads.{k}", 0) for k in range(len(model.exit_heads))]
    return compose_exits(
        cumulative,
        model.exit_positions,
        heads,
        values.get("final_head", 0),
        passed_heads=passed_heads,
    )


def count_exit_macs(
    model: EarlyExitNetwork, input_shape: Sequence[int], *, convention: str = "nachos"
) -> list[int]:
    """MACs of one sample leaving at each exit of any early-exit network, counted by fvcore.

    fvcore traces the all-exits forward (``model(x)``, eval mode, batch 1) once, restricted to
    convolution, linear and matrix-product ops; the counts of the segments and heads give the
    per-exit costs. The dynamic :meth:`~optuna_nachos.models.EarlyExitNetwork.predict` is never
    traced (a trace follows a single path). Works on networks from
    :func:`~optuna_nachos.build_eenn` and from :func:`~optuna_nachos.attach_exits`.

    Args:
        model: The network; its training mode is restored afterwards.
        input_shape: Shape of one input sample, e.g. ``(3, 32, 32)``.
        convention: ``"nachos"`` charges an exit with the heads of the earlier exits the
            sample passed; ``"reference"`` (the NACHOS reference repository) does not.

    Returns:
        One cost per exit, early exits first, the final exit last.

    Raises:
        TypeError: If ``model`` is not an :class:`~optuna_nachos.EarlyExitNetwork`.
        ValueError: If ``input_shape`` or ``convention`` is invalid.
    """
    _check_network(model)
    check_convention(convention)
    values = module_macs(model, input_shape)
    return _per_exit(model, values, passed_heads=convention == "nachos")


def count_exit_params(model: EarlyExitNetwork) -> list[int]:
    """Parameters needed to reach each exit of any early-exit network.

    An exit needs the backbone segments up to it, its own head and the heads of the earlier
    exits (a sample evaluates them on its way), so the last entry is the network's total.

    Args:
        model: The network.

    Returns:
        One count per exit, early exits first, the final exit last.

    Raises:
        TypeError: If ``model`` is not an :class:`~optuna_nachos.EarlyExitNetwork`.
    """
    _check_network(model)
    _, parameter_count, _ = _fvcore()
    values = {name: int(value) for name, value in parameter_count(model).items()}
    return _per_exit(model, values, passed_heads=True)
