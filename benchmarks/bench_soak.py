"""Soak test of the cluster path: search workers on one PostgreSQL study, killed and restarted.

Starts a throwaway PostgreSQL server on a free loopback port (the installed PostgreSQL
package; nothing leaves the machine), then ``--workers`` processes of the real
``optuna-nachos search`` command on one study (``nachos`` sampler, so that the workers claim
its proposals; tiny trainings on the bundled digits). For ``--duration`` seconds it kills a
random worker with SIGKILL about every ``--kill-every`` seconds (one running a trial, when
any is) and restarts every worker that ends before the study is done (a killed one, or one
that stopped on the database's outage); halfway through it stops the database server as a
crash does (``pg_ctl stop -m immediate``) and starts it again ``--db-down`` seconds later.
Then it lets the workers finish and checks the study:

- exactly ``--n-trials`` finished trials, none left RUNNING;
- no configuration finished twice, and no proposal of the sampler claimed by two live trials;
- every trial running in a killed worker is FAIL, its reason (``stale: ...``) in
  ``fail_reason``, and its configuration enqueued again (unless it had already been retried
  ``max_retry`` times).

The record (settings, every kill and restart, the database restart, counts, each check) is
written as JSON; the exit status is 1 when a check fails. The whole run is bounded by
``--timeout``.

Usage::

    python benchmarks/bench_soak.py --workers 8 --duration 1800 --n-trials 200 \
        --out benchmarks/results/soak_postgres.json

The kills stop after ``--duration`` seconds or when the study is done, whichever comes first;
size ``--n-trials`` to the machine (8 workers on 2 busy cores finished about 0.09 trials a
second, so 200 trials take about 35 minutes there).
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
STUDY = "soak"
DATABASE = "nachos_soak"

SEARCH = [
    "--dataset",
    "digits",
    "--resolution",
    "8",
    "--sampler",
    "nachos",
    "--max-avg-macs",
    "20M",
    "--min-accuracy",
    "0",
    "--train-subset",
    "150",
    "--backbone-epochs",
    "1",
    "--warmup-epochs",
    "0",
    "--exit-epochs",
    "1",
    "--threads",
    "1",
    "--no-progress",
]
"""The search every worker runs (the storage, study, trials and sampler start are added)."""


def _anonymous(text: str) -> str:
    """``text`` without this machine's name (the record is committed)."""
    host = socket.gethostname()
    return text.replace(host, "HOST") if host else text


# --- The database server ----------------------------------------------------------------------


