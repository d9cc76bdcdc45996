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

    ``sqlite:///file.db`` and other SQLAlchemy URLs open an RDB storage (with a heartbeat, so a
    crashed worker's trial is marked failed and retried); ``journal:///file.log`` opens a
    journal file storage, safe for several processes on one machine. As with SQLite, three
    slashes start a relative path and four an absolute one.

    Raises:
        ValueError: If the storage cannot be opened; the message says why.
    """
    try:
        if url.startswith(JOURNAL_PREFIX):
            path = url[len(JOURNAL_PREFIX) :]
            backend = optuna.storages.journal.JournalFileBackend(path)
            return optuna.storages.JournalStorage(backend)
        return optuna.storages.RDBStorage(
            url,
            heartbeat_interval=60,
            grace_period=180,
            failed_trial_callback=optuna.storages.RetryFailedTrialCallback(max_retry=2),
        )
    except Exception as error:  # any backend error means the storage cannot be opened
        raise ValueError(f"cannot open storage {url!r}: {error}") from error


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
