"""Latency lookup tables: profiling, the per-exit sums, the table's file and its errors."""

from __future__ import annotations

import json
import math
import random
import time

import pytest

from optuna_nachos.config import EENNConfig
from optuna_nachos.cost import (
    LatencyTable,
    block_path,
    exit_latency,
    exit_pools_analytic,
    profile_latency,
    space_blocks,
)
from optuna_nachos.models import build_eenn

RESOLUTION = 16
KERNELS = (3, 5)
EXPANDS = (3, 4)


def _config(rng: random.Random, *, exit_stages=None) -> EENNConfig:
    depths = [rng.randint(2, 4) for _ in range(5)]
    if exit_stages is None:
        exit_stages = tuple(s for s in (1, 2, 3, 4) if rng.random() < 0.5) or (rng.randint(1, 4),)
    return EENNConfig(
        depths=depths,
        kernel_sizes=[[rng.choice(KERNELS) for _ in range(d)] for d in depths],
        expand_ratios=[[rng.choice(EXPANDS) for _ in range(d)] for d in depths],
        exit_stages=exit_stages,
        resolution=RESOLUTION,
    )


@pytest.fixture(scope="module")
def table() -> LatencyTable:
    return profile_latency(
        resolutions=(RESOLUTION,),
        kernel_sizes=KERNELS,
        expand_ratios=EXPANDS,
        num_classes=10,
        batch_sizes=(1, 2),
        warmup=1,
        repeats=3,
    )


def test_profile_runs_in_seconds_and_records_method_and_device():
    started = time.perf_counter()
    table = profile_latency(
        resolutions=(RESOLUTION,),
        kernel_sizes=(3,),
        expand_ratios=(3,),
        num_classes=10,
        batch_sizes=(1, 4),
        warmup=1,
        repeats=3,
        threads=1,
        clock="thread",
    )
    elapsed = time.perf_counter() - started
    assert elapsed < 60, f"profiling a tiny space took {elapsed:.1f} s"
    blocks = space_blocks(
        resolutions=(RESOLUTION,), kernel_sizes=(3,), expand_ratios=(3,), num_classes=10
    )
    assert set(table.blocks) == set(blocks)
    assert table.backends == ("torch", "onnxruntime")
    assert table.batch_sizes == (1, 4)
    for per in table.blocks.values():
        for backend in table.backends:
            for batch in ("1", "4"):
                value = per[backend][batch]
                assert math.isfinite(value) and value >= 0.0
    for backend in table.backends:
        assert table.call_ms(backend=backend, batch_size=1) > 0
        assert table.fixed_ms(backend=backend, batch_size=4) > 0
    assert table.method["repeats"] == 3 and table.method["threads"] == 1
    assert table.method["clock"] == "thread"
    assert "median" in table.method["statistic"]
    assert table.device["torch"] and table.device["onnxruntime"]
    assert table.device["cpu_count"] >= 1


def test_space_blocks_cover_every_network_of_the_space(table):
    rng = random.Random(0)
    for _ in range(20):
        config = _config(rng)
        path = block_path(config, num_classes=10)
        assert len(path.segments) == 5
        assert sum(len(keys) for keys in path.segments) == sum(config.depths) + 1  # + stem
        assert path.exit_positions == tuple(s - 1 for s in config.exit_stages)
        keys = [k for keys in path.segments for k in keys] + list(path.heads) + [path.final]
        assert all(k in table.blocks for k in keys)
        # The heads carry the pools build_eenn chooses.
        pools = exit_pools_analytic(config, num_classes=10)
        assert pools == list(build_eenn(config, num_classes=10).exit_pools)
        assert [int(h.split(":p")[1].split(":")[0]) for h in path.heads] == pools


