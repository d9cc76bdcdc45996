"""Opening storages from URLs, and the lock that lets workers share one storage file."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import optuna
from optuna.storages import BaseStorage

JOURNAL_PREFIX = "journal:///"
# Not ".lock": Optuna's journal backend already uses that name for its own lock.
LOCK_SUFFIX = ".nachos-lock"


def open_storage(url: str) -> BaseStorage:
    """Open a storage from a URL.

    ``sqlite:///file.db`` opens a SQLite file; ``journal:///file.log`` a journal file (made
    for several processes on one machine); as with SQLite, three slashes start a relative path
    and four an absolute one. Other SQLAlchemy URLs (``postgresql://...``, ``mysql://...``)
    open a database server with a heartbeat, so that the trial of a worker that died is marked
    failed and run again (:class:`optuna.storages.RetryFailedTrialCallback`).

    Raises:
        ValueError: If the storage cannot be opened; the one-line message says why.
    """
    if url.startswith(JOURNAL_PREFIX):
        path = Path(url[len(JOURNAL_PREFIX) :])
        if not path.parent.is_dir():
            raise ValueError(f"cannot open storage {url!r}: folder {path.parent} does not exist")
        return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///") :])
        if str(path) not in ("", ":memory:") and not path.parent.is_dir():
            raise ValueError(f"cannot open storage {url!r}: folder {path.parent} does not exist")
        server = {}
    else:
        server = {
            "heartbeat_interval": 60,
            "grace_period": 180,
            "heartbeat_stale_trial_callback": optuna.storages.RetryFailedTrialCallback(max_retry=2),
        }
    try:
        return optuna.storages.RDBStorage(url, **server)
    except Exception as error:  # any backend error means the storage cannot be opened
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"cannot open storage {url!r}: {reason}") from error


def uses_heartbeat(storage: BaseStorage) -> bool:
    """Whether the storage watches its workers with a heartbeat (database servers)."""
    return (
        isinstance(storage, optuna.storages.RDBStorage)
        and storage.get_heartbeat_interval() is not None
    )


def storage_lock_path(url: str) -> Path | None:
    """The lock file next to a storage file (SQLite or journal), or ``None`` for servers."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        return None if path in ("", ":memory:") else Path(path + LOCK_SUFFIX)
    if url.startswith(JOURNAL_PREFIX):
        return Path(url[len(JOURNAL_PREFIX) :] + LOCK_SUFFIX)
    return None


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
