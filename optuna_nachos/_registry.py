"""One shape for the registries: search spaces, datasets, exit heads, latency back ends."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(dict[str, T], Generic[T]):
    """Entries of one kind by name, with the errors every registry of the package gives.

    Args:
        kind: What an entry is, for the messages (``"exit head"``).
        unknown: The exception type of an unknown name (a ``KeyError`` subclass for most).
        hint: A sentence appended to the message of an unknown name (how to add one).
        normalize: Maps a name to its canonical form (case, separators) before every use.
    """

    def __init__(
        self,
        kind: str,
        *,
        unknown: type[Exception] = KeyError,
        hint: str = "",
        normalize: Callable[[str], str] | None = None,
    ) -> None:
        super().__init__()
        self.kind = kind
        self.unknown = unknown
        self.hint = hint
        self.normalize = normalize or (lambda name: name)

    def copy(self) -> Registry[T]:  # type: ignore[override]
        """A registry of the same kind with the same entries."""
        other: Registry[T] = Registry(
            self.kind, unknown=self.unknown, hint=self.hint, normalize=self.normalize
        )
        other.update(self)
        return other

    def add(self, name: str, entry: T, *, overwrite: bool = False) -> None:
        """Register ``entry`` under ``name``.

        Raises:
            ValueError: If ``name`` is taken and ``overwrite`` is false.
        """
        key = self.normalize(name)
        if key in self and not overwrite:
            raise ValueError(f"{self.kind} {key!r} is already registered; pass overwrite=True.")
        self[key] = entry

    def entry(self, name: str) -> T:
        """The entry registered under ``name``.

        Raises:
            Exception: Of type ``unknown``, naming the registered entries, if there is none.
        """
        try:
            return self[self.normalize(name)]
        except KeyError:
            message = f"unknown {self.kind} {name!r}; registered {self.kind}s: {self.names()}."
            raise self.unknown(f"{message} {self.hint}".rstrip()) from None

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self)
