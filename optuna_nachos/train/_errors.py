"""Errors raised by the training layer."""

from __future__ import annotations

from collections.abc import Sequence


class TrainingDivergedError(RuntimeError):
    """Raised as soon as a training loss becomes NaN or infinite.

    Attributes:
        phase: Name of the training phase (``"backbone"``, ``"warmup"`` or ``"exits"``).
        epoch: 1-based epoch within that phase.
        batch: 0-based batch index within the epoch.
        terms: Names of the loss terms that are not finite.
        values: Values of those terms, in the order of ``terms``.
    """

    def __init__(
        self,
        *,
        phase: str,
        epoch: int,
        batch: int,
        terms: Sequence[str],
        values: Sequence[float],
        lr: float | None = None,
    ) -> None:
        self.phase = phase
        self.epoch = epoch
        self.batch = batch
        self.terms = tuple(terms)
        self.values = tuple(values)
        shown = ", ".join(f"{t}={v}" for t, v in zip(self.terms, self.values, strict=True))
        hint = f" (lr={lr:g})" if lr is not None else ""
        super().__init__(
            f"training diverged in phase {phase!r}, epoch {epoch}, batch {batch}: loss term(s) "
            f"{shown} not finite. Lower the learning rate{hint}, check the inputs for NaN or "
            "infinite values, or reduce the weight of the offending term."
        )
