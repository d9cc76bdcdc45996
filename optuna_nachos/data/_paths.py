"""Where datasets are looked for, and the messages that say so when they are missing."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from optuna_nachos._logging import get_logger
from optuna_nachos.data._errors import DatasetNotFoundError

ENV_VAR = "NACHOS_DATA"
"""Environment variable naming the default data root."""

DEFAULT_ROOT = "data"
"""Data root used when neither ``root`` nor ``NACHOS_DATA`` is given (relative to the working
directory)."""

logger = get_logger(__name__)

_ROOT_HINT = (
    f"pass root=<folder> to load_dataset, or set the {ENV_VAR} environment variable to the "
    "folder that holds the dataset"
)


def resolve_root(root: str | os.PathLike[str] | None) -> Path:
    """The data root: ``root`` if given, else ``$NACHOS_DATA``, else ``./data``."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return Path(DEFAULT_ROOT)


def unique_paths(paths: Iterable[Path]) -> list[Path]:
    """``paths`` without repeats, first occurrence kept."""
    seen: set[str] = set()
    out: list[Path] = []
    for path in paths:
        key = os.path.abspath(path)
        if key not in seen:
            seen.add(key)
            out.append(path)
    return out


def not_found_message(
    dataset: str,
    *,
    expected: Sequence[str],
    looked_in: Sequence[Path],
    how_to: Sequence[str],
    detail: str | None = None,
) -> str:
    """A message naming the files expected, every folder looked in, and how to get the data."""
    lines = [f"dataset {dataset!r} not found."]
    if detail:
        lines.append(detail)
    lines.append("Expected files: " + ", ".join(expected) + ".")
    lines.append("Looked in:")
    for path in looked_in:
        state = "" if path.is_dir() else " (no such folder)"
        lines.append(f"  - {os.path.abspath(path)}{state}")
    lines.append("How to get it:")
    for hint in [*how_to, _ROOT_HINT]:
        lines.append(f"  - {hint}")
    return "\n".join(lines)


def find_or_download(
    folders: Sequence[Path],
    required: Iterable[str],
    *,
    download: Callable[[], None] | None,
    dataset: str,
    expected: Sequence[str],
    how_to: Sequence[str],
) -> Path:
    """The first of ``folders`` holding every ``required`` file, downloading them if allowed.

    Args:
        folders: Where to look, in order.
        required: File names the folder must hold.
        download: Fetches the files into one of ``folders``; ``None`` when not allowed. Its
            failure is reported in the error, not raised.
        dataset: The dataset's name, for the error.
        expected: The files the error says were expected.
        how_to: Ways to get the data, for the error.

    Raises:
        DatasetNotFoundError: If no folder holds the files, after the download if any.
    """
    required = list(required)

    def find() -> Path | None:
        return next((f for f in folders if all((f / n).is_file() for n in required)), None)

    folder = find()
    detail = None
    if folder is None and download is not None:
        try:
            download()
        except Exception as error:  # network errors come in many types
            detail = f"download=True failed: {error}"
        folder = find()
    if folder is None:
        raise DatasetNotFoundError(
            not_found_message(
                dataset, expected=expected, looked_in=folders, how_to=how_to, detail=detail
            )
        )
    return folder