def _synthetic(keys, *, call: float, fixed: float) -> LatencyTable:
    values = {k: float(i + 1) for i, k in enumerate(sorted(keys))}
    return LatencyTable(
        blocks={k: {"torch": {"1": v}} for k, v in values.items()},
        overhead={"torch": {"1": call}},
        num_classes=10,
        in_channels=3,
        fixed={"torch": {"1": fixed}},
    )


def test_exit_latency_sums_the_table_with_the_exit_macs_conventions():
    rng = random.Random(1)
    keys = space_blocks(
        resolutions=(RESOLUTION,), kernel_sizes=KERNELS, expand_ratios=EXPANDS, num_classes=10
    )
    table = _synthetic(keys, call=0.5, fixed=0.25)

    def ms(key):
        return table.blocks[key]["torch"]["1"]

    for _ in range(10):
        config = _config(rng, exit_stages=(1, 3, 4))
        path = block_path(config, num_classes=10)
        stage_ms = [sum(ms(k) for k in keys) for keys in path.segments]
        heads = [ms(k) for k in path.heads]
        # Blocks on the path, one step per segment run, the fixed cost of the call once.
        expected = [
            sum(stage_ms[:1]) + heads[0] + 1 * 0.5 + 0.25,
            sum(stage_ms[:3]) + heads[0] + heads[1] + 2 * 0.5 + 0.25,
            sum(stage_ms[:4]) + sum(heads) + 3 * 0.5 + 0.25,
            sum(stage_ms) + sum(heads) + ms(path.final) + 4 * 0.5 + 0.25,
        ]
        got = exit_latency(config, table, backend="torch")
        assert got == pytest.approx(expected)
        reference = exit_latency(config, table, backend="torch", convention="reference")
        # The reference convention leaves out the heads a sample passed, as exit_macs does.
        assert reference == pytest.approx(
            [
                expected[0],
                expected[1] - heads[0],
                expected[2] - heads[0] - heads[1],
                expected[3] - sum(heads),
            ]
        )


def test_measured_table_predicts_increasing_exits(table):
    config = _config(random.Random(2), exit_stages=(1, 2, 4))
    for backend in ("torch", "onnxruntime"):
        for batch in (1, 2):
            costs = exit_latency(config, table, backend=backend, batch_size=batch)
            assert len(costs) == config.num_exits
            assert all(c > 0 for c in costs)
            # Each exit's path contains the previous exit's path (the nachos convention).
            assert costs == sorted(costs)


def test_table_round_trips_through_json(tmp_path, table):
    path = table.save(tmp_path / "sub" / "lut.json")
    data = json.loads(path.read_text())
    assert data["format"] == 1 and data["num_classes"] == 10
    loaded = LatencyTable.load(path)
    assert loaded == table
    config = _config(random.Random(3))
    assert exit_latency(config, loaded) == exit_latency(config, table)


def test_errors_are_clear(tmp_path, table):
    config = _config(random.Random(4))
    with pytest.raises(ValueError, match="unknown latency back end"):
        exit_latency(config, table, backend="tensorrt")
    with pytest.raises(ValueError, match="batch size 8"):
        exit_latency(config, table, batch_size=8)
    other = EENNConfig(
        depths=(2,) * 5,
        kernel_sizes=((7, 7),) * 5,
        expand_ratios=((6, 6),) * 5,
        exit_stages=(2,),
        resolution=RESOLUTION,
    )
    with pytest.raises(KeyError, match="not in the latency table"):
        exit_latency(other, table)
    with pytest.raises(TypeError, match="LatencyTable"):
        exit_latency(config, {"blocks": {}})
    with pytest.raises(FileNotFoundError, match="latency profile"):
        LatencyTable.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text('{"x": 1}')
    with pytest.raises(ValueError, match="not a latency table"):
        LatencyTable.load(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="batch_sizes"):
        profile_latency(batch_sizes=(1, 1))
    with pytest.raises(ValueError, match="back end"):
        profile_latency(backends=("cuda",))
    with pytest.raises(ValueError, match="unknown clock"):
        profile_latency(clock="cpu")
