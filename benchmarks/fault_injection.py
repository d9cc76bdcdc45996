"""Fault injection: run the search under kills, interrupts, many workers, corrupted files and
bad input, and print what was expected, what was observed and how many trials were lost.

Every scenario drives the real ``optuna-nachos`` command in subprocesses on the bundled digits
data, with tiny trainings, so the whole run takes a few minutes on a CPU::

    python benchmarks/fault_injection.py [--postgres-url postgresql://USER@HOST:PORT/DB]

The PostgreSQL scenarios need a server (``--postgres-url`` or the environment variable
``NACHOS_TEST_POSTGRES_URL``; each scenario creates and drops its own database). The exit
status is 1 when a scenario does not behave as expected or loses a trial.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import TrialState

from optuna_nachos.record import (
    ARTIFACT_ATTR,
    CONFIG_ATTR,
    FAIL_REASON_ATTR,
)

ROOT = Path(__file__).resolve().parents[1]
TRAINING = [
    "--dataset",
    "digits",
    "--sampler",
    "random",
    "--min-accuracy",
    "0",
    "--no-progress",
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
TRAINED = ["--max-avg-macs", "2.7M"]  # candidates train (seconds each)
CHEAP = ["--max-avg-macs", "1.2M"]  # most candidates are over budget: skipped, fast


@dataclass
class Outcome:
    scenario: str
    expected: str
    observed: str
    lost: int | str
    ok: bool


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _start(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "optuna_nachos.cli", *args],
        cwd=cwd,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _run(args: list[str], cwd: Path) -> tuple[int, str]:
    process = _start(args, cwd)
    _, err = process.communicate(timeout=1200)
    return process.returncode, err.strip()


def _search(url: str, n: int, budget: list[str] = CHEAP, *extra: str) -> list[str]:
    return ["search", *TRAINING, *budget, "--n-trials", str(n), "--storage", url, *extra]


def _trials(url: str) -> list[optuna.trial.FrozenTrial]:
    from optuna_nachos.study import open_storage

    return optuna.load_study(study_name="nachos", storage=open_storage(url)).trials


def _count(trials: list[optuna.trial.FrozenTrial]) -> dict[str, int]:
    states = [t.state for t in trials]
    return {
        "finished": sum(s in (TrialState.COMPLETE, TrialState.PRUNED) for s in states),
        "running": states.count(TrialState.RUNNING),
        "failed": states.count(TrialState.FAIL),
        "distinct": len(
            {json.dumps(t.params, sort_keys=True) for t in trials if t.state == TrialState.COMPLETE}
        ),
    }


def _lost(n: int, counts: dict[str, int]) -> int:
    """Requested trials that did not finish, plus trials left RUNNING for ever."""
    return max(0, n - counts["finished"]) + counts["running"]


def _wait_training(url: str, process: subprocess.Popen) -> None:
    """Wait until a trial trains: RUNNING, configured, and still running a second later (a
    candidate over the budget is configured too, and completes at once untrained)."""
    deadline = time.monotonic() + 600
    seen: dict[int, float] = {}
    while time.monotonic() < deadline and process.poll() is None:
        try:
            trials = _trials(url)
        except (KeyError, ValueError):
            trials = []
        now = time.monotonic()
        for trial in trials:
            training = trial.state == TrialState.RUNNING and CONFIG_ATTR in trial.user_attrs
            if training and now - seen.setdefault(trial.number, now) >= 1.0:
                return
        time.sleep(0.2)
    raise RuntimeError("no trial started training")


def kill_and_rerun(work: Path) -> Outcome:
    url, n = f"sqlite:///{work / 'kill.db'}", 2
    process = _start(_search(url, n, TRAINED), work)
    _wait_training(url, process)
    process.kill()
    process.communicate()
    status, _ = _run(_search(url, n, TRAINED), work)
    trials = _trials(url)
    counts = _count(trials)
    reasons = [t.user_attrs.get(FAIL_REASON_ATTR, "") for t in trials if t.state == TrialState.FAIL]
    retried = any("nachos_retry_of" in t.user_attrs for t in trials)
    ok = status == 0 and _lost(n, counts) == 0 and reasons[:1] != [] and retried
    observed = (
        f"rerun exit {status}; {counts['finished']} finished, {counts['running']} running; "
        f"killed trial: {reasons[0].split(':')[0] if reasons else '?'}, retried={retried}"
    )
    return Outcome(
        "SIGKILL mid-trial (SQLite), rerun",
        "killed trial FAIL (stale) and retried; N finished, 0 running",
        observed,
        _lost(n, counts),
        ok,
    )


def interrupt_and_rerun(work: Path) -> Outcome:
    url, n = f"sqlite:///{work / 'int.db'}", 2
    process = _start(_search(url, n, TRAINED), work)
    _wait_training(url, process)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=600)
    status = process.returncode
    interrupted = [t for t in _trials(url) if t.state == TrialState.FAIL]
    reason = interrupted[0].user_attrs.get(FAIL_REASON_ATTR, "") if interrupted else ""
    one_line = len(err.splitlines()) >= 1 and "Traceback" not in err
    rerun, _ = _run(_search(url, n, TRAINED), work)
    counts = _count(_trials(url))
    ok = status == 130 and reason.startswith("interrupted") and one_line and rerun == 0
    return Outcome(
        "Ctrl-C mid-trial (SQLite), rerun",
        "exit 130, one line, trial FAIL (interrupted); rerun finishes N",
        f"exit {status}, traceback={not one_line}, trial {reason or 'not failed'}; rerun exit "
        f"{rerun}, {counts['finished']} finished",
        _lost(n, counts),
        ok and _lost(n, counts) == 0,
    )


def concurrent(work: Path, url: str, label: str, workers: int = 3, n: int = 9) -> Outcome:
    processes = [_start(_search(url, n), work) for _ in range(workers)]
    statuses = [p.wait(timeout=1200) for p in processes]
    for process in processes:
        process.communicate()
    counts = _count(_trials(url))
    ok = (
        statuses == [0] * workers
        and counts["finished"] == n
        and counts["running"] == 0
        and counts["distinct"] == n
    )
    return Outcome(
        f"{workers} workers, one command ({label})",
        f"exactly {n} finished, all distinct, 0 running, every exit 0",
        f"exits {statuses}; {counts['finished']} finished, {counts['distinct']} distinct, "
        f"{counts['running']} running",
        _lost(n, counts),
        ok,
    )


def postgres_killed_worker(work: Path, url: str) -> Outcome:
    """A worker 'on another machine' is killed mid-trial; only the heartbeat can see it."""
    code = (
        "import socket, sys\n"
        "socket.gethostname = lambda: 'machine-a'\n"
        "from optuna_nachos.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    n = 2
    args = _search(url, n, TRAINED, "--heartbeat", "1")
    doomed = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=work,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait_training(url, doomed)
    doomed.kill()
    doomed.wait()
    status, _ = _run(args, work)
    trials = _trials(url)
    counts = _count(trials)
    reasons = [t.user_attrs.get(FAIL_REASON_ATTR, "") for t in trials if t.state == TrialState.FAIL]
    ok = status == 0 and _lost(n, counts) == 0 and any("no heartbeat" in r for r in reasons)
    return Outcome(
        "SIGKILL of a remote worker (PostgreSQL)",
        "heartbeat marks its trial FAIL, another worker retries it; N finished",
        f"exit {status}; {counts['finished']} finished, {counts['running']} running; "
        f"{'stale by heartbeat' if ok else reasons}",
        _lost(n, counts),
        ok,
    )


def corrupted_files(work: Path) -> Outcome:
    from optuna_nachos.config import EENNConfig
    from optuna_nachos.data._cifar import load_cifar10
    from optuna_nachos.deploy import export_eenn, load_eenn
    from optuna_nachos.models import build_eenn

    problems = []
    model = build_eenn(
        EENNConfig(
            depths=(2,) * 5,
            kernel_sizes=((3, 3),) * 5,
            expand_ratios=((3, 3),) * 5,
            exit_stages=(1,),
            resolution=32,
        ),
        num_classes=10,
        in_channels=1,
    )
    out = export_eenn(work / "net", model, [0.5], in_channels=1)
    (out / "eenn.json").write_text("{broken")
    try:
        load_eenn(out)
        problems.append("broken eenn.json loaded")
    except ValueError as error:
        if "eenn.json" not in str(error):
            problems.append("eenn.json error does not name the file")

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(work / "code-ran"),))

    folder = work / "cifar" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    (folder / "data_batch_1").write_bytes(pickle.dumps({"data": Payload()}, protocol=2))
    with contextlib.suppress(Exception):  # any refusal is fine, running the payload is not
        load_cifar10(work / "cifar", resolution=32, download=False)
    if (work / "code-ran").exists():
        problems.append("crafted CIFAR batch ran code")

    (work / "broken.db").write_bytes(b"this is not a database" * 100)
    status, err = _run(["best", "--storage", f"sqlite:///{work / 'broken.db'}"], work)
    if status != 2 or len(err.splitlines()) != 1:
        problems.append(f"corrupted SQLite: exit {status}, {len(err.splitlines())} lines")
    return Outcome(
        "corrupted eenn.json / crafted CIFAR pickle / corrupted SQLite",
        "one-line errors naming the file; no code run",
        "; ".join(problems) or "as expected",
        0,
        not problems,
    )


def bad_inputs(work: Path) -> Outcome:
    url = f"sqlite:///{work / 'bad.db'}"
    cases: list[tuple[str, list[str]]] = [
        ("budget 1e999", _search(url, 1, ["--max-avg-macs", "1e999"])),
        ("timeout -5", _search(url, 1, CHEAP, "--timeout", "-5")),
        ("best on a typo path", ["best", "--storage", f"sqlite:///{work / 'typo.db'}"]),
        ("postgresql://nowhere", ["best", "--storage", "postgresql://nobody@127.0.0.1:1/x"]),
        ("unknown URL scheme", ["best", "--storage", "foo://x"]),
    ]
    if not _cuda_available():
        cases.append(("--device cuda without GPU", _search(url, 1, CHEAP, "--device", "cuda")))
    problems = []
    for name, args in cases:
        status, err = _run(args, work)
        # argparse prints its usage (lines starting "usage:" or indented) before the error.
        lines = [
            line
            for line in err.splitlines()
            if line.strip() and not line.startswith(("usage:", " "))
        ]
        if status != 2 or len(lines) != 1 or "Traceback" in err:
            problems.append(f"{name}: exit {status}, {len(lines)} lines")
    created = [p.name for p in (work / "bad.db", work / "typo.db") if p.exists()]
    if created:
        problems.append(f"created {created}")
    return Outcome(
        "bad input: infinite budget, negative timeout, typo path, bad URLs, cuda",
        "exit 2, one line each, no file created",
        "; ".join(problems) or f"as expected ({len(cases)} cases)",
        0,
        not problems,
    )


def export_overwrite(work: Path) -> Outcome:
    folder = work / "export"
    folder.mkdir()
    url = f"sqlite:///{folder / 'nachos.db'}"
    status, _ = _run(_search(url, 3, TRAINED), folder)
    elsewhere = work / "elsewhere"
    elsewhere.mkdir()
    trained = [t.number for t in _trials(url) if ARTIFACT_ATTR in t.user_attrs]
    if not trained:
        return Outcome("export from another directory", "-", "no trained trial", 0, False)
    trial = trained[0]
    export = ["export", "--storage", url, "--trial", str(trial), "--out", str(work / "eenn")]
    first, _ = _run(export, elsewhere)
    before = (work / "eenn" / "weights.pt").read_bytes() if first == 0 else b""
    second, err = _run(export, elsewhere)
    unchanged = first == 0 and (work / "eenn" / "weights.pt").read_bytes() == before
    forced, _ = _run([*export, "--force"], elsewhere)
    stray = (elsewhere / "nachos_artifacts").exists()
    ok = (status, first, second, forced) == (0, 0, 2, 0) and unchanged and not stray
    return Outcome(
        "export from another directory, twice",
        "found beside the storage; second refused without --force; nothing left behind",
        f"exits {first}/{second}/{forced} (first/again/--force), files unchanged={unchanged}, "
        f"stray folder={stray}",
        0,
        ok,
    )


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _postgres_database(server: str) -> tuple[str, Callable[[], None]]:
    import psycopg

    name = f"nachos_faults_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(server, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return server.rsplit("/", 1)[0] + "/" + name, drop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("NACHOS_TEST_POSTGRES_URL"),
        help="a PostgreSQL server URL (default: $NACHOS_TEST_POSTGRES_URL)",
    )
    parser.add_argument(
        "--only", default=None, help="comma-separated scenario names (default: all)"
    )
    args = parser.parse_args(argv)
    only = None if args.only is None else set(args.only.split(","))
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="nachos-faults-") as tmp:
        work = Path(tmp)
        scenarios: list[tuple[str, Callable[[Path], Outcome]]] = [
            ("kill", kill_and_rerun),
            ("interrupt", interrupt_and_rerun),
            ("sqlite", lambda w: concurrent(w, f"sqlite:///{w / 'many.db'}", "SQLite")),
            ("journal", lambda w: concurrent(w, f"journal:///{w / 'many.log'}", "journal")),
            ("corrupted", corrupted_files),
            ("bad", bad_inputs),
            ("export", export_overwrite),
        ]
        for name, scenario in scenarios:
            if only is not None and name not in only:
                continue
            folder = work / name
            folder.mkdir()
            print(f"running: {name}", file=sys.stderr, flush=True)
            outcomes.append(scenario(folder))
        if args.postgres_url:
            for name, scenario in (
                ("postgres", lambda w, u: concurrent(w, u, "PostgreSQL", workers=4, n=12)),
                ("postgres-kill", postgres_killed_worker),
            ):
                if only is not None and name not in only:
                    continue
                folder = work / name
                folder.mkdir()
                print(f"running: {name}", file=sys.stderr, flush=True)
                url, drop = _postgres_database(args.postgres_url)
                try:
                    outcomes.append(scenario(folder, url))
                finally:
                    drop()
        else:
            outcomes.append(
                Outcome("workers on PostgreSQL", "-", "skipped: no --postgres-url", "-", True)
            )
    print("| scenario | expected | observed | trials lost |")
    print("|---|---|---|---|")
    for outcome in outcomes:
        mark = "" if outcome.ok else " **UNEXPECTED**"
        print(
            f"| {outcome.scenario} | {outcome.expected} | {outcome.observed}{mark} | "
            f"{outcome.lost} |"
        )
    return 0 if all(o.ok and o.lost in (0, "-") for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
