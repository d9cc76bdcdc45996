"""The soak benchmark of the cluster path, short: search workers on one PostgreSQL study,
killed with SIGKILL at random and restarted, the database server restarted once; at the end
exactly the requested trials, none RUNNING, no configuration twice, every killed trial failed
with its reason and retried (``benchmarks/bench_soak.py`` checks them; a few minutes)."""

import glob
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_soak.py"


def test_a_short_soak_keeps_the_study_exact(tmp_path):
    pytest.importorskip("psycopg", reason="psycopg is missing: pip install optuna-nachos[postgres]")
    if not (shutil.which("initdb") or glob.glob("/usr/lib/postgresql/*/bin/initdb")):
        pytest.skip("no PostgreSQL server: install the postgresql package")
    out = tmp_path / "soak.json"
    command = [
        sys.executable,
        str(SCRIPT),
        "--workers",
        "4",
        "--n-trials",
        "12",
        "--duration",
        "45",
        "--kill-every",
        "8",
        "--startup-trials",
        "4",
        "--min-mid-trial-kills",
        "1",
        "--timeout",
        "280",
        "--out",
        str(out),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=330)
    record = json.loads(out.read_text())
    assert done.returncode == 0, (record["checks"], record["killed_trial_problems"], done.stderr)
    assert all(record["checks"].values())
    assert record["finished"] == 12 and "RUNNING" not in record["states"]
    assert record["database_restart"] is not None
    # Kills fall at random times until the study is done: how many depends on the machine's
    # speed; the script keeps killing until at least one lands mid-trial.
    assert len(record["kills"]) >= 1 and record["kills_mid_trial"] >= 1
    assert record["killed_trials"] >= 1
