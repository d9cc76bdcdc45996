"""Latency lookup tables: per-block latencies measured on a device, and per-exit latencies.

The network of a configuration is a chain of distinct blocks: the stem, the MBConv layers of
each stage (one block per input channels, output channels, kernel, expand ratio, stride and
input side), the exit heads (per design, input shape and max-pool) and the final classifier.
:func:`profile_latency` measures every block a search space can contain, once, on the machine
it runs on; :func:`exit_latency` then predicts what a sample leaving at each exit costs by
adding up the blocks on its path, exactly as :func:`~optuna_nachos.cost.exit_macs` adds MACs.

Method of a measurement: all blocks are built and, per back end and batch size, timed in
rounds: ``warmup`` untimed rounds, then ``repeats`` rounds that run every block once, each run
timed on its own with :func:`time.perf_counter_ns` (round robin, so that a block runs with the
other blocks' weights in the caches, as inside a network, not hot from its own previous run).
A block's latency is its median minus the median of a bare call of the same back end (a module
call, or a ``session.run`` of a one-operator graph). A path then pays its blocks, one segment
step per segment it runs (a bare call and the exit rule's arithmetic; exit ``j`` of a deployed
chain runs ``j + 1`` segments) and, once, the fixed work of an inference call (output buffers,
gathering the predictions), all measured the same way.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from optuna_nachos.config import EENNConfig
from optuna_nachos.cost._analytic import analyze
from optuna_nachos.cost._backends import get_latency_backend, list_latency_backends
from optuna_nachos.cost._common import check_convention, check_counts
from optuna_nachos.models import (
    STAGES,
    STEM_CHANNELS,
    FinalClassifier,
    MBConv,
    build_stem,
    conv_output_side,
    get_exit_head,
)

CLOCKS = {"wall": time.perf_counter_ns, "thread": time.thread_time_ns}
"""Clocks of a measurement: wall time, or the CPU time of the calling thread (with one thread,
robust to other processes on a shared machine: time spent descheduled is not counted)."""


TABLE_FORMAT = 1
_STEM_SIDE_KERNEL, _STEM_SIDE_STRIDE = 3, 2


def _check_backend(backend: str) -> None:
    get_latency_backend(backend)  # a ValueError naming the registered ones


# --------------------------------------------------------------------------- block keys
def stem_key(in_channels: int, resolution: int) -> str:
    """Key of the stem (3x3 stride-2 convolution and the fixed first MBConv)."""
    return f"stem:c{in_channels}:r{resolution}"


def mbconv_key(
    in_ch: int, out_ch: int, *, kernel: int, expand: int, stride: int, stage: int, side: int
) -> str:
    """Key of one searchable MBConv layer of stage ``stage`` (0-based) on ``side`` inputs."""
    return f"mbconv:s{stage}:{in_ch}-{out_ch}:k{kernel}:e{expand}:st{stride}:r{side}"


def head_key(name: str, in_ch: int, side: int, num_classes: int, pool: int) -> str:
    """Key of an early-exit head of design ``name`` with its max-pool ``pool``."""
    return f"head:{name}:{in_ch}:r{side}:p{pool}:n{num_classes}"


def final_key(in_ch: int, side: int, num_classes: int) -> str:
    """Key of the final classifier."""
    return f"final:{in_ch}:r{side}:n{num_classes}"


class BlockPath(NamedTuple):
    """The blocks of one configuration's network, by table key.

    Attributes:
        segments: Keys of the blocks of each backbone segment (the stem belongs to segment 0).
        exit_positions: Segment index read by each early exit.
        heads: Key of each early-exit head, shallowest first.
        final: Key of the final classifier.
    """

    segments: tuple[tuple[str, ...], ...]
    exit_positions: tuple[int, ...]
    heads: tuple[str, ...]
    final: str


def block_path(config: EENNConfig, *, num_classes: int, in_channels: int = 3) -> BlockPath:
    """The table keys of every block of ``config``'s network.

    The head pools are those :func:`~optuna_nachos.build_eenn` chooses (the cost-monotone rule).

    Raises:
        TypeError: If ``config`` is not an :class:`~optuna_nachos.EENNConfig`.
        ValueError: On invalid counts or an exit head without a cost formula.
    """
    parts = analyze(config, num_classes=num_classes, in_channels=in_channels)
    side = conv_output_side(config.resolution, _STEM_SIDE_KERNEL, _STEM_SIDE_STRIDE)
    segments: list[tuple[str, ...]] = []
    sides: list[int] = []
    channels = STEM_CHANNELS
    for index, spec in enumerate(STAGES):
        keys = [stem_key(in_channels, config.resolution)] if index == 0 else []
        for layer, (kernel, expand) in enumerate(
            zip(config.kernel_sizes[index], config.expand_ratios[index])
        ):
            stride = spec.stride if layer == 0 else 1
            in_ch = channels if layer == 0 else spec.out_channels
            keys.append(
                mbconv_key(
                    in_ch,
                    spec.out_channels,
                    kernel=kernel,
                    expand=expand,
                    stride=stride,
                    stage=index,
                    side=side,
                )
            )
            side = conv_output_side(side, kernel, stride)
        segments.append(tuple(keys))
        sides.append(side)
        channels = spec.out_channels
    heads = tuple(
        head_key(config.exit_head, STAGES[p].out_channels, sides[p], num_classes, pool)
        for p, pool in zip(parts.exit_positions, parts.exit_pools)
    )
    return BlockPath(
        tuple(segments), parts.exit_positions, heads, final_key(channels, side, num_classes)
    )


# --------------------------------------------------------------------------- the table
@dataclass(frozen=True)
class LatencyTable:
    """Per-block latencies measured on one device, in milliseconds.

    Attributes:
        blocks: ``blocks[key][backend][batch_size]``: the block's median latency minus the
            empty call's, in ms (batch sizes are string keys, as in JSON).
        overhead: ``overhead[backend][batch_size]``: median latency of one segment step (a bare
            call and the exit rule's arithmetic), in ms.
        num_classes: Classes of the heads that were measured.
        in_channels: Input channels of the stem that was measured.
        method: How the numbers were measured (warm-up, repeats, statistic, threads, ...).
        device: The machine and the software versions.
        fixed: ``fixed[backend][batch_size]``: the fixed cost of one inference call in ms
            (allocating the outputs, gathering the predictions), paid once per batch.
        calibration: Empty for a table of blocks timed alone; for a table fitted to whole
            networks (:func:`~optuna_nachos.cost.calibrate_latency`), the settings, the fit's
            errors and the latencies measured alone.
    """

    blocks: Mapping[str, Mapping[str, Mapping[str, float]]]
    overhead: Mapping[str, Mapping[str, float]]
    num_classes: int
    in_channels: int
    method: Mapping[str, Any] = field(default_factory=dict)
    device: Mapping[str, Any] = field(default_factory=dict)
    fixed: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    calibration: Mapping[str, Any] = field(default_factory=dict)

    @property
    def backends(self) -> tuple[str, ...]:
        """Back ends with measurements."""
        return tuple(b for b in list_latency_backends() if b in self.overhead)

    @property
    def batch_sizes(self) -> tuple[int, ...]:
        """Batch sizes with measurements."""
        sizes = {int(b) for per in self.overhead.values() for b in per}
        return tuple(sorted(sizes))

    def _check(self, backend: str, batch_size: int) -> None:
        _check_backend(backend)
        if backend not in self.overhead:
            raise ValueError(
                f"the latency table has no {backend!r} measurements (it has {self.backends}); "
                f"profile again with that back end."
            )
        if str(batch_size) not in self.overhead[backend]:
            raise ValueError(
                f"the latency table has no measurements at batch size {batch_size} (it has "
                f"{self.batch_sizes}); profile again with --batch-sizes."
            )

    def block_ms(self, key: str, *, backend: str, batch_size: int = 1) -> float:
        """Latency of one block, in ms.

        Raises:
            KeyError: If the block was not profiled (another resolution, head or class count).
        """
        self._check(backend, batch_size)
        try:
            return float(self.blocks[key][backend][str(batch_size)])
        except KeyError:
            raise KeyError(
                f"block {key!r} is not in the latency table; profile the space again with the "
                f"resolutions, heads and class count of this network "
                f"(the table has {self.num_classes} classes, {self.in_channels} channels)."
            ) from None

    def call_ms(self, *, backend: str, batch_size: int = 1) -> float:
        """Fixed cost of one call (one segment run), in ms."""
        self._check(backend, batch_size)
        return float(self.overhead[backend][str(batch_size)])

    def fixed_ms(self, *, backend: str, batch_size: int = 1) -> float:
        """Fixed cost of one inference call, in ms (0 when the table has none)."""
        self._check(backend, batch_size)
        return float(self.fixed.get(backend, {}).get(str(batch_size), 0.0))

    def term_ms(self, term: str, *, backend: str, batch_size: int = 1) -> float:
        """Latency of one term of :func:`exit_block_counts`: a block key, :data:`CALL_TERM`
        or :data:`FIXED_TERM`, in ms."""
        if term == CALL_TERM:
            return self.call_ms(backend=backend, batch_size=batch_size)
        if term == FIXED_TERM:
            return self.fixed_ms(backend=backend, batch_size=batch_size)
        return self.block_ms(term, backend=backend, batch_size=batch_size)

    def to_dict(self) -> dict[str, Any]:
        """The table as plain JSON values."""
        return {
            "format": TABLE_FORMAT,
            "num_classes": self.num_classes,
            "in_channels": self.in_channels,
            "method": dict(self.method),
            "device": dict(self.device),
            "overhead_ms": {b: dict(v) for b, v in self.overhead.items()},
            "fixed_ms": {b: dict(v) for b, v in self.fixed.items()},
            "blocks_ms": {
                k: {b: dict(v) for b, v in per.items()} for k, per in sorted(self.blocks.items())
            },
            **({"calibration": dict(self.calibration)} if self.calibration else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LatencyTable:
        """Rebuild a table from :meth:`to_dict`'s output.

        Raises:
            ValueError: If ``data`` is not a latency table of a known format.
        """
        if not isinstance(data, Mapping) or "blocks_ms" not in data:
            raise ValueError("not a latency table: no 'blocks_ms' entry.")
        if data.get("format") != TABLE_FORMAT:
            raise ValueError(
                f"latency table format {data.get('format')!r} is not supported "
                f"(expected {TABLE_FORMAT}); profile again."
            )
        return cls(
            blocks={
                k: {b: {s: float(v) for s, v in per.items()} for b, per in by.items()}
                for k, by in data["blocks_ms"].items()
            },
            overhead={
                b: {s: float(v) for s, v in per.items()} for b, per in data["overhead_ms"].items()
            },
            num_classes=int(data["num_classes"]),
            in_channels=int(data["in_channels"]),
            method=dict(data.get("method", {})),
            device=dict(data.get("device", {})),
            fixed={
                b: {s: float(v) for s, v in per.items()}
                for b, per in data.get("fixed_ms", {}).items()
            },
            calibration=dict(data.get("calibration", {})),
        )

    def save(self, path: str | os.PathLike) -> Path:
        """Write the table as JSON; returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> LatencyTable:
        """Read a table written by :meth:`save`.

        Raises:
            FileNotFoundError: If there is no such file.
            ValueError: If the file is not a latency table.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"no latency table at {path}; write one with 'optuna-nachos latency profile'."
            )
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not JSON: {error}") from None
        return cls.from_dict(data)


CALL_TERM = "call"
"""Term of :func:`exit_block_counts` for one segment step (a bare call and the exit rule)."""

FIXED_TERM = "fixed"
"""Term of :func:`exit_block_counts` for the fixed work of one inference call."""


def exit_block_counts(
    config: EENNConfig,
    *,
    num_classes: int,
    in_channels: int = 3,
    convention: str = "nachos",
) -> list[dict[str, int]]:
    """What a batch leaving at each exit of ``config``'s network runs, as counts of table terms.

    Exit ``j`` runs the backbone blocks up to it and its head, plus (``"nachos"``) the heads of
    the earlier exits it passed; it pays :data:`CALL_TERM` once per segment of the deployed
    chain it runs (``j + 1``) and :data:`FIXED_TERM` once. :func:`exit_latency` is the sum of
    these counts times the table's latencies.

    Returns:
        One ``{term: count}`` per exit: early exits shallowest first, then the final exit.

    Raises:
        ValueError: On invalid counts, an exit head without a cost formula or an unknown
            convention.
    """
    check_convention(convention)
    path = block_path(config, num_classes=num_classes, in_channels=in_channels)
    backbone: dict[str, int] = {}
    prefixes: list[dict[str, int]] = []
    for keys in path.segments:
        for key in keys:
            backbone[key] = backbone.get(key, 0) + 1
        prefixes.append(dict(backbone))
    passed: dict[str, int] = {}
    out: list[dict[str, int]] = []
    for index, (position, head) in enumerate(zip(path.exit_positions, path.heads)):
        out.append(_with_terms(prefixes[position], passed, head, calls=index + 1))
        if convention == "nachos":
            passed[head] = passed.get(head, 0) + 1
    out.append(_with_terms(prefixes[-1], passed, path.final, calls=len(path.heads) + 1))
    return out


def _with_terms(
    backbone: Mapping[str, int], passed: Mapping[str, int], last: str, *, calls: int
) -> dict[str, int]:
    counts = dict(backbone)
    for key, count in passed.items():
        counts[key] = counts.get(key, 0) + count
    counts[last] = counts.get(last, 0) + 1
    counts[CALL_TERM] = calls
    counts[FIXED_TERM] = 1
    return counts


def exit_latency(
    config: EENNConfig,
    table: LatencyTable,
    *,
    backend: str = "onnxruntime",
    batch_size: int = 1,
    convention: str = "nachos",
) -> list[float]:
    """Predicted latency, in ms, of a batch that leaves at each exit of ``config``'s network.

    The conventions are those of :func:`~optuna_nachos.cost.exit_macs`: exit ``j`` pays the
    backbone up to it and its head, plus (``"nachos"``) the heads of the earlier exits it
    passed; it also pays one call per segment of the deployed chain that it runs (``j + 1``)
    and, once, the fixed work of an inference call (see :func:`exit_block_counts`).

    Args:
        config: The network.
        table: The latency table of the target device (its class and channel counts are the
            network's).
        backend: ``"onnxruntime"`` (default, the deployment runtime) or ``"torch"``.
        batch_size: Batch size of the measurements to use.
        convention: ``"nachos"`` (count the passed heads) or ``"reference"``.

    Returns:
        One latency per exit: early exits shallowest first, then the final exit.

    Raises:
        KeyError: If a block of the network is missing from the table.
        ValueError: On an unknown back end, batch size or convention.
    """
    if not isinstance(table, LatencyTable):
        raise TypeError(f"table must be a LatencyTable, got {type(table).__name__}.")
    counts = exit_block_counts(
        config,
        num_classes=table.num_classes,
        in_channels=table.in_channels,
        convention=convention,
    )

    def ms(term: str) -> float:
        return table.term_ms(term, backend=backend, batch_size=batch_size)

    return [sum(count * ms(term) for term, count in exit_counts.items()) for exit_counts in counts]


# --------------------------------------------------------------------------- profiling
class _Block(NamedTuple):
    build: Callable[[], nn.Module]
    shape: tuple[int, int, int]


def space_blocks(
    *,
    resolutions: Sequence[int] = (32,),
    kernel_sizes: Sequence[int] = (3, 5, 7),
    expand_ratios: Sequence[int] = (3, 4, 6),
    exit_heads: Sequence[str] = ("nachos",),
    exit_stages: Sequence[int] = (1, 2, 3, 4),
    num_classes: int = 10,
    in_channels: int = 3,
) -> dict[str, tuple[Callable[[], nn.Module], tuple[int, int, int]]]:
    """Every distinct block of a MobileNetV3 space, with a builder and its input shape.

    Returns:
        ``{key: (build, (channels, height, width))}``, ``build()`` making a fresh module.
    """
    check_counts(num_classes, in_channels)
    blocks: dict[str, _Block] = {}
    for resolution in resolutions:
        blocks[stem_key(in_channels, resolution)] = _Block(
            lambda c=in_channels: build_stem(c), (in_channels, resolution, resolution)
        )
        side = conv_output_side(resolution, _STEM_SIDE_KERNEL, _STEM_SIDE_STRIDE)
        channels = STEM_CHANNELS
        for index, spec in enumerate(STAGES):
            first_sides = {}
            for first in (True, False):
                in_ch = channels if first else spec.out_channels
                stride = spec.stride if first else 1
                for kernel in kernel_sizes:
                    layer_side = side if first else first_sides[kernel]
                    out_side = conv_output_side(layer_side, kernel, stride)
                    if first:
                        first_sides[kernel] = out_side
                    for expand in expand_ratios:
                        key = mbconv_key(
                            in_ch,
                            spec.out_channels,
                            kernel=kernel,
                            expand=expand,
                            stride=stride,
                            stage=index,
                            side=layer_side,
                        )
                        blocks[key] = _Block(
                            lambda i=in_ch, o=spec.out_channels, k=kernel, e=expand, s=stride,
                            a=spec.activation, se=spec.use_se: MBConv(
                                i, o, kernel_size=k, stride=s, expand_ratio=e, activation=a,
                                use_se=se,
                            ),
                            (in_ch, layer_side, layer_side),
                        )  # fmt: skip
            # Padding k // 2 keeps the side independent of the kernel.
            side = next(iter(first_sides.values()))
            channels = spec.out_channels
            if index + 1 in exit_stages:
                for name in exit_heads:
                    head = get_exit_head(name)
                    usable = [p for p in head.pool_sizes if p <= side] or [1]
                    for pool in usable:
                        blocks[head_key(name, channels, side, num_classes, pool)] = _Block(
                            lambda f=head.factory, c=channels, s=side, p=pool: f(
                                c, (s, s), num_classes, pool=p
                            ),
                            (channels, side, side),
                        )
        blocks[final_key(channels, side, num_classes)] = _Block(
            lambda c=channels: FinalClassifier(c, num_classes), (channels, side, side)
        )
    return {key: (block.build, block.shape) for key, block in blocks.items()}


def median_ms(run: Callable[[], Any], *, warmup: int, repeats: int, clock: str = "wall") -> float:
    """Median time of ``run()`` in ms: ``warmup`` untimed calls, then ``repeats`` timed one by
    one with the clock ``clock`` (see :data:`CLOCKS`)."""
    now = _clock(clock)
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = now()
        run()
        times.append(now() - start)
    return statistics.median(times) / 1e6


def _clock(name: str) -> Callable[[], int]:
    try:
        return CLOCKS[name]
    except KeyError:
        raise ValueError(f"unknown clock {name!r}; expected one of {tuple(CLOCKS)}.") from None


def round_robin_times(
    runs: Sequence[Callable[[], Any]], *, warmup: int, repeats: int, clock: str = "wall"
) -> list[list[float]]:
    """Time each of ``runs`` in rounds that call every run once, in ms.

    ``warmup`` untimed rounds come first. Interleaving keeps a run from running hot from its
    own previous call, and spreads a slow spell of a shared machine over all runs instead of
    charging it to whichever run was being timed.

    Returns:
        ``times[i][r]``: the time of run ``i`` in timed round ``r``.
    """
    now = _clock(clock)
    for _ in range(warmup):
        for run in runs:
            run()
    times: list[list[float]] = [[] for _ in runs]
    for _ in range(repeats):
        for run, own in zip(runs, times):
            start = now()
            run()
            own.append((now() - start) / 1e6)
    return times


def _round_robin_ms(
    runs: Sequence[Callable[[], Any]], *, warmup: int, repeats: int, clock: str = "wall"
) -> list[float]:
    """Median time in ms of each of ``runs``, timed in rounds that call each run once."""
    times = round_robin_times(runs, warmup=warmup, repeats=repeats, clock=clock)
    return [statistics.median(own) for own in times]


def device_info(threads: int) -> dict[str, Any]:
    """The machine and software a measurement ran on."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "torch_threads": threads,
    }
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    if hasattr(os, "getloadavg"):
        info["load_average"] = [round(v, 2) for v in os.getloadavg()]
    for name in ("onnx", "onnxruntime"):
        try:
            module = __import__(name)
            info[name] = module.__version__
        except ImportError:
            info[name] = None
    return info


def profile_latency(
    *,
    resolutions: Sequence[int] = (32,),
    kernel_sizes: Sequence[int] = (3, 5, 7),
    expand_ratios: Sequence[int] = (3, 4, 6),
    exit_heads: Sequence[str] = ("nachos",),
    exit_stages: Sequence[int] = (1, 2, 3, 4),
    num_classes: int = 10,
    in_channels: int = 3,
    backends: Iterable[str] | None = None,
    batch_sizes: Sequence[int] = (1, 8),
    warmup: int = 10,
    repeats: int = 50,
    threads: int = 1,
    seed: int = 0,
    clock: str = "wall",
    progress: Callable[[int, int, str], None] | None = None,
) -> LatencyTable:
    """Measure every distinct block of a MobileNetV3 space on this machine.

    Each block is built with random weights in eval mode; for every back end and batch size
    all blocks are timed in round-robin rounds (``warmup`` untimed, ``repeats`` timed, each run
    timed alone); the table keeps a block's median minus the median of a bare call (see the
    module's description). onnxruntime runs
    the block exported to ONNX (opset 17, constant folding, all graph optimizations,
    ``threads`` intra-op threads, sequential execution); torch runs it eagerly under
    :func:`torch.inference_mode` with ``torch.set_num_threads(threads)``.

    Args:
        resolutions: Input resolutions of the space.
        kernel_sizes: Depthwise kernel choices.
        expand_ratios: Expand ratio choices.
        exit_heads: Exit head designs of the space.
        exit_stages: Stages that may carry an early exit.
        num_classes: Classes of the task.
        in_channels: Channels of the input images.
        backends: Names of the back ends to measure
            (:func:`~optuna_nachos.cost.list_latency_backends`); all registered by default.
        batch_sizes: Batch sizes to measure (1 and a second one by default).
        warmup: Untimed rounds before the timed ones.
        repeats: Timed rounds; the median is kept.
        threads: CPU threads of both back ends.
        seed: Seed of the random weights and inputs.
        clock: ``"wall"`` (default: wall time, for a device that runs nothing else) or
            ``"thread"`` (CPU time of the calling thread; with ``threads=1`` it does not count
            the time other processes take the CPU, for a shared machine).
        progress: Called as ``progress(done, total, key)`` after each block.

    Returns:
        The table, with the method and the device recorded.

    Raises:
        ValueError: On an invalid setting.
        ImportError: If onnxruntime is asked for and not installed.
    """
    _clock(clock)
    backends = tuple(list_latency_backends() if backends is None else backends)
    runtimes = [get_latency_backend(backend) for backend in backends]
    if not backends:
        raise ValueError("backends must name at least one back end.")
    for name, value in (("warmup", warmup), ("repeats", repeats), ("threads", threads)):
        if isinstance(value, bool) or not isinstance(value, int) or value < (name != "warmup"):
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    sizes = tuple(int(b) for b in batch_sizes)
    if not sizes or any(b < 1 for b in sizes) or len(set(sizes)) != len(sizes):
        raise ValueError(f"batch_sizes must be distinct positive integers, got {batch_sizes}.")
    if not resolutions or any(int(r) < 8 for r in resolutions):
        raise ValueError(f"resolutions must be integers of at least 8, got {resolutions}.")
    blocks = space_blocks(
        resolutions=[int(r) for r in resolutions],
        kernel_sizes=kernel_sizes,
        expand_ratios=expand_ratios,
        exit_heads=exit_heads,
        exit_stages=exit_stages,
        num_classes=num_classes,
        in_channels=in_channels,
    )
    for runtime in runtimes:
        runtime.require()
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    generator = torch.Generator().manual_seed(seed)
    keys = list(blocks)
    total = len(keys) + len(sizes) * len(backends)
    # runners[backend][batch]: one zero-argument call per block, after the three fixed calls.
    runners: dict[str, dict[int, list[Callable[[], Any]]]] = {
        b: {batch: [] for batch in sizes} for b in backends
    }
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for batch in sizes:
                x = torch.randn(batch, 16, 4, 4, generator=generator)
                out = torch.randn(batch, num_classes + 1, generator=generator)
                for runtime in runtimes:
                    runners[runtime.name][batch] += runtime.fixed_calls(x, out, threads=threads)
            for done, key in enumerate(keys, start=1):
                build, shape = blocks[key]
                module = build().eval()
                example = torch.randn(1, *shape, generator=generator)
                prepared = [
                    runtime.prepare_block(module, example, threads=threads) for runtime in runtimes
                ]
                for batch in sizes:
                    x = torch.randn(batch, *shape, generator=generator)
                    for runtime, ready in zip(runtimes, prepared):
                        runners[runtime.name][batch].append(runtime.block_call(ready, x))
                if progress is not None:
                    progress(done, total, f"built {key}")
            done = len(keys)
            times: dict[str, dict[int, list[float]]] = {}
            for backend in backends:
                times[backend] = {}
                for batch in sizes:
                    with torch.inference_mode():
                        times[backend][batch] = _round_robin_ms(
                            runners[backend][batch], warmup=warmup, repeats=repeats, clock=clock
                        )
                    done += 1
                    if progress is not None:
                        progress(done, total, f"timed {backend} at batch size {batch}")
    finally:
        torch.set_num_threads(previous_threads)
    # times[b][n]: bare call, call + exit rule (one segment step), fixed work, then the blocks.
    overhead = {b: {str(n): times[b][n][1] for n in sizes} for b in backends}
    fixed = {b: {str(n): times[b][n][2] for n in sizes} for b in backends}
    measured = {
        key: {
            b: {str(n): max(times[b][n][i + 3] - times[b][n][0], 0.0) for n in sizes}
            for b in backends
        }
        for i, key in enumerate(keys)
    }
    method = {
        "warmup": warmup,
        "repeats": repeats,
        "clock": clock,
        "statistic": f"median of single-run times ({clock} clock), minus the "
        "median of a bare call; one segment step (a bare call and the exit rule's "
        "arithmetic) per segment run and the fixed work of a call are measured apart",
        "order": "round robin: each round times every block once, so a block runs with the "
        "other blocks' weights in the caches, as inside a network",
        "batch_sizes": list(sizes),
        "threads": threads,
        "backends": list(backends),
        **{f"{runtime.name}_options": runtime.options(threads=threads) for runtime in runtimes},
        "resolutions": [int(r) for r in resolutions],
        "kernel_sizes": list(kernel_sizes),
        "expand_ratios": list(expand_ratios),
        "exit_heads": list(exit_heads),
        "exit_stages": list(exit_stages),
        "seed": seed,
        "measured_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    return LatencyTable(
        blocks=measured,
        overhead=overhead,
        num_classes=num_classes,
        in_channels=in_channels,
        method=method,
        device=device_info(threads),
        fixed=fixed,
    )
