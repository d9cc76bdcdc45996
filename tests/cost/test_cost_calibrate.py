"""Latency tables calibrated on whole networks: the fit, the timing of deployed networks, and
the calibrated table."""

from __future__ import annotations

import random

import numpy as np
import pytest

from optuna_nachos.config import EENNConfig
from optuna_nachos.cost import (
    CALL_TERM,
    FIXED_TERM,
    LatencyTable,
    calibrate_latency,
    exit_block_counts,
    exit_latency,
    fit_term_latencies,
    measure_exit_latency,
    profile_latency,
    random_table_configs,
)

pytest.importorskip("onnxruntime")

RESOLUTION = 16


@pytest.fixture(scope="module")
def table() -> LatencyTable:
    return profile_latency(
        resolutions=(RESOLUTION,),
        kernel_sizes=(3, 5),
        expand_ratios=(3,),
        num_classes=4,
        batch_sizes=(1, 2),
        warmup=1,
        repeats=3,
        clock="thread",
    )


def _paths(rng: random.Random, terms: list[str], count: int) -> list[dict[str, int]]:
    return [{t: rng.randint(1, 3) for t in rng.sample(terms, 4)} for _ in range(count)]


def test_fit_recovers_the_latencies_that_made_the_measurements():
    rng = random.Random(0)
    terms = [f"block{i}" for i in range(8)]
    truth = {t: rng.uniform(0.1, 2.0) for t in terms}
    paths = _paths(rng, terms, 60)
    measured = [sum(c * truth[t] for t, c in p.items()) for p in paths]
    alone = {t: v * rng.uniform(0.4, 0.9) for t, v in truth.items()}  # blocks timed alone
    fitted, scale = fit_term_latencies(paths, measured, alone, regularization=1e-8)
    assert fitted == pytest.approx(truth, rel=1e-4)
    assert 1.1 < scale < 2.5  # the alone latencies are 0.4-0.9 of the truth


def test_fit_keeps_unexercised_terms_at_their_scaled_prior():
    paths = [{"a": 1, "b": 1}, {"a": 2, "b": 1}, {"a": 1, "b": 3}]
    measured = [2.0 * (p["a"] * 1.0 + p["b"] * 0.5) for p in paths]
    fitted, scale = fit_term_latencies(
        paths, measured, {"a": 1.0, "b": 0.5, "unused": 0.3}, regularization=0.05
    )
    assert scale == pytest.approx(2.0)
    assert fitted == pytest.approx({"a": 2.0, "b": 1.0, "unused": 0.6})


def test_fit_errors_name_the_problem():
    paths = [{"a": 1}]
    with pytest.raises(ValueError, match="one measurement per path"):
        fit_term_latencies(paths, [1.0, 2.0], {"a": 1.0})
    with pytest.raises(ValueError, match="positive"):
        fit_term_latencies(paths, [0.0], {"a": 1.0})
    with pytest.raises(ValueError, match="regularization"):
        fit_term_latencies(paths, [1.0], {"a": 1.0}, regularization=0.0)
    with pytest.raises(ValueError, match="no prior latency for the terms \\['b'\\]"):
        fit_term_latencies([{"b": 1}], [1.0], {"a": 1.0})


def test_exit_latency_is_the_counts_times_the_table(table):
    config = EENNConfig(
        depths=(2, 3, 2, 4, 2),
        kernel_sizes=((3, 5), (5, 5, 3), (3, 3), (5, 3, 3, 5), (3, 3)),
        expand_ratios=((3, 3), (3, 3, 3), (3, 3), (3, 3, 3, 3), (3, 3)),
        exit_stages=(1, 3),
        resolution=RESOLUTION,
    )
    counts = exit_block_counts(config, num_classes=4, in_channels=3)
    assert [c[CALL_TERM] for c in counts] == [1, 2, 3]
    assert all(c[FIXED_TERM] == 1 for c in counts)
    for backend in ("torch", "onnxruntime"):
        expected = [
            sum(n * table.term_ms(t, backend=backend, batch_size=2) for t, n in c.items())
            for c in counts
        ]
        assert exit_latency(config, table, backend=backend, batch_size=2) == pytest.approx(expected)


def test_random_configs_come_from_the_tables_choices(table):
    configs = random_table_configs(table, 12, seed=3)
    assert len(configs) == 12 and configs == random_table_configs(table, 12, seed=3)
    for config in configs:
        assert config.resolution == RESOLUTION and config.exit_stages
        assert {k for stage in config.kernel_sizes for k in stage} <= {3, 5}
        assert {e for stage in config.expand_ratios for e in stage} == {3}
        exit_latency(config, table)  # every block is in the table
    with pytest.raises(ValueError, match="positive integer"):
        random_table_configs(table, 0)
    bare = LatencyTable(blocks=table.blocks, overhead=table.overhead, num_classes=4, in_channels=3)
    with pytest.raises(ValueError, match="profile it again"):
        random_table_configs(bare, 1)


def test_measure_exit_latency_times_every_exit_of_every_network(table):
    configs = random_table_configs(table, 2, seed=1)
    times = measure_exit_latency(configs, num_classes=4, batch_size=2, warmup=0, rounds=3)
    assert set(times) == {"torch", "onnxruntime"}
    for networks in times.values():
        assert [len(n) for n in networks] == [len(c.exit_stages) + 1 for c in configs]
        assert all(len(runs) == 3 and min(runs) > 0 for n in networks for runs in n)


def test_calibrated_table_fits_its_networks_at_least_as_well_and_round_trips(table, tmp_path):
    calibrated = calibrate_latency(table, networks=6, rounds=3, warmup=1, seed=2)
    assert table.calibration == {}  # the input is left alone
    record = calibrated.calibration
    assert record["networks"] == 6 and record["rounds"] == 3 and record["seed"] == 2
    assert record["alone"]["blocks_ms"] == {
        k: {b: dict(v) for b, v in per.items()} for k, per in table.blocks.items()
    }
    for backend in ("torch", "onnxruntime"):
        for size in ("1", "2"):
            fit = record["fit"][backend][size]
            assert fit["paths"] == sum(
                len(c.exit_stages) + 1 for c in random_table_configs(table, 6, seed=2)
            )
            # The ridge's pull is zero at the common scale, so the fit can only do better.
            assert fit["rms_relative_error_calibrated"] <= fit["rms_relative_error_alone"] + 1e-9
    assert calibrated.blocks.keys() == table.blocks.keys()
    assert calibrated.blocks != table.blocks
    assert all(
        v >= 0 for per in calibrated.blocks.values() for b in per.values() for v in b.values()
    )
    loaded = LatencyTable.load(calibrated.save(tmp_path / "lut.json"))
    assert loaded.calibration == calibrated.calibration
    config = random_table_configs(table, 1, seed=9)[0]
    assert exit_latency(config, loaded) == pytest.approx(exit_latency(config, calibrated))
    with pytest.raises(ValueError, match="calibrated already"):
        calibrate_latency(calibrated, networks=1)
    with pytest.raises(ValueError, match="networks must be a positive integer"):
        calibrate_latency(table, networks=0)
    assert np.isfinite(record["fit"]["torch"]["1"]["scale"])
