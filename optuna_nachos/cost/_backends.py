"""The runtimes a latency table measures, as a small registered protocol.

A back end says how its runtime runs one block of a network (to profile the table's blocks)
and a whole early-exit network (to calibrate the table on networks as deployed), and what a call
costs besides the blocks: a bare call, one step of the exit rule, the fixed work of a call.
PyTorch eager and onnxruntime are registered here; a back end of your own is a subclass of
:class:`LatencyBackend` registered with :func:`register_latency_backend`.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from optuna_nachos._registry import Registry
from optuna_nachos.cost._onnx import ONNX_OPSET, make_session, onnx_bytes, require_onnxruntime

Call = Callable[[], Any]
"""One timed call: no argument, its result ignored."""


class LatencyBackend(abc.ABC):
    """A runtime the latency model measures.

    Attributes:
        name: The name tables and settings use (``latency_backend="..."``).
    """

    name: str

    @abc.abstractmethod
    def options(self, *, threads: int) -> str:
        """How the runtime is configured, in words, for the table's method record."""

    def require(self) -> None:  # noqa: B027 - optional hook: most runtimes need nothing
        """Raise an :class:`ImportError` that says what to install when the runtime is
        missing."""

    @abc.abstractmethod
    def fixed_calls(self, x: torch.Tensor, out: torch.Tensor, *, threads: int) -> list[Call]:
        """The three calls measured apart from the blocks, on input ``x`` and exit output
        ``out`` (class logits, then the confidence logit): a bare call of the runtime, one
        segment step (a bare call and the exit rule's arithmetic), and the fixed work of one
        early-exit inference call (buffers, thresholds, gathering the predictions)."""

    @abc.abstractmethod
    def prepare_block(self, module: nn.Module, example: torch.Tensor, *, threads: int) -> Any:
        """What the runtime needs to run ``module`` (in eval mode) on batches shaped like
        ``example`` at any batch size: the module itself, a compiled graph, a session."""

    @abc.abstractmethod
    def block_call(self, prepared: Any, x: torch.Tensor) -> Call:
        """One run of a prepared block on ``x``."""

    @abc.abstractmethod
    def prepare_network(self, model: nn.Module, *, folder: str, threads: int) -> Any:
        """What the runtime needs to run ``model`` (an
        :class:`~optuna_nachos.EarlyExitNetwork` in eval mode) with early exiting, in the form
        it deploys it; ``folder`` is an empty folder it may keep files in."""

    @abc.abstractmethod
    def network_call(self, prepared: Any, x: torch.Tensor, thresholds: Sequence[float]) -> Call:
        """One early-exit inference of a prepared network on ``x`` at ``thresholds``."""


class TorchBackend(LatencyBackend):
    """PyTorch eager, eval mode, under :func:`torch.inference_mode`."""

    name = "torch"

    def options(self, *, threads: int) -> str:
        return f"eager, eval mode, torch.inference_mode, torch.set_num_threads({threads})"

    def fixed_calls(self, x: torch.Tensor, out: torch.Tensor, *, threads: int) -> list[Call]:
        identity = nn.Identity()
        return [
            lambda: identity(x),
            lambda: _torch_step(identity, x, out),
            lambda: _torch_setup(out),
        ]

    def prepare_block(self, module: nn.Module, example: torch.Tensor, *, threads: int) -> Any:
        return module

    def block_call(self, prepared: Any, x: torch.Tensor) -> Call:
        return lambda: prepared(x)

    def prepare_network(self, model: nn.Module, *, folder: str, threads: int) -> Any:
        return model

    def network_call(self, prepared: Any, x: torch.Tensor, thresholds: Sequence[float]) -> Call:
        return lambda: prepared.predict(x, thresholds)


