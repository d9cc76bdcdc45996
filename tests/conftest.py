"""Settings shared by every test."""

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest
import torch


@pytest.fixture(autouse=True)
def _single_torch_thread() -> Iterator[None]:
    """Run torch on one intra-op thread: the small networks of the tests gain nothing from
    more, and on a busy machine OpenMP threads waiting for each other are many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _image_export_retried() -> Iterator[None]:
    """Forget an image-export failure after each test: a process tries kaleido only until it
    fails once, and a test that makes it fail must not turn images off for the next ones."""
    yield
    from optuna_nachos.visualization import _save

    _save._image_export_problem = None


@pytest.fixture
def nachos_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """``caplog`` that also sees the package's messages: they go to Optuna's logger, which
    does not pass them on to the root logger where ``caplog`` listens unless told to. Set
    levels with ``nachos_log.at_level(level, logger=LOGGER_NAME)``."""
    optuna_logger = logging.getLogger("optuna")
    propagate = optuna_logger.propagate
    optuna_logger.propagate = True
    try:
        yield caplog
    finally:
        optuna_logger.propagate = propagate


@dataclass(frozen=True)
class DigitsStudy:
    """A small real search on the bundled digits, shared by the tests that only read it."""

    study: optuna.Study
    storage: str
    artifact_dir: Path
    max_avg_macs: float
    min_accuracy: float


@pytest.fixture(scope="session")
def digits_study(tmp_path_factory: pytest.TempPathFactory) -> DigitsStudy:
    """Nine trials of a real search on digits (16x16) in a SQLite file, with the trained
    networks in a file-system artifact store: trained admissible trials, trained trials below
    the accuracy floor or above the budget, and trials rejected by the static guard."""
    import optuna_nachos as nachos

    folder = tmp_path_factory.mktemp("digits_study")
    artifact_dir = folder / "artifacts"
    artifact_dir.mkdir()
    storage = f"sqlite:///{folder / 'study.db'}"
    budget, floor = 0.9e6, 0.25
    space = nachos.MobileNetV3Space(resolutions=(16,), depths=(2,), expand_ratios=(3, 4))
    objective = nachos.NachosObjective(
        dataset="digits",
        space=space,
        max_avg_macs=budget,
        min_accuracy=floor,
        train_config=nachos.TrainConfig(
            backbone_epochs=3, warmup_epochs=1, exit_epochs=1, progress=False, batch_size=64
        ),
        artifact_store=optuna.artifacts.FileSystemArtifactStore(str(artifact_dir)),
    )
    study = nachos.create_study(
        storage=storage,
        study_name="digits",
        sampler=nachos.create_sampler("random", seed=3),
        settings=objective.settings(),
    )
    expensive_first_exit = nachos.EENNConfig(
        depths=(2,) * 5,
        kernel_sizes=((7, 7),) * 5,
        expand_ratios=((4, 4),) * 5,
        exit_stages=(4,),
        resolution=16,
    )
    study.enqueue_trial(space.params_from_config(expensive_first_exit))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        nachos.run_search(study, objective, n_trials=9)
    finally:
        torch.set_num_threads(threads)
    return DigitsStudy(study, storage, artifact_dir, budget, floor)


POSTGRES_URL_ENV = "NACHOS_TEST_POSTGRES_URL"
"""A PostgreSQL server URL for the tests (``postgresql://USER@HOST:PORT/DB``); without it
the tests start a throwaway server of the installed PostgreSQL package."""


def _start_postgres(folder: Path) -> tuple[str, Callable[[], None]]:
    """Start a throwaway PostgreSQL server on a free localhost port; return its URL and stop."""
    import glob
    import os
    import shutil
    import socket
    import subprocess

    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    initdb = shutil.which("initdb") or (bins[-1] if bins else None)
    if initdb is None:
        pytest.skip(
            f"no PostgreSQL server: install the postgresql package or set {POSTGRES_URL_ENV}"
        )
    pg_ctl = str(Path(initdb).with_name("pg_ctl"))
    run_as: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: run the server as the postgres user
        run_as = ["runuser", "-u", "postgres", "--"]
        shutil.chown(folder, user="postgres")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data = folder / "data"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "check": True}
    subprocess.run([*run_as, initdb, "-D", str(data), "-U", "nachos", "--auth=trust"], **quiet)
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1"
    start = [*run_as, pg_ctl, "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w"]
    subprocess.run([*start, "start"], **quiet)

    def stop() -> None:
        subprocess.run([*run_as, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], **quiet)

    return f"postgresql://nachos@127.0.0.1:{port}/postgres", stop


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of a PostgreSQL server's maintenance database."""
    import os

    pytest.importorskip("psycopg", reason="psycopg is missing: pip install optuna-nachos[postgres]")
    url = os.environ.get(POSTGRES_URL_ENV)
    if url:
        yield url
        return
    import shutil
    import tempfile

    # Not under pytest's temporary folder: the server's user must be able to enter it.
    folder = Path(tempfile.mkdtemp(prefix="nachos-postgres-"))
    folder.chmod(0o755)
    try:
        url, stop = _start_postgres(folder)
        try:
            yield url
        finally:
            stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A new, empty PostgreSQL database for one test, dropped after it."""
    import uuid

    import psycopg

    name = f"nachos_test_{uuid.uuid4().hex[:12]}"
    plain = postgres_server.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    yield postgres_server.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(plain, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
