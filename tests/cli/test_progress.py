"""What a search shows a person while it runs: each trial's phases and epochs, each finished
trial's values, and the package's messages through Optuna's handler."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from optuna_nachos.cli._format import QuietTrialLog

ROOT = Path(__file__).resolve().parents[2]

SEARCH = [
    "search",
    "--dataset",
    "digits",
    "--sampler",
    "random",
    "--min-accuracy",
    "0.0",
    "--max-avg-macs",
    "2.7M",
    "--threads",
    "1",
    "--train-subset",
    "150",
    "--backbone-epochs",
    "2",
    "--warmup-epochs",
    "0",
    "--exit-epochs",
    "1",
    "--n-trials",
    "2",
]


@pytest.fixture(scope="module")
def progress_run(tmp_path_factory) -> tuple[str, list[optuna.trial.FrozenTrial]]:
    folder = tmp_path_factory.mktemp("progress")
    url = f"sqlite:///{folder / 'nachos.db'}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "optuna_nachos.cli", *SEARCH, "--storage", url],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    return result.stderr, optuna.load_study(study_name="nachos", storage=url).trials


def test_each_trained_trial_shows_its_phases_and_epochs(progress_run):
    err, trials = progress_run
    trained = [t.number for t in trials if "exit_ratios" in t.user_attrs]
    assert trained, "no trial was trained"
    for number in trained:
        block = err[err.index(f"Trial {number}: training 2 epochs of the backbone, then 1") :]
        for line in ("backbone epoch 1/2", "backbone epoch 2/2", "exits epoch 1/1"):
            assert line in block
        assert block.index("exits epoch 1/1") < block.index(f"Trial {number}: calibrating")


def test_each_finished_trial_shows_its_values_in_one_line(progress_run):
    err, trials = progress_run
    for trial in trials:
        line = next(
            x
            for x in err.splitlines()
            if re.match(rf"Trial {trial.number}[: ]", x)
            and ("accuracy " in x or "not trained" in x)
        )
        if "exit_ratios" in trial.user_attrs:
            assert f"accuracy {trial.values[0]:.4f}" in line
    # the summary line replaces the per-trial log lines, whose values it repeats
    assert "finished with values" not in err
    # messages come through Optuna's handler and format
    assert re.search(r"^\[I [-0-9: ,]+\] Trial \d+: training", err, flags=re.MULTILINE)


def test_the_finished_trial_lines_are_filtered():
    import logging

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("x", logging.INFO, "", 0, message, (), None)

    quiet = QuietTrialLog()
    assert not quiet.filter(record("Trial 3 finished with values [0.9, 100.0]."))
    assert quiet.filter(record("Trial 3: calibrating the exit thresholds, evaluating."))
