"""The commands under faults and bad input: kills, Ctrl-C, reruns, exports, typos."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from optuna_nachos.cli import main

from .conftest import RANDOM_SEARCH, error_line

ROOT = Path(__file__).resolve().parents[2]

SEARCH = [
    *RANDOM_SEARCH,
    "--threads",
    "1",
    "--train-subset",
    "150",
    "--backbone-epochs",
    "1",
    "--warmup-epochs",
    "0",
    "--exit-epochs",
    "1",
]
CHEAP = ["--max-avg-macs", "1.2M"]  # most candidates exceed it: skipped, not trained (fast)
TRAINED = ["--max-avg-macs", "2.7M"]


def _default_sigint() -> None:
    # A shell without job control starts background jobs with SIGINT ignored, and Python
    # then installs no KeyboardInterrupt handler: give the CLI the disposition of a terminal.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _cli(*args: str, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "optuna_nachos.cli", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
    )


def _trials(url: str, name: str = "nachos") -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=url).trials


def _wait_for_running(url: str, process: subprocess.Popen, timeout: float = 600.0) -> None:
    """Wait until a trial trains: RUNNING, configured, and still running a second later (a
    candidate over the budget is configured too, and completes at once untrained)."""
    deadline = time.monotonic() + timeout
    seen: dict[int, float] = {}
    while time.monotonic() < deadline and process.poll() is None:
        try:
            trials = _trials(url)
        except KeyError:  # the study is not created yet
            trials = []
        now = time.monotonic()
        for trial in trials:
            training = trial.state == TrialState.RUNNING and "config" in trial.user_attrs
            if training and now - seen.setdefault(trial.number, now) >= 1.0:
                return
        time.sleep(0.2)
    raise AssertionError("no trial started training")


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--max-avg-macs", "1e999", "must be finite"),
        ("--max-peak-macs", "inf", "invalid MAC amount"),
        ("--timeout", "-5", "seconds >= 0"),
        ("--timeout", "inf", "seconds >= 0"),
    ],
)
def test_infinite_and_negative_inputs_are_rejected(tmp_path, capsys, option, value, message):
    args = [*SEARCH, *TRAINED, "--n-trials", "1", "--storage", f"sqlite:///{tmp_path / 'x.db'}"]
    if option in args:
        args[args.index(option) + 1] = value
    else:
        args += [option, value]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.db").exists()


def test_cuda_without_a_gpu_is_one_line_and_creates_nothing(tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    url = f"sqlite:///{tmp_path / 'x.db'}"
    code = main([*SEARCH, *CHEAP, "--n-trials", "1", "--storage", url, "--device", "cuda"])
    assert code == 2
    assert "no CUDA GPU is available" in error_line(capsys)
    assert not (tmp_path / "x.db").exists()


def test_best_with_a_typo_in_the_path_creates_no_database(tmp_path, capsys):
    code = main(["best", "--storage", f"sqlite:///{tmp_path / 'typo.db'}"])
    assert code == 2
    assert "no storage file" in error_line(capsys)
    assert not (tmp_path / "typo.db").exists()


@pytest.mark.parametrize("url", ["postgresql://nobody@127.0.0.1:1/nachos", "foo://host/x"])
def test_server_and_unknown_urls_fail_in_one_line(tmp_path, url):
    process = _cli("best", "--storage", url, cwd=tmp_path)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 2
    assert len(err.strip().splitlines()) == 1, err
    assert "cannot open storage" in err


def test_artifacts_naming_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    url = f"sqlite:///{tmp_path / 'x.db'}"
    args = [*SEARCH, *CHEAP, "--n-trials", "1", "--storage", url, "--artifacts"]
    assert main([*args, str(tmp_path / "file")]) == 2
    assert "is a file, not a folder" in error_line(capsys)


def test_settings_are_fixed_unless_new_settings(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert main([*SEARCH, *CHEAP, "--n-trials", "1", "--storage", url]) == 0
    changed = [*SEARCH, "--max-avg-macs", "1.3M", "--n-trials", "2", "--storage", url]
    assert main(changed) == 2
    line = error_line(capsys)
    assert "max_avg_macs 1200000.0 -> 1300000.0" in line and "--new-settings" in line
    assert len(_trials(url)) == 1
    assert main([*changed, "--new-settings"]) == 0
    study = optuna.load_study(study_name="nachos", storage=url)
    assert study.user_attrs["nachos_settings"]["max_avg_macs"] == 1.3e6
    assert study.user_attrs["nachos_settings_version"] == 2
    assert study.trials[1].user_attrs["nachos_settings_version"] == 2


def test_a_resumed_search_draws_new_configurations(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    assert main([*SEARCH, *CHEAP, "--n-trials", "1", "--storage", url]) == 0
    assert main([*SEARCH, *CHEAP, "--n-trials", "2", "--storage", url]) == 0
    first, second = _trials(url)
    assert first.params != second.params


def test_two_workers_of_the_same_command_never_duplicate(tmp_path):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    args = [*SEARCH, *CHEAP, "--n-trials", "6", "--storage", url]
    workers = [_cli(*args, cwd=tmp_path) for _ in range(2)]
    for worker in workers:
        _, err = worker.communicate(timeout=600)
        assert worker.returncode == 0, err
    trials = _trials(url)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 6
    assert len({json.dumps(t.params, sort_keys=True) for t in trials}) == 6
    assert len({t.user_attrs["nachos_worker"]["pid"] for t in trials}) == 2


def test_a_search_that_ends_unfinished_exits_non_zero(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 't.db'}"
    assert main([*SEARCH, *CHEAP, "--n-trials", "2", "--storage", url, "--timeout", "0"]) == 1
    assert "search ended unfinished (the timeout passed): 0 of 2" in error_line(capsys)


def test_a_search_stopped_by_failures_exits_non_zero(tmp_path, capsys, monkeypatch):
    from optuna_nachos.objective import NachosObjective

    monkeypatch.setattr(NachosObjective, "__call__", lambda self, trial: (float("nan"),) * 2)
    url = f"sqlite:///{tmp_path / 'f.db'}"
    assert main([*SEARCH, *CHEAP, "--n-trials", "2", "--storage", url]) == 1
    assert "search ended unfinished (trials kept failing): 0 of 2" in error_line(capsys)


def test_ctrl_c_fails_the_trial_and_exits_130(tmp_path):
    url = f"sqlite:///{tmp_path / 'c.db'}"
    process = _cli(*SEARCH, *TRAINED, "--n-trials", "3", "--storage", url, cwd=tmp_path)
    _wait_for_running(url, process)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 130
    assert "Traceback" not in err
    assert "rerun the same command to resume" in err.strip().splitlines()[-1]
    trials = _trials(url)
    assert TrialState.RUNNING not in [t.state for t in trials]
    assert trials[-1].state == TrialState.FAIL
    assert trials[-1].user_attrs["fail_reason"].startswith("interrupted")


def test_a_killed_search_resumes_to_exactly_n_finished(tmp_path):
    url = f"sqlite:///{tmp_path / 'k.db'}"
    args = [*SEARCH, *TRAINED, "--n-trials", "2", "--storage", url]
    process = _cli(*args, cwd=tmp_path)
    _wait_for_running(url, process)
    process.kill()
    process.communicate()
    killed = [t for t in _trials(url) if t.state == TrialState.RUNNING]
    assert len(killed) == 1

    rerun = _cli(*args, cwd=tmp_path)
    _, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err
    trials = _trials(url)
    states = [t.state for t in trials]
    assert states.count(TrialState.COMPLETE) == 2 and TrialState.RUNNING not in states
    failed = trials[killed[0].number]
    assert failed.state == TrialState.FAIL
    assert failed.user_attrs["fail_reason"].startswith("stale: worker process")
    retried = [t for t in trials if t.user_attrs.get("nachos_retry_of") == [failed.number]]
    assert retried and retried[0].params == failed.params


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """A finished search with trained networks, run from its own folder."""
    folder = tmp_path_factory.mktemp("search")
    url = f"sqlite:///{folder / 'nachos.db'}"
    process = _cli(*SEARCH, *TRAINED, "--n-trials", "2", "--storage", url, cwd=folder)
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    trained = [t.number for t in _trials(url) if "nachos_artifact_id" in t.user_attrs]
    assert trained
    return folder, url, trained[0], err


def test_export_finds_the_artifacts_from_any_directory(searched, tmp_path, capsys, monkeypatch):
    folder, url, trial, _ = searched
    assert (folder / "nachos_artifacts").is_dir()
    monkeypatch.chdir(tmp_path)  # elsewhere: the artifacts are found beside the storage
    out = tmp_path / "net"
    export = ["export", "--storage", url, "--trial", str(trial), "--out", str(out)]
    assert main(export) == 0
    weights = (out / "weights.pt").read_bytes()

    assert main(export) == 2
    line = error_line(capsys)
    assert "already holds an exported network" in line and "--force" in line
    assert (out / "weights.pt").read_bytes() == weights
    assert main([*export, "--force"]) == 0

    (tmp_path / "a-file").write_text("keep")
    assert main([*export[:-1], str(tmp_path / "a-file")]) == 2
    assert "is a file" in error_line(capsys)
    assert (tmp_path / "a-file").read_text() == "keep"
    assert not (tmp_path / "nachos_artifacts").exists()


def test_export_with_a_wrong_artifacts_folder_is_one_line(searched, tmp_path, capsys):
    _, url, trial, _ = searched
    empty = tmp_path / "empty"
    empty.mkdir()
    args = ["export", "--storage", url, "--trial", str(trial), "--out", str(tmp_path / "n")]
    assert main([*args, "--artifacts", str(empty)]) == 2
    assert f"the network of trial {trial} is not in {empty}" in error_line(capsys)
    assert main([*args, "--artifacts", str(tmp_path / "missing")]) == 2
    assert "no artifacts folder" in error_line(capsys)
    assert not (tmp_path / "missing").exists() and not (tmp_path / "n").exists()


def test_a_search_shows_each_trials_phases_and_epochs(searched):
    _, url, _, err = searched
    trained = [t.number for t in _trials(url) if "exit_ratios" in t.user_attrs]
    for number in trained:
        block = err[err.index(f"Trial {number}: training 1 epochs of the backbone, then 1") :]
        assert "backbone epoch 1/1" in block
        assert block.index("exits epoch 1/1") < block.index(f"Trial {number}: calibrating")
    # through Optuna's handler and format
    assert re.search(r"^\[I [-0-9: ,]+\] Trial \d+: training", err, flags=re.MULTILINE)


def test_a_search_shows_each_finished_trials_values_in_one_line(searched):
    _, url, _, err = searched
    for trial in _trials(url):
        summary = [line for line in err.splitlines() if line.startswith(f"Trial {trial.number}")]
        if "exit_ratios" in trial.user_attrs:
            assert any(f"accuracy {trial.values[0]:.4f}, avg MACs" in line for line in summary)
        else:
            assert any("not trained" in line for line in summary)
    # the summary line replaces the per-trial log lines, whose values it repeats
    assert "finished with values" not in err
