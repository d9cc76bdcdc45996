"""Opening storages from URLs, and the locks that let workers share one storage."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import optuna
from optuna.storages import BaseStorage

from optuna_nachos._logging import get_logger

_logger = get_logger(__name__)

JOURNAL_PREFIX = "journal:///"
SQLITE_PREFIX = "sqlite:///"
GRPC_PREFIX = "grpc://"
GRPC_PORT = 13000
"""The port of Optuna's gRPC storage proxy when a ``grpc://`` URL names none (Optuna's)."""
GRPC_READY_SECONDS = 10.0
"""How long opening a ``grpc://`` storage waits for its server."""
# Not ".lock": Optuna's journal backend already uses that name for its own lock.
LOCK_SUFFIX = ".nachos-lock"

HEARTBEAT_INTERVAL = 60
"""Seconds between two heartbeats of a running trial on a database server."""

_SERVER_SCHEMES = ("postgresql", "mysql", "mariadb", "oracle", "mssql", "sqlite")
_DRIVERS = {
    "postgresql": "optuna-nachos[postgres]",
    "mysql": "PyMySQL",
    "grpc": "optuna-nachos[grpc]",
}


def _scheme(url: str) -> str:
    return url.split("://", 1)[0].split("+", 1)[0].lower() if "://" in url else ""


def _advisory_key(name: str) -> int:
    """A stable signed 64-bit key for a PostgreSQL advisory lock."""
    digest = hashlib.sha256(f"optuna-nachos:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def storage_file(url: str) -> Path | None:
    """The file of a SQLite or journal storage URL, or ``None`` (servers, in-memory)."""
    for prefix in (SQLITE_PREFIX, JOURNAL_PREFIX):
        if url.startswith(prefix):
            path = url[len(prefix) :]
            return None if path in ("", ":memory:") else Path(path)
    return None


def open_storage(
    url: str,
    *,
    must_exist: bool = False,
    heartbeat_interval: int = HEARTBEAT_INTERVAL,
    grace_period: int | None = None,
    max_retry: int = 2,
) -> BaseStorage:
    """Open a storage from a URL.

    ``sqlite:///file.db`` opens a SQLite file; ``journal:///file.log`` a journal file (made
    for several processes on one machine); as with SQLite, three slashes start a relative path
    and four an absolute one. Other SQLAlchemy URLs (``postgresql://...``, ``mysql://...``)
    open a database server with a heartbeat: the trial of a worker that stopped beating for
    ``grace_period`` seconds is marked failed and enqueued again
    (:class:`~optuna_nachos.study.RetryStaleTrial`). ``postgresql://`` needs the psycopg
    driver (``pip install optuna-nachos[postgres]``); several workers may open a new
    PostgreSQL database at the same time: the tables are created by one of them.
    ``grpc://HOST:PORT`` connects to an Optuna storage proxy
    (:func:`optuna.storages.run_grpc_proxy_server`, port 13000 by default) through
    :class:`optuna.storages.GrpcStorageProxy` (``pip install optuna-nachos[grpc]``); the
    server's own storage keeps the heartbeat, if any.

    Args:
        url: The storage URL.
        must_exist: Refuse to create a new SQLite or journal file (reading commands: a typo
            in the path would otherwise create an empty storage).
        heartbeat_interval: Seconds between heartbeats on a database server.
        grace_period: Seconds without a heartbeat after which a trial is stale; three
            intervals by default.
        max_retry: How many times the trial of a dead worker is enqueued again.

    Raises:
        ValueError: If the storage cannot be opened; the one-line message says why.
        FileNotFoundError: If ``must_exist`` and the storage file does not exist.
    """
    path = storage_file(url)
    if path is not None and not path.parent.is_dir():
        raise ValueError(f"cannot open storage {url!r}: folder {path.parent} does not exist")
    if path is not None and must_exist and not path.is_file():
        raise FileNotFoundError(
            f"no storage file {path}; pass the --storage of your search "
            "(run 'optuna-nachos search' first)"
        )
    if path is not None and path.is_dir():
        raise ValueError(f"cannot open storage {url!r}: {path} is a folder, not a file")
    if url.startswith(JOURNAL_PREFIX):
        return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    scheme = _scheme(url)
    if scheme not in (*_SERVER_SCHEMES, "grpc"):
        raise ValueError(
            f"cannot open storage {url!r}: unknown scheme {scheme or url!r}; use sqlite:///FILE, "
            "journal:///FILE, a database URL such as postgresql://USER@HOST/DB, or "
            "grpc://HOST:PORT"
        )
    grpc = grpc_address(url) if scheme == "grpc" else None
    options = {}
    if scheme not in ("sqlite", "grpc"):
        from optuna_nachos.study._workers import RetryStaleTrial

        options = {
            "heartbeat_interval": heartbeat_interval,
            "grace_period": grace_period or 3 * heartbeat_interval,
            "heartbeat_stale_trial_callback": RetryStaleTrial(max_retry=max_retry),
        }
    try:
        with warnings.catch_warnings():
            # The heartbeat arguments are marked experimental; they are used deliberately.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            if grpc is not None:
                return _open_grpc(*grpc)
            if scheme == "postgresql":
                return _open_postgres(url, options)
            # Workers started together on a new SQLite file would each create the tables.
            with file_lock(storage_lock_path(url)):
                return optuna.storages.RDBStorage(url, **options)
    except ModuleNotFoundError as error:
        extra = _DRIVERS.get(scheme, "its SQLAlchemy driver")
        raise ValueError(
            f"cannot open storage {url!r}: the driver {error.name!r} is not installed; "
            f"pip install {extra}"
        ) from error
    except Exception as error:  # any backend error means the storage cannot be opened
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"cannot open storage {url!r}: {reason}") from error


