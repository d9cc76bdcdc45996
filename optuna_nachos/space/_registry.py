"""A registry of search spaces by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from optuna_nachos._registry import Registry
from optuna_nachos.space._mobilenetv3 import MobileNetV3Space

_SPACES: Registry[Callable[..., Any]] = Registry("search space")


def register_space(name: str, factory: Callable[..., Any], *, overwrite: bool = False) -> None:
    """Register a search-space factory under ``name``.

    Raises:
        ValueError: If ``name`` is taken and ``overwrite`` is false.
    """
    _SPACES.add(name, factory, overwrite=overwrite)


def get_space(name: str, **settings: Any) -> Any:
    """Create the registered search space ``name`` with ``settings``.

    Raises:
        KeyError: If ``name`` is unknown; the message lists the registered spaces.
    """
    return _SPACES.entry(name)(**settings)


def list_spaces() -> list[str]:
    """Names of the registered search spaces."""
    return _SPACES.names()


register_space("mobilenetv3", MobileNetV3Space)
register_space("edanas", MobileNetV3Space.edanas)