class Postgres:
    """A throwaway PostgreSQL server on a free loopback port, in ``folder``.

    Raises:
        RuntimeError: If no PostgreSQL server program is installed.
    """

    def __init__(self, folder: Path) -> None:
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        initdb = shutil.which("initdb") or (bins[-1] if bins else None)
        if initdb is None:
            raise RuntimeError(
                "no PostgreSQL server: install the postgresql package (apt-get install "
                "postgresql) to run the soak"
            )
        self.initdb = initdb
        self.pg_ctl = str(Path(initdb).with_name("pg_ctl"))
        self.folder = folder
        self.data = folder / "data"
        self.run_as: list[str] = []
        if os.geteuid() == 0:  # initdb refuses root: the server runs as the postgres user
            self.run_as = ["runuser", "-u", "postgres", "--"]
            shutil.chown(folder, user="postgres")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._quiet([self.initdb, "-D", str(self.data), "-U", "nachos", "--auth=trust"])

    def _quiet(self, command: list[str]) -> None:
        subprocess.run(
            [*self.run_as, *command],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
            timeout=120,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        log = str(self.folder / "server.log")
        self._quiet([self.pg_ctl, "-D", str(self.data), "-o", options, "-l", log, "-w", "start"])

    def stop(self, mode: str = "fast") -> None:
        self._quiet([self.pg_ctl, "-D", str(self.data), "-m", mode, "-w", "stop"])

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://nachos@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


# --- The workers ------------------------------------------------------------------------------


@dataclass
class Slot:
    """One worker's place: its current process and its history."""

    index: int
    log: Path
    process: subprocess.Popen | None = None
    restart_at: float = 0.0
    done: bool = False
    starts: int = 0
    exits: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def last_line(self) -> str:
        """The last line the worker wrote (its error, when it stopped on one)."""
        lines = [line for line in self.log.read_text(errors="replace").splitlines() if line]
        return _anonymous(lines[-1]) if lines else ""


def _start(slot: Slot, command: list[str]) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    with open(slot.log, "a") as log:
        log.write(f"--- start {slot.starts + 1} at {time.strftime('%H:%M:%S')}\n")
        log.flush()
        slot.process = subprocess.Popen(
            command, cwd=slot.log.parent, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    slot.starts += 1


def _running_by_pid(url: str) -> dict[int, list[int]] | None:
    """The numbers of the RUNNING trials of each worker process (``None``: the database did
    not answer, or the study does not exist yet)."""
    import optuna
    from optuna.trial import TrialState

    from optuna_nachos.record import WORKER_ATTR
    from optuna_nachos.study import open_storage

    try:
        study = optuna.load_study(study_name=STUDY, storage=open_storage(url))
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    except Exception:  # the database is down, or the study not created yet
        return None
    found: dict[int, list[int]] = {}
    for trial in running:
        pid = (trial.user_attrs.get(WORKER_ATTR) or {}).get("pid")
        found.setdefault(pid, []).append(trial.number)
    return found


# --- The checks -------------------------------------------------------------------------------


def check_study(url: str, n_trials: int, kills: list[dict[str, Any]], max_retry: int) -> dict:
    """Count and check the study after the run."""
    import optuna
    from optuna.trial import TrialState

    from optuna_nachos.record import FAIL_REASON_ATTR, RETRY_ATTR
    from optuna_nachos.samplers import PROPOSAL_ATTR
    from optuna_nachos.study import open_storage

    study = optuna.load_study(study_name=STUDY, storage=open_storage(url))
    trials = study.get_trials(deepcopy=False)
    by_number = {t.number: t for t in trials}
    states = Counter(t.state.name for t in trials)
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    configs = Counter(json.dumps(t.params, sort_keys=True) for t in finished)
    claims = Counter(
        (t.system_attrs[PROPOSAL_ATTR]["round"], t.system_attrs[PROPOSAL_ATTR]["index"])
        for t in trials
        if t.state != TrialState.FAIL and isinstance(t.system_attrs.get(PROPOSAL_ATTR), dict)
    )
    retries: dict[int, list[int]] = {}
    for trial in trials:
        for number in trial.user_attrs.get(RETRY_ATTR, [])[-1:]:
            retries.setdefault(number, []).append(trial.number)

    killed = sorted({n for kill in kills for n in kill.get("trials") or []})
    problems = []
    retried_finished = retried_waiting = exhausted = 0
    for number in killed:
        trial = by_number.get(number)
        reason = (trial.user_attrs.get(FAIL_REASON_ATTR) or "") if trial else ""
        if trial is None or trial.state != TrialState.FAIL or not reason.startswith("stale:"):
            problems.append(
                f"trial {number}: {trial.state.name if trial else 'missing'} {reason!r}"
            )
            continue
        again = [by_number[n] for n in retries.get(number, [])]
        if again:
            if any(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in again):
                retried_finished += 1
            elif any(t.state == TrialState.WAITING for t in again):
                retried_waiting += 1  # the total was reached before its turn
        elif len(trial.user_attrs.get(RETRY_ATTR, [])) >= max_retry:
            exhausted += 1  # already retried max_retry times: not enqueued again
        else:
            problems.append(f"trial {number}: failed but not retried")
    other_failures = Counter(
        _anonymous(t.user_attrs.get(FAIL_REASON_ATTR) or "no reason")[:90]
        for t in trials
        if t.state == TrialState.FAIL and t.number not in killed
    )
    checks = {
        "exactly_n_finished": len(finished) == n_trials,
        "none_running": states.get("RUNNING", 0) == 0,
        "no_duplicate_configuration": all(count == 1 for count in configs.values()),
        "no_proposal_claimed_twice": all(count == 1 for count in claims.values()),
        "every_killed_trial_failed_with_reason_and_retried": not problems,
        "every_failure_has_a_reason": all(
            FAIL_REASON_ATTR in t.user_attrs for t in trials if t.state == TrialState.FAIL
        ),
    }
    return {
        "trials": len(trials),
        "states": dict(states),
        "finished": len(finished),
        "claimed_proposals": sum(claims.values()),
        "killed_trials": len(killed),
        "killed_trials_retried_and_finished": retried_finished,
        "killed_trials_retry_waiting_when_total_reached": retried_waiting,
        "killed_trials_retries_exhausted": exhausted,
        "killed_trial_problems": problems,
        "other_failures": dict(other_failures),
        "checks": checks,
        "ok": all(checks.values()),
    }


# --- The run ----------------------------------------------------------------------------------


def soak(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    rng = random.Random(args.seed)
    server_folder = Path(tempfile.mkdtemp(prefix="nachos-soak-postgres-"))
    server_folder.chmod(0o755)  # the server's user must enter it
    server = Postgres(server_folder)
    server.start()
    try:
        url = server.create_database(DATABASE)
        command = [
            sys.executable,
            "-m",
            "optuna_nachos.cli",
            "search",
            *SEARCH,
            "--startup-trials",
            str(args.startup_trials),
            "--n-trials",
            str(args.n_trials),
            "--storage",
            url,
            "--study-name",
            STUDY,
            "--artifacts",
            str(work / "artifacts"),
            "--heartbeat",
            str(args.heartbeat),
        ]
        slots = []
        for index in range(args.workers):
            folder = work / f"worker-{index}"
            folder.mkdir()
            slots.append(Slot(index, folder / "log.txt"))
        started = time.monotonic()
        chaos_end = started + args.duration
        db_restart_at = started + args.duration / 2
        next_kill = started + rng.expovariate(1 / args.kill_every)
        kills: list[dict[str, Any]] = []
        db_restart: dict[str, Any] | None = None
        timed_out = False
        for slot in slots:
            _start(slot, command)
        while not all(slot.done for slot in slots):
            now = time.monotonic()
            if now - started > args.timeout:
                timed_out = True
                break
            for slot in slots:
                if slot.done:
                    continue
                if slot.process is not None and slot.process.poll() is not None:
                    code = slot.process.returncode
                    slot.exits.append(code)
                    slot.process = None
                    if code == 0:  # the study holds its trials: this worker is done
                        slot.done = True
                    else:
                        if code != -signal.SIGKILL:  # it stopped by itself: on what?
                            slot.errors.append(slot.last_line()[:160])
                        slot.restart_at = now + args.restart_delay
                if slot.process is None and not slot.done and now >= slot.restart_at:
                    _start(slot, command)
            hits = sum(bool(kill["trials"]) for kill in kills)
            chaos = now < chaos_end or hits < args.min_mid_trial_kills
            if chaos and now >= next_kill:
                next_kill = now + rng.expovariate(1 / args.kill_every)
                alive = [s for s in slots if s.process is not None and s.process.poll() is None]
                running = _running_by_pid(url)
                # A random worker among those running a trial (any, when none is).
                busy = [s for s in alive if running and s.process.pid in running]
                if alive:
                    victim = rng.choice(busy or alive)
                    pid = victim.process.pid
                    trials = None if running is None else running.get(pid, [])
                    os.kill(pid, signal.SIGKILL)
                    victim.process.wait()  # gone before the next look at the workers
                    kills.append(
                        {
                            "at": round(now - started, 1),
                            "worker": victim.index,
                            "pid": pid,
                            "trials": trials,
                        }
                    )
                    print(
                        f"{now - started:7.1f} s: killed worker {victim.index} (trials {trials})",
                        flush=True,
                    )
            if db_restart is None and now >= db_restart_at:
                server.stop(mode="immediate")  # as a crash: every connection dropped
                time.sleep(args.db_down)
                server.start()
                db_restart = {
                    "at": round(now - started, 1),
                    "down_seconds": round(time.monotonic() - now, 1),
                }
                print(f"{now - started:7.1f} s: database restarted", flush=True)
            time.sleep(0.5)
        wall = time.monotonic() - started
        for slot in slots:
            if slot.process is not None and slot.process.poll() is None:
                slot.process.kill()
                slot.process.wait()
        # A kill whose snapshot failed (database down) is checked through its worker's pid.
        if any(kill["trials"] is None for kill in kills):
            _fill_unknown_kills(url, kills)
        result = check_study(url, args.n_trials, kills, max_retry=2)
        result["checks"]["finished_in_time"] = not timed_out
        result["checks"]["database_restarted"] = db_restart is not None
        result["ok"] = all(result["checks"].values())
        return {
            **result,
            "wall_seconds": round(wall, 1),
            "kills": kills,
            "kills_mid_trial": sum(bool(k["trials"]) for k in kills),
            "database_restart": db_restart,
            "worker_starts": sum(slot.starts for slot in slots),
            "worker_exit_codes": dict(Counter(str(c) for s in slots for c in s.exits)),
            "worker_errors": dict(Counter(e for s in slots for e in s.errors)),
        }
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            server.stop(mode="immediate")
        shutil.rmtree(server_folder, ignore_errors=True)


def _fill_unknown_kills(url: str, kills: list[dict[str, Any]]) -> None:
    import optuna

    from optuna_nachos.record import WORKER_ATTR
    from optuna_nachos.study import open_storage

    study = optuna.load_study(study_name=STUDY, storage=open_storage(url))
    trials = study.get_trials(deepcopy=False)
    for kill in kills:
        if kill["trials"] is None:
            kill["trials"] = [
                t.number
                for t in trials
                if (t.user_attrs.get(WORKER_ATTR) or {}).get("pid") == kill["pid"]
                and t.state.name in ("FAIL", "RUNNING")
            ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=8, help="search workers")
    parser.add_argument("--n-trials", type=int, default=200, help="trials the study must finish")
    parser.add_argument("--duration", type=float, default=1800, help="seconds of kills")
    parser.add_argument("--kill-every", type=float, default=30, help="mean seconds between kills")
    parser.add_argument(
        "--min-mid-trial-kills",
        type=int,
        default=0,
        help="go on killing after --duration until this many kills hit a running trial",
    )
    parser.add_argument("--db-down", type=float, default=5, help="seconds the database is down")
    parser.add_argument(
        "--restart-delay", type=float, default=2, help="seconds before a worker is restarted"
    )
    parser.add_argument("--startup-trials", type=int, default=16, help="random trials first")
    parser.add_argument("--heartbeat", type=int, default=60, help="workers' --heartbeat")
    parser.add_argument("--timeout", type=float, default=3600, help="bound of the whole run")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kills")
    parser.add_argument("--out", default=None, help="JSON record (default: printed only)")
    parser.add_argument(
        "--work", default=None, help="folder kept for the workers' logs (default: a temporary one)"
    )
    args = parser.parse_args(argv)
    if args.duration >= args.timeout:
        parser.error("--duration must be below --timeout")
    import torch

    wall_started = time.strftime("%Y-%m-%dT%H:%M:%S")
    load_before = os.getloadavg()[0]
    if args.work is not None:
        Path(args.work).mkdir(parents=True, exist_ok=False)
        outcome = soak(args, Path(args.work))
    else:
        with tempfile.TemporaryDirectory(prefix="nachos-soak-") as tmp:
            outcome = soak(args, Path(tmp))
    record = {
        "what": "search workers on one PostgreSQL study, SIGKILLed at random and restarted, "
        "the database server restarted once",
        "command": "python benchmarks/bench_soak.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "settings": {**vars(args), "work": None, "search": SEARCH, "max_retry": 2},
        "started": wall_started,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg()[0],
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
        **outcome,
    }
    text = json.dumps(record, indent=2) + "\n"
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    summary = {key: record[key] for key in ("finished", "states", "kills_mid_trial", "ok")}
    print(json.dumps({**summary, "checks": record["checks"]}))
    return 0 if record["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
