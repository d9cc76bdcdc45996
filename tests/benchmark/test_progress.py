"""A benchmark says what it runs as it runs: each experiment, each trial, each finished part."""

from __future__ import annotations

import logging
from types import SimpleNamespace

from optuna_nachos._logging import LOGGER_NAME
from optuna_nachos.benchmark import _runner, load_suite

SUITE = """
description = "Two parts."
dataset = "digits"
resolution = 16
seeds = [0, 1]
max_avg_macs = 3_000_000
min_accuracy = 0.2

[[experiment]]
name = "search"
kind = "search"
part = "first"
sampler = "random"
n_trials = 2

[[experiment]]
name = "again"
kind = "search"
part = "second"
sampler = "random"
n_trials = 2
"""


def test_parts_and_trials_are_reported_as_they_run(tmp_path, monkeypatch, nachos_log):
    path = tmp_path / "two.toml"
    path.write_text(SUITE)
    suite = load_suite(str(path))
    events: list[str] = []

    def run_experiment(suite, experiment, seed, out_dir, *, timeout=None, callbacks=()):
        events.append(f"run {experiment.name}-seed{seed}")
        for callback in callbacks:
            callback("study", SimpleNamespace(number=seed))
        return "study"

    monkeypatch.setattr(_runner, "run_experiment", run_experiment)
    monkeypatch.setattr(_runner, "part_finished", lambda study, experiment: True)

    def trial_done(study, trial):
        events.append(f"trial {trial.number}")

    with nachos_log.at_level(logging.INFO, logger=LOGGER_NAME):
        status = _runner.run_parts(suite, tmp_path / "out", callbacks=[trial_done])
    assert status == {"first": True, "second": True}
    assert events == [
        "run search-seed0",
        "trial 0",
        "run search-seed1",
        "trial 1",
        "run again-seed0",
        "trial 0",
        "run again-seed1",
        "trial 1",
    ]
    lines = [r.getMessage() for r in nachos_log.records if r.name.startswith(LOGGER_NAME)]
    first_done = next(i for i, line in enumerate(lines) if line.startswith("Part first complete"))
    assert lines[: first_done + 1] == [
        "Part first: search-seed0",
        "Part first: search-seed1",
        lines[first_done],
    ]
    assert lines[first_done + 1] == "Part second: again-seed0"
    assert lines[-1].startswith("Part second complete after")