def grpc_address(url: str) -> tuple[str, int]:
    """The host and port of a ``grpc://HOST[:PORT]`` URL (port 13000 when none is given).

    Raises:
        ValueError: If the URL names no host or a port that is not a number.
    """
    address = url[len(GRPC_PREFIX) :].rstrip("/") if url.startswith(GRPC_PREFIX) else ""
    host, colon, port = address.rpartition(":")
    if not colon:
        host, port = address, str(GRPC_PORT)
    if not host or not port.isdigit() or "/" in address:
        raise ValueError(
            f"cannot open storage {url!r}: use grpc://HOST:PORT, e.g. grpc://localhost:13000"
        )
    return host, int(port)


def _open_grpc(host: str, port: int) -> BaseStorage:
    proxy = optuna.storages.GrpcStorageProxy(host=host, port=port)
    try:
        proxy.wait_server_ready(timeout=GRPC_READY_SECONDS)
    except ConnectionError:
        proxy.close()
        raise ConnectionError(
            f"no storage server answered at {host}:{port} within {GRPC_READY_SECONDS:g} s "
            "(start one with optuna.storages.run_grpc_proxy_server)"
        ) from None
    return proxy


def _open_postgres(url: str, options: dict) -> BaseStorage:
    """Open a PostgreSQL storage, creating Optuna's tables under an advisory lock.

    Two processes creating the tables at once collide on PostgreSQL's catalog (a unique
    violation on ``pg_type``); the lock lets one create them while the other waits.
    """
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as connection:
            key = _advisory_key("create-tables")
            connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            try:
                return optuna.storages.RDBStorage(url, **options)
            finally:
                connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
    finally:
        engine.dispose()


def rdb_storage(storage: BaseStorage) -> optuna.storages.RDBStorage | None:
    """The database storage behind ``storage`` (a study wraps it in a cache), or ``None``."""
    backend = getattr(storage, "_backend", storage)
    return backend if isinstance(backend, optuna.storages.RDBStorage) else None


def heartbeat_interval(storage: BaseStorage) -> int | None:
    """The seconds between heartbeats of a database storage, ``None`` without heartbeat."""
    backend = rdb_storage(storage)
    return None if backend is None else backend.get_heartbeat_interval()


def uses_heartbeat(storage: BaseStorage) -> bool:
    """Whether the storage watches its workers with a heartbeat (database servers)."""
    return heartbeat_interval(storage) is not None


def storage_lock_path(url: str) -> Path | None:
    """The lock file next to a storage file (SQLite or journal), or ``None`` for servers."""
    path = storage_file(url)
    return None if path is None else Path(str(path) + LOCK_SUFFIX)


@contextlib.contextmanager
def file_lock(path: Path | None) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (no-op for ``None``)."""
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


class StudyLock:
    """The lock under which a worker starts a trial, shared by every worker of a study.

    A file lock beside a SQLite or journal file (workers on one machine), a PostgreSQL
    advisory lock on a PostgreSQL storage (workers on any machine), none otherwise.

    Args:
        storage: The study's storage.
        study_name: The study's name (the advisory lock is per study).
        lock_path: A lock file; takes precedence over the storage's own lock.
    """

    def __init__(
        self, storage: BaseStorage, study_name: str, *, lock_path: Path | None = None
    ) -> None:
        self.lock_path = lock_path
        self._engine = None
        self._key = _advisory_key(f"study:{study_name}")
        backend = rdb_storage(storage)
        postgres = backend is not None and backend.engine.dialect.name == "postgresql"
        if lock_path is None and postgres:
            self._engine = backend.engine

    @property
    def exclusive(self) -> bool:
        """Whether the lock really excludes the other workers."""
        return self.lock_path is not None or self._engine is not None

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        if self._engine is None:
            with file_lock(self.lock_path):
                yield
            return
        import sqlalchemy

        with self._engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": self._key})
            connection.commit()
            try:
                yield
            finally:
                unlock = sqlalchemy.text("SELECT pg_advisory_unlock(:k)")
                connection.execute(unlock, {"k": self._key})
                connection.commit()


def storage_outage(error: BaseException) -> BaseException | None:
    """The lost-connection error behind ``error`` (Optuna's storage error, or the database
    driver's operational or interface error), or ``None``."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, optuna.exceptions.StorageInternalError):
            return current
        if type(current).__module__.startswith("sqlalchemy") and type(current).__name__ in (
            "OperationalError",
            "InterfaceError",
        ):
            return current
        current = current.__cause__ or current.__context__
    return None
