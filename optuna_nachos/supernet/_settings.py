"""Settings of supernet training (frozen, validated)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from optuna_nachos._validate import check_integers, coerce_non_negative_floats
from optuna_nachos.models import list_exit_heads


@dataclass(frozen=True, kw_only=True)
class SupernetSettings:
    """How a weight-sharing supernet of the MobileNetV3 space is trained.

    Every step follows the sandwich rule (BigNAS): the largest subnet learns from the labels,
    the smallest and ``random_subnets`` random subnets learn from the largest's soft labels
    (in-place distillation), and the gradients of all of them are summed before one SGD step.
    The exit heads of every exit position learn jointly, on the detached stage features of
    every subnet of the step, so they never pull the shared backbone weights.

    Args:
        epochs: Passes over the training split.
        batch_size: Images per step (every subnet of the step sees the same batch).
        lr: Initial SGD learning rate (cosine decay to 0 over ``epochs``, stepped per batch).
        momentum: SGD momentum.
        weight_decay: SGD weight decay, applied to convolution and linear weights only.
        random_subnets: Random subnets per step, besides the largest and the smallest.
        distillation: Train the smaller subnets on the largest's soft labels (``True``) or on
            the labels (``False``).
        exit_heads: Exit head designs (registered names) the supernet holds for every exit
            position; a candidate with another design gets freshly initialized heads.
        recalibration_batches: Training batches used to recompute BatchNorm statistics of
            an extracted subnet (the default of :meth:`Supernet.extract`).
        amp: Mixed precision (bfloat16 autocast) on CUDA; ignored on the CPU.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ...
        seed: Seed of the initial weights, the subnet sampling, the shuffling and the
            augmentation; the same seed gives the same supernet on the CPU.
        progress: Show a progress bar; ``None`` shows it on an interactive terminal only.

    Raises:
        ValueError: If a setting is out of range; the message names it.
    """

    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 3e-5
    random_subnets: int = 2
    distillation: bool = True
    exit_heads: tuple[str, ...] = ("nachos",)
    recalibration_batches: int = 20
    amp: bool = True
    device: str = "auto"
    seed: int = 0
    progress: bool | None = None

    def __post_init__(self) -> None:
        check_integers(self, ("epochs", "batch_size", "recalibration_batches"), minimum=1)
        check_integers(self, ("random_subnets", "seed"), minimum=0)
        coerce_non_negative_floats(self, ("lr", "momentum", "weight_decay"))
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}.")
        if self.momentum >= 1:
            raise ValueError(f"momentum must lie in [0, 1), got {self.momentum!r}.")
        for name in ("distillation", "amp"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}.")
        if self.progress is not None and not isinstance(self.progress, bool):
            raise ValueError(f"progress must be a bool or None, got {self.progress!r}.")
        if not isinstance(self.device, str) or not self.device:
            raise ValueError(
                f"device must be 'auto' or a torch device string, got {self.device!r}."
            )
        heads = self.exit_heads
        if isinstance(heads, str) or not heads:
            raise ValueError(f"exit_heads must be a non-empty tuple of names, got {heads!r}.")
        known = list_exit_heads()
        unknown = [h for h in heads if h not in known]
        if unknown:
            raise ValueError(f"unknown exit heads {unknown}; registered heads: {known}.")
        object.__setattr__(self, "exit_heads", tuple(dict.fromkeys(heads)))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values of the settings."""
        data = asdict(self)
        data["exit_heads"] = list(self.exit_heads)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SupernetSettings:
        """Rebuild settings from :meth:`to_dict` output; missing keys take their defaults.

        Raises:
            ValueError: On unknown keys or invalid values.
        """
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(
                f"unknown SupernetSettings keys {sorted(unknown)}; known: {sorted(known)}."
            )
        values = dict(data)
        if "exit_heads" in values:
            values["exit_heads"] = tuple(values["exit_heads"])
        return cls(**values)
