"""Latency tables calibrated on whole networks: block latencies as they are inside a network.

A block timed alone does not cost what it costs inside a network (other caches, other memory
traffic, a runtime's per-graph work), and the gap is not a constant factor. The calibration
times whole networks of the space as they are deployed (PyTorch ``predict`` and the ONNX
segment chain, every exit forced in turn), in rounds interleaved over all networks, and fits
one latency per table term to those measurements: least squares on relative errors, with a
ridge that pulls every term towards its latency measured alone times one common scale (terms
that the networks do not exercise keep that scaled value).
"""

from __future__ import annotations

import dataclasses
import random
import statistics
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from optuna_nachos.config import EENNConfig
from optuna_nachos.cost._backends import get_latency_backend, list_latency_backends
from optuna_nachos.cost._latency import (
    CALL_TERM,
    FIXED_TERM,
    LatencyTable,
    exit_block_counts,
    round_robin_times,
)
from optuna_nachos.models import build_eenn

_PRIOR_FLOOR_MS = 1e-3
"""Smallest latency a term's prior may have (a block measured at zero after subtracting the
bare call would otherwise have no scale)."""


def random_table_configs(
    table: LatencyTable, count: int, *, seed: int = 0, depths: Sequence[int] = (2, 3, 4)
) -> list[EENNConfig]:
    """``count`` random configurations whose blocks the table holds.

    Kernels, expand ratios, exit stages, exit heads and resolutions are drawn uniformly from
    the choices the table was profiled with (its ``method``), depths from ``depths``; each
    configuration has at least one early exit.

    Raises:
        ValueError: If the table does not record its choices, or ``count`` is not positive.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a positive integer, got {count!r}.")
    method = table.method
    names = ("resolutions", "kernel_sizes", "expand_ratios", "exit_heads", "exit_stages")
    missing = [name for name in names if not method.get(name)]
    if missing:
        raise ValueError(
            f"the latency table does not record its {', '.join(missing)}; profile it again "
            f"with 'optuna-nachos latency profile'."
        )
    rng = random.Random(seed)
    configs = []
    for _ in range(count):
        layers = [rng.choice(tuple(depths)) for _ in range(5)]
        stages = tuple(s for s in method["exit_stages"] if rng.random() < 0.5)
        configs.append(
            EENNConfig(
                depths=layers,
                kernel_sizes=[
                    [rng.choice(method["kernel_sizes"]) for _ in range(d)] for d in layers
                ],
                expand_ratios=[
                    [rng.choice(method["expand_ratios"]) for _ in range(d)] for d in layers
                ],
                exit_stages=stages or (rng.choice(method["exit_stages"]),),
                resolution=rng.choice(method["resolutions"]),
                exit_head=rng.choice(method["exit_heads"]),
            )
        )
    return configs


def _forced_thresholds(num_early: int, exit_index: int) -> list[float]:
    """Thresholds that send every sample to ``exit_index`` (0 takes an exit, 1 disables it)."""
    return [0.0 if j == exit_index else 1.0 for j in range(num_early)]


def measure_exit_latency(
    configs: Sequence[EENNConfig],
    *,
    num_classes: int,
    in_channels: int = 3,
    backends: Sequence[str] | None = None,
    batch_size: int = 1,
    warmup: int = 2,
    rounds: int = 10,
    threads: int = 1,
    clock: str = "wall",
    seed: int = 0,
) -> dict[str, list[list[list[float]]]]:
    """Time every exit of every network as deployed, in rounds interleaved over all of them.

    Each network is built with random weights in eval mode and run as each back end deploys it
    (:meth:`LatencyBackend.network_call`: ``"torch"`` runs
    :meth:`~optuna_nachos.models.EarlyExitNetwork.predict`, ``"onnxruntime"`` the exported
    segment chain, :class:`~optuna_nachos.deploy.OnnxEENN`), with thresholds that send the
    whole batch to the exit being timed. A round calls every (network, exit, back end) once, so
    a slow spell of a shared machine falls on all of them alike.

    Args:
        configs: The networks.
        num_classes: Classes of their classifiers.
        in_channels: Channels of their inputs.
        backends: Names of the back ends to time; all registered by default.
        batch_size: Images per call.
        warmup: Untimed rounds.
        rounds: Timed rounds.
        threads: CPU threads of both back ends.
        clock: ``"wall"`` or ``"thread"`` (see :data:`~optuna_nachos.cost.CLOCKS`).
        seed: Seed of the weights and inputs.

    Returns:
        ``times[backend][network][exit]``: the times of the timed rounds in ms.
    """
    backends = tuple(list_latency_backends() if backends is None else backends)
    runtimes = [get_latency_backend(backend) for backend in backends]
    for runtime in runtimes:
        runtime.require()
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    runs: list[Callable[[], Any]] = []
    places: list[tuple[str, int, int]] = []
    try:
        with tempfile.TemporaryDirectory() as folder, torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for index, config in enumerate(configs):
                model = build_eenn(config, num_classes=num_classes, in_channels=in_channels)
                model.eval()
                early = model.num_exits - 1
                x = torch.randn(batch_size, in_channels, config.resolution, config.resolution)
                prepared = [
                    runtime.prepare_network(
                        model, folder=f"{folder}/{runtime.name}-{index}", threads=threads
                    )
                    for runtime in runtimes
                ]
                for exit_index in range(model.num_exits):
                    eps = _forced_thresholds(early, exit_index)
                    for runtime, ready in zip(runtimes, prepared):
                        runs.append(runtime.network_call(ready, x, eps))
                        places.append((runtime.name, index, exit_index))
            with torch.inference_mode():
                times = round_robin_times(runs, warmup=warmup, repeats=rounds, clock=clock)
    finally:
        torch.set_num_threads(previous)
    out: dict[str, list[list[list[float]]]] = {b: [[] for _ in configs] for b in backends}
    for (backend, index, _), own in zip(places, times):
        out[backend][index].append(own)
    return out


def fit_term_latencies(
    counts: Sequence[dict[str, int]],
    measured_ms: Sequence[float],
    prior_ms: dict[str, float],
    *,
    regularization: float = 0.05,
) -> tuple[dict[str, float], float]:
    """Per-term latencies that best explain measured latencies of whole paths.

    Minimizes ``sum_i ((sum_t c_it x_t - m_i) / m_i)^2 + regularization * sum_t ((x_t - s p_t)
    / p_t)^2`` over ``x >= 0``, where ``c_it`` counts term ``t`` on path ``i``, ``m_i`` is the
    path's measured latency, ``p_t`` the term's prior (its latency measured alone) and ``s``
    the one scale that best fits the priors to the measurements.

    Args:
        counts: Terms of each measured path (:func:`~optuna_nachos.cost.exit_block_counts`).
        measured_ms: The measured latency of each path.
        prior_ms: Every term's prior latency; terms absent from ``counts`` keep ``s`` times it.
        regularization: Weight of the pull towards the scaled priors (``> 0``).

    Returns:
        The fitted latency of every term of ``prior_ms``, and the scale ``s``.

    Raises:
        ValueError: On mismatched lengths, a non-positive measurement or regularization, or a
            term without a prior.
    """
    if len(counts) != len(measured_ms) or not counts:
        raise ValueError(
            f"expected one measurement per path, got {len(counts)} paths and "
            f"{len(measured_ms)} measurements."
        )
    if not regularization > 0:
        raise ValueError(f"regularization must be positive, got {regularization!r}.")
    from scipy.optimize import lsq_linear  # not with the cost package: only the fit needs it

    measured = np.asarray(measured_ms, dtype=float)
    if not np.all(measured > 0):
        raise ValueError("every measured latency must be positive.")
    terms = list(prior_ms)
    column = {term: j for j, term in enumerate(terms)}
    unknown = {term for path in counts for term in path} - set(column)
    if unknown:
        raise ValueError(f"no prior latency for the terms {sorted(unknown)}.")
    prior = np.maximum(np.array([prior_ms[t] for t in terms], dtype=float), _PRIOR_FLOOR_MS)
    design = np.zeros((len(counts), len(terms)))
    for row, path in enumerate(counts):
        for term, count in path.items():
            design[row, column[term]] = count
    # Unknowns z = x / p: relative rows (divided by the measurement), so the loss is the
    # squared relative error of every path.
    relative = design * prior / measured[:, None]
    predicted = relative.sum(axis=1)
    scale = float(predicted.sum() / (predicted @ predicted))
    ridge = np.sqrt(regularization) * np.eye(len(terms))
    solution = lsq_linear(
        np.vstack([relative, ridge]),
        np.concatenate(
            [np.ones(len(counts)), np.sqrt(regularization) * scale * np.ones(len(terms))]
        ),
        bounds=(0.0, np.inf),
    )
    fitted = prior * solution.x
    return {term: float(value) for term, value in zip(terms, fitted)}, scale


def _relative_errors(
    counts: Sequence[dict[str, int]], measured: Sequence[float], latency: dict[str, float]
) -> np.ndarray:
    predicted = np.array([sum(c * latency[t] for t, c in path.items()) for path in counts])
    return np.abs(predicted - np.asarray(measured)) / np.asarray(measured)


def calibrate_latency(
    table: LatencyTable,
    *,
    networks: int = 40,
    rounds: int = 10,
    warmup: int = 2,
    regularization: float = 0.05,
    depths: Sequence[int] = (2, 3, 4),
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> LatencyTable:
    """Fit a latency table to whole networks timed as deployed, on this machine.

    ``networks`` random configurations of the table's space are timed at every exit with
    :func:`measure_exit_latency` (every back end and batch size of the table, its threads and
    clock), then :func:`fit_term_latencies` gives every block, the segment step and the fixed
    work of a call the latency that best explains those measurements, starting from the
    table's own. The result predicts whole networks (:func:`~optuna_nachos.cost.exit_latency`)
    much better than blocks timed alone. Its ``calibration`` records the settings, the errors
    of the table before and after the fit on the calibration networks, and the latencies
    measured alone.

    Args:
        table: A table from :func:`~optuna_nachos.cost.profile_latency`, measured on this
            machine.
        networks: Random networks to time.
        rounds: Timed rounds over all of them; each path keeps its median.
        warmup: Untimed rounds.
        regularization: Weight of the pull towards the latencies measured alone.
        depths: Depth choices of the random networks.
        seed: Seed of the networks, their weights and inputs.
        progress: Called with a line of text before each phase.

    Returns:
        The calibrated table.

    Raises:
        ValueError: On an invalid setting, or a table that is calibrated already.
        ImportError: If the table has onnxruntime measurements and onnxruntime is missing.
    """
    for name, value in (("networks", networks), ("rounds", rounds), ("warmup", warmup)):
        if isinstance(value, bool) or not isinstance(value, int) or value < (name != "warmup"):
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    if table.calibration:
        raise ValueError(
            "the latency table is calibrated already; calibrate the table of blocks timed "
            "alone (profile again without calibration)."
        )
    configs = random_table_configs(table, networks, seed=seed, depths=depths)
    counts = [
        exit_block_counts(c, num_classes=table.num_classes, in_channels=table.in_channels)
        for c in configs
    ]
    paths = [path for network in counts for path in network]
    threads = int(table.method.get("threads", 1))
    clock = str(table.method.get("clock", "wall"))
    blocks = {key: {b: dict(v) for b, v in per.items()} for key, per in table.blocks.items()}
    overhead = {b: dict(v) for b, v in table.overhead.items()}
    fixed = {b: dict(v) for b, v in table.fixed.items()}
    fit: dict[str, dict[str, dict[str, float]]] = {b: {} for b in table.backends}
    for batch_size in table.batch_sizes:
        if progress is not None:
            progress(f"timing {networks} networks at batch size {batch_size}")
        times = measure_exit_latency(
            configs,
            num_classes=table.num_classes,
            in_channels=table.in_channels,
            backends=table.backends,
            batch_size=batch_size,
            warmup=warmup,
            rounds=rounds,
            threads=threads,
            clock=clock,
            seed=seed,
        )
        size = str(batch_size)
        for backend in table.backends:
            measured = [statistics.median(run) for network in times[backend] for run in network]
            prior = {
                term: table.term_ms(term, backend=backend, batch_size=batch_size)
                for term in (*table.blocks, CALL_TERM, FIXED_TERM)
            }
            fitted, scale = fit_term_latencies(
                paths, measured, prior, regularization=regularization
            )
            for key in table.blocks:
                blocks[key][backend][size] = fitted[key]
            overhead[backend][size] = fitted[CALL_TERM]
            fixed.setdefault(backend, {})[size] = fitted[FIXED_TERM]
            before = _relative_errors(paths, measured, prior)
            after = _relative_errors(paths, measured, fitted)
            fit[backend][size] = {
                "paths": len(paths),
                "scale": scale,
                "mape_alone": float(before.mean()),
                "mape_calibrated": float(after.mean()),
                "rms_relative_error_alone": float(np.sqrt(np.mean(before**2))),
                "rms_relative_error_calibrated": float(np.sqrt(np.mean(after**2))),
            }
    calibration = {
        "method": "whole networks as deployed (torch predict, the ONNX segment chain), every "
        "exit forced in turn, timed in rounds interleaved over all networks, median per exit; "
        "per-term latencies fitted by least squares on relative errors with a ridge towards "
        "the latencies measured alone times one common scale",
        "networks": networks,
        "rounds": rounds,
        "warmup": warmup,
        "regularization": regularization,
        "depths": list(depths),
        "seed": seed,
        "fit": fit,
        "alone": {
            key: value
            for key, value in table.to_dict().items()
            if key in ("overhead_ms", "fixed_ms", "blocks_ms")
        },
    }
    return dataclasses.replace(
        table, blocks=blocks, overhead=overhead, fixed=fixed, calibration=calibration
    )
