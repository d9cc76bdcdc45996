"""A registry of search spaces by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from optuna_nachos.space._mobilenetv3 import MobileNetV3Space

_SPACES: dict[str, Callable[..., Any]] = {
    "mobilenetv3": MobileNetV3Space,
    "edanas": MobileNetV3Space.edanas,
}


def register_space(name: str, factory: Callable[..., Any], *, overwrite: bool = False) -> None:
    """Register a search-space factory under ``name``.

    Raises:
        ValueError: If ``name`` is taken and ``overwrite`` is false.
    """
    if name in _SPACES and not overwrite:
        raise ValueError(f"search space {name!r} is already registered; pass overwrite=True.")
    _SPACES[name] = factory


def get_space(name: str, **settings: Any) -> Any:
    """Create the registered search space ``name`` with ``settings``.

    Raises:
        KeyError: If ``name`` is unknown; the message lists the registered spaces.
    """
    try:
        factory = _SPACES[name]
    except KeyError:
        raise KeyError(f"unknown search space {name!r}; registered: {sorted(_SPACES)}.") from None
    return factory(**settings)


def list_spaces() -> list[str]:
    """Names of the registered search spaces."""
    return sorted(_SPACES)