class OnnxRuntimeBackend(LatencyBackend):
    """onnxruntime on the CPU: blocks exported to ONNX, networks as their deployed segment
    chain (:class:`~optuna_nachos.deploy.OnnxEENN`)."""

    name = "onnxruntime"

    def options(self, *, threads: int) -> str:
        return (
            "CPUExecutionProvider, ORT_ENABLE_ALL, sequential, "
            f"intra_op_num_threads={threads}, opset {ONNX_OPSET}"
        )

    def require(self) -> None:
        require_onnxruntime()

    def fixed_calls(self, x: torch.Tensor, out: torch.Tensor, *, threads: int) -> list[Call]:
        # A one-operator exported graph: the fixed cost of a real session run.
        empty = make_session(onnx_bytes(nn.ReLU(), x), threads=threads)
        feed = {"input": x.numpy()}
        confidence = torch.sigmoid(out[:, -1]).numpy()
        logits = out[:, :-1].numpy()
        return [
            lambda: empty.run(None, feed),
            lambda: _numpy_step(empty, feed, confidence),
            lambda: _numpy_setup(feed["input"], logits),
        ]

    def prepare_block(self, module: nn.Module, example: torch.Tensor, *, threads: int) -> Any:
        return make_session(onnx_bytes(module, example), threads=threads)

    def block_call(self, prepared: Any, x: torch.Tensor) -> Call:
        feed = {"input": x.numpy()}
        return lambda: prepared.run(None, feed)

    def prepare_network(self, model: nn.Module, *, folder: str, threads: int) -> Any:
        # The deployed form sits in a layer above the cost model, which it builds on: imported
        # here, where the ONNX chain is timed, not with the cost package.
        from optuna_nachos.deploy import OnnxEENN, export_onnx

        in_channels = int(model.input_shape[0])
        export_onnx(folder, model, [1.0] * (model.num_exits - 1), in_channels=in_channels)
        return OnnxEENN(folder, threads=threads)

    def network_call(self, prepared: Any, x: torch.Tensor, thresholds: Sequence[float]) -> Call:
        x_numpy = x.numpy()
        return lambda: prepared.predict(x_numpy, thresholds)


_BACKENDS: Registry[LatencyBackend] = Registry("latency back end", unknown=ValueError)


def register_latency_backend(backend: LatencyBackend, *, overwrite: bool = False) -> None:
    """Register ``backend`` under its ``name``.

    Raises:
        TypeError: If ``backend`` is not a :class:`LatencyBackend`.
        ValueError: If the name is taken and ``overwrite`` is false.
    """
    if not isinstance(backend, LatencyBackend):
        raise TypeError(f"backend must be a LatencyBackend instance, got {type(backend).__name__}.")
    _BACKENDS.add(backend.name, backend, overwrite=overwrite)


def get_latency_backend(name: str) -> LatencyBackend:
    """The registered back end ``name``.

    Raises:
        ValueError: If none is registered under ``name``; the message lists the known ones.
    """
    return _BACKENDS.entry(name)


def list_latency_backends() -> list[str]:
    """Names of the registered back ends, in registration order (the built-in ones first)."""
    return list(_BACKENDS)


def _torch_step(identity: nn.Module, x: torch.Tensor, out: torch.Tensor) -> bool:
    """An empty module call and the exit rule's arithmetic, as one step of early-exit inference
    in torch pays them."""
    identity(x)
    survive = 1.0 - torch.sigmoid(out[:, -1])
    return bool(((1.0 - survive) >= 0.5).any())


def _numpy_step(session: Any, feed: dict, confidence: np.ndarray) -> bool:
    """An empty ``session.run`` and the exit rule's arithmetic in numpy."""
    session.run(None, feed)
    survive = np.float32(1.0) - confidence
    return bool(((np.float32(1.0) - survive) >= 0.5).any())


def _torch_setup(out: torch.Tensor) -> torch.Tensor:
    """The fixed work of one early-exit inference call in torch: the output buffers, the
    thresholds, gathering the predictions."""
    n = out.shape[0]
    predictions = torch.empty(n, dtype=torch.long)
    exits = torch.full((n,), 1, dtype=torch.long)
    remaining = torch.arange(n)
    torch.as_tensor([0.5], dtype=torch.float32).tolist()
    predictions[remaining] = out[:, :-1].argmax(dim=1)
    exits[remaining] = 0
    return predictions


def _numpy_setup(x: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """The fixed work of one early-exit inference call in numpy (see :func:`_torch_setup`)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    n = x.shape[0]
    out = np.zeros((n, logits.shape[1]), dtype=np.float32)
    exits = np.full(n, 1, dtype=np.int64)
    remaining = np.arange(n)
    out[remaining] = logits
    exits[remaining] = 0
    return out.argmax(axis=1)


register_latency_backend(TorchBackend())
register_latency_backend(OnnxRuntimeBackend())
