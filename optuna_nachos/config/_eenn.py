"""The configuration of one early-exit network of the MobileNetV3 space."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from optuna_nachos._errors import UserError

NUM_STAGES = 5
"""Number of searchable stages of the MobileNetV3 backbone."""

MAX_DEPTH = 4
"""Largest number of layers a searchable stage can hold."""

EXIT_STAGES = (1, 2, 3, 4)
"""Stages after which an early exit may sit (the final classifier follows stage 5)."""


class ConfigError(UserError, ValueError):
    """Raised when a configuration or a search-space setting is invalid."""


def _as_int_tuple(values: Any, *, what: str) -> tuple[int, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ConfigError(f"{what} must be a sequence of integers, got {values!r}.")
    out = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int,)) and not _is_integral(value):
            raise ConfigError(f"{what} must hold integers, got {value!r} in {values!r}.")
        out.append(int(value))
    return tuple(out)


def _is_integral(value: Any) -> bool:
    try:
        return float(value).is_integer() and not isinstance(value, (str, bytes))
    except (TypeError, ValueError):
        return False


def _check_keys(data: Any, *, known: set[str], required: set[str], what: str) -> None:
    """Raise ``ConfigError`` unless ``data`` is a mapping with all ``required`` keys, no others.

    ``what`` names the configuration in the messages (``"configuration"``, ...).
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"expected a mapping, got {type(data).__name__}.")
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"unknown {what} keys {sorted(unknown)}; known: {sorted(known)}.")
    missing = required - set(data)
    if missing:
        raise ConfigError(f"{what} lacks the keys {sorted(missing)}.")


