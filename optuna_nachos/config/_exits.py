"""The configuration of the early exits placed on a user's own backbone."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from optuna_nachos.config._eenn import ConfigError, _as_int_tuple, _check_keys


@dataclass(frozen=True)
class ExitsConfig:
    """Which stages of a backbone carry an early exit, and which head design each uses.

    Args:
        exit_stages: Stages (1-based) followed by an early exit, sorted and without repeats.
            The final classifier after the last stage always exists.
        exit_heads: Registered head design of each early exit, in the order of
            ``exit_stages``.
        exit_thresholds: Optional fixed exit thresholds, one per early exit; ``None`` leaves
            them to calibration.

    Raises:
        ConfigError: If a field is malformed; the message says which.
    """

    exit_stages: tuple[int, ...]
    exit_heads: tuple[str, ...]
    exit_thresholds: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        stages = _as_int_tuple(self.exit_stages, what="exit_stages")
        if list(stages) != sorted(set(stages)) or any(s < 1 for s in stages):
            raise ConfigError(
                f"exit_stages must be positive stage numbers, sorted, unrepeated; got {stages}."
            )
        heads = self.exit_heads
        if isinstance(heads, str) or not all(isinstance(h, str) and h for h in heads):
            raise ConfigError(f"exit_heads must be a sequence of head names, got {heads!r}.")
        heads = tuple(heads)
        if len(heads) != len(stages):
            raise ConfigError(
                f"exit_heads needs one head per early exit ({len(stages)}), got {len(heads)}."
            )
        thresholds = self.exit_thresholds
        if thresholds is not None:
            try:
                thresholds = tuple(float(t) for t in thresholds)
            except (TypeError, ValueError):
                raise ConfigError(
                    f"exit_thresholds must be numbers or None, got {self.exit_thresholds!r}."
                ) from None
            if len(thresholds) != len(stages) or any(not 0.0 <= t <= 1.0 for t in thresholds):
                raise ConfigError(
                    f"exit_thresholds needs one value in [0, 1] per early exit ({len(stages)}), "
                    f"got {thresholds}."
                )
        object.__setattr__(self, "exit_stages", stages)
        object.__setattr__(self, "exit_heads", heads)
        object.__setattr__(self, "exit_thresholds", thresholds)

    @property
    def num_exits(self) -> int:
        """Number of exits, the final classifier included."""
        return len(self.exit_stages) + 1

    @property
    def num_early_exits(self) -> int:
        """Number of early exits."""
        return len(self.exit_stages)

    def short_name(self) -> str:
        """A compact summary, e.g. ``exits@1:pool_linear,3:nachos``."""
        parts = ",".join(f"{s}:{h}" for s, h in zip(self.exit_stages, self.exit_heads))
        return f"exits@{parts or 'none'}"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serializable dictionary."""
        return {
            "exit_stages": list(self.exit_stages),
            "exit_heads": list(self.exit_heads),
            "exit_thresholds": None if self.exit_thresholds is None else list(self.exit_thresholds),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExitsConfig:
        """Rebuild from :meth:`to_dict` output.

        Raises:
            ConfigError: On unknown or missing keys, or invalid values.
        """
        _check_keys(
            data,
            known={"exit_stages", "exit_heads", "exit_thresholds"},
            required={"exit_stages", "exit_heads"},
            what="exits configuration",
        )
        return cls(**dict(data))

    def to_json(self) -> str:
        """JSON text of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ExitsConfig:
        """Rebuild from :meth:`to_json` output."""
        return cls.from_dict(json.loads(text))
