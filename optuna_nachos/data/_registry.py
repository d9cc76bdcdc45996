"""The registry of dataset loaders."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from optuna_nachos._registry import Registry
from optuna_nachos.data._arrays import DatasetArrays
from optuna_nachos.data._errors import UnknownDatasetError


class DatasetLoader(Protocol):
    """A function decoding a dataset: ``loader(root, *, resolution, download)``.

    ``root`` is the data root (the ``root`` argument, ``$NACHOS_DATA`` or ``./data``);
    ``resolution`` is a hint for loaders that decode images of varying sizes (others may
    return any size: images are resized afterwards); ``download`` says whether fetching is
    allowed. It returns a :class:`DatasetArrays` and raises
    :class:`DatasetNotFoundError` / :class:`DatasetCorruptError` on missing or bad files.
    """

    def __call__(self, root: Path, *, resolution: int, download: bool) -> DatasetArrays: ...


_DATASETS: Registry[Callable[..., DatasetArrays]] = Registry(
    "dataset",
    unknown=UnknownDatasetError,
    hint="Use 'imagefolder:<folder>' for a folder of train/ and test/ class subfolders, or "
    "register_dataset() for your own loader.",
)


def normalize_name(name: str) -> str:
    """Canonical form of a dataset name: lower case, ``_`` as ``-``, surrounding spaces off."""
    if not isinstance(name, str):
        raise TypeError(f"dataset name must be a string, got {type(name).__name__}.")
    return name.strip().lower().replace("_", "-")


def register_dataset(
    name: str, loader_fn: Callable[..., DatasetArrays], *, overwrite: bool = False
) -> None:
    """Register a dataset loader under ``name``.

    Args:
        name: Name passed to :func:`load_dataset`; case-insensitive, ``_`` and ``-`` equal,
            without ``:`` (``"<name>:<root>"`` passes a root inside the name).
        loader_fn: Called as ``loader_fn(root, *, resolution=..., download=...)`` (see
            :class:`DatasetLoader`); returns a :class:`DatasetArrays`.
        overwrite: Replace an existing registration instead of raising.

    Raises:
        ValueError: If ``name`` is empty, contains ``:``, or is taken and ``overwrite`` is
            false.
        TypeError: If ``loader_fn`` is not callable.
    """
    key = normalize_name(name)
    if not key or ":" in key:
        raise ValueError(f"dataset name must be non-empty and without ':', got {name!r}.")
    if not callable(loader_fn):
        raise TypeError(f"loader_fn must be callable, got {loader_fn!r}.")
    _DATASETS.add(key, loader_fn, overwrite=overwrite)


def get_dataset_loader(name: str) -> Callable[..., DatasetArrays]:
    """The loader registered under ``name``.

    Raises:
        UnknownDatasetError: If no dataset of that name is registered; the message lists
            the known ones.
    """
    return _DATASETS.entry(normalize_name(name))


def list_datasets() -> list[str]:
    """Names of the registered datasets, sorted."""
    return _DATASETS.names()