@dataclass(frozen=True)
class EENNConfig:
    """One early-exit network (EENN) of the MobileNetV3 search space.

    Only the layers a network really uses are stored: stage ``s`` holds ``depths[s]`` layers,
    and ``kernel_sizes[s]`` and ``expand_ratios[s]`` have exactly that many entries.

    Args:
        depths: Number of layers of each of the five searchable stages, each in ``1..4``.
        kernel_sizes: Depthwise kernel size of every layer, one tuple per stage (odd, >= 1).
        expand_ratios: Expand ratio of every layer, one tuple per stage (>= 1).
        exit_stages: Stages (1-based, among ``1..4``) followed by an early-exit classifier,
            sorted and without repeats. The final classifier after stage 5 always exists.
        resolution: Side of the square input image, in pixels.
        exit_head: Name of the early-exit classifier design, as registered in
            :mod:`optuna_nachos.models` (see
            :func:`~optuna_nachos.models.list_exit_heads`).
        exit_thresholds: Optional fixed exit thresholds, one per early exit (EDANAS-style
            threshold genes). ``None`` leaves the thresholds to calibration.

    Raises:
        ConfigError: If any field is malformed; the message says which and how to fix it.
    """

    depths: tuple[int, ...]
    kernel_sizes: tuple[tuple[int, ...], ...]
    expand_ratios: tuple[tuple[int, ...], ...]
    exit_stages: tuple[int, ...] = field(default=(1, 2, 3, 4))
    resolution: int = 32
    exit_head: str = "nachos"
    exit_thresholds: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        depths = _as_int_tuple(self.depths, what="depths")
        if len(depths) != NUM_STAGES:
            raise ConfigError(
                f"depths must have {NUM_STAGES} entries (one per stage), got {depths}."
            )
        for stage, depth in enumerate(depths, start=1):
            if not 1 <= depth <= MAX_DEPTH:
                raise ConfigError(
                    f"depth of stage {stage} must be between 1 and {MAX_DEPTH}, got {depth}."
                )
        kernels = self._per_layer(self.kernel_sizes, depths, what="kernel_sizes")
        for stage, stage_kernels in enumerate(kernels, start=1):
            for kernel in stage_kernels:
                if kernel < 1 or kernel % 2 == 0:
                    raise ConfigError(
                        f"kernel sizes must be odd positive integers, got {kernel} "
                        f"in stage {stage}."
                    )
        expands = self._per_layer(self.expand_ratios, depths, what="expand_ratios")
        for stage, stage_expands in enumerate(expands, start=1):
            for ratio in stage_expands:
                if ratio < 1:
                    raise ConfigError(
                        f"expand ratios must be integers >= 1, got {ratio} in stage {stage}."
                    )
        exits = _as_int_tuple(self.exit_stages, what="exit_stages")
        if list(exits) != sorted(set(exits)):
            raise ConfigError(f"exit_stages must be sorted and without repeats, got {exits}.")
        for stage in exits:
            if stage not in EXIT_STAGES:
                raise ConfigError(
                    f"an early exit can follow stages {EXIT_STAGES} only, got stage {stage}."
                )
        if isinstance(self.resolution, bool) or not _is_integral(self.resolution):
            raise ConfigError(f"resolution must be an integer, got {self.resolution!r}.")
        resolution = int(self.resolution)
        if resolution < 8:
            raise ConfigError(f"resolution must be at least 8 pixels, got {resolution}.")
        if not isinstance(self.exit_head, str) or not self.exit_head:
            raise ConfigError(f"exit_head must be a head name, got {self.exit_head!r}.")
        thresholds = self.exit_thresholds
        if thresholds is not None:
            try:
                if isinstance(thresholds, (str, bytes)):
                    raise TypeError
                thresholds = tuple(float(t) for t in thresholds)
            except (TypeError, ValueError):
                raise ConfigError(
                    "exit_thresholds must be a sequence of numbers (one per early exit) or None, "
                    f"got {self.exit_thresholds!r}."
                ) from None
            if len(thresholds) != len(exits):
                raise ConfigError(
                    f"exit_thresholds must have one entry per early exit ({len(exits)}), "
                    f"got {len(thresholds)}."
                )
            if any(not 0.0 <= t <= 1.0 for t in thresholds):
                raise ConfigError(f"exit thresholds must lie in [0, 1], got {thresholds}.")
        object.__setattr__(self, "depths", depths)
        object.__setattr__(self, "kernel_sizes", kernels)
        object.__setattr__(self, "expand_ratios", expands)
        object.__setattr__(self, "exit_stages", exits)
        object.__setattr__(self, "resolution", resolution)
        object.__setattr__(self, "exit_thresholds", thresholds)

    @staticmethod
    def _per_layer(
        values: Any, depths: tuple[int, ...], *, what: str
    ) -> tuple[tuple[int, ...], ...]:
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise ConfigError(f"{what} must be one sequence per stage, got {values!r}.")
        if len(values) != NUM_STAGES:
            raise ConfigError(f"{what} must have {NUM_STAGES} entries (one per stage).")
        out = []
        for stage, (stage_values, depth) in enumerate(zip(values, depths), start=1):
            stage_tuple = _as_int_tuple(stage_values, what=f"{what} of stage {stage}")
            if len(stage_tuple) != depth:
                raise ConfigError(
                    f"{what} of stage {stage} must have one entry per layer ({depth}), "
                    f"got {len(stage_tuple)}."
                )
            out.append(stage_tuple)
        return tuple(out)

    @property
    def num_exits(self) -> int:
        """Number of exits, the final classifier included."""
        return len(self.exit_stages) + 1

    @property
    def num_early_exits(self) -> int:
        """Number of early exits (the final classifier excluded)."""
        return len(self.exit_stages)

    def short_name(self) -> str:
        """A compact, human-readable summary, e.g. ``d23423 [36,54|...] exits@1,3 r32``."""
        layers = "|".join(
            ",".join(f"{k}{e}" for k, e in zip(ks, es))
            for ks, es in zip(self.kernel_sizes, self.expand_ratios)
        )
        exits = ",".join(str(s) for s in self.exit_stages) or "none"
        return f"d{''.join(map(str, self.depths))} [{layers}] exits@{exits} r{self.resolution}"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serializable dictionary (lists, ints, floats, strings)."""
        return {
            "depths": list(self.depths),
            "kernel_sizes": [list(ks) for ks in self.kernel_sizes],
            "expand_ratios": [list(es) for es in self.expand_ratios],
            "exit_stages": list(self.exit_stages),
            "resolution": self.resolution,
            "exit_head": self.exit_head,
            "exit_thresholds": None if self.exit_thresholds is None else list(self.exit_thresholds),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EENNConfig:
        """Rebuild a configuration from :meth:`to_dict` output (or its JSON round trip).

        Raises:
            ConfigError: If keys are missing or unknown, or a value is invalid.
        """
        known = {
            "depths",
            "kernel_sizes",
            "expand_ratios",
            "exit_stages",
            "resolution",
            "exit_head",
            "exit_thresholds",
        }
        required = {"depths", "kernel_sizes", "expand_ratios"}
        _check_keys(data, known=known, required=required, what="configuration")
        return cls(**dict(data))

    def to_json(self) -> str:
        """JSON text of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> EENNConfig:
        """Rebuild a configuration from :meth:`to_json` output."""
        return cls.from_dict(json.loads(text))
