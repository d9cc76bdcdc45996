"""The validated settings of a NachosSampler, frozen once at construction."""

from __future__ import annotations

from dataclasses import dataclass

from optuna_nachos.samplers._surrogates import SURROGATE_NAMES

SELECTIONS = ("hypervolume", "spread")


@dataclass(frozen=True, kw_only=True)
class NachosSettings:
    """What a NACHOS round is told: the sampler's constructor arguments, checked and normalized.

    The arguments mean what they mean in :class:`~optuna_nachos.samplers.NachosSampler`; the
    search space and the latency table are not settings (they are objects the sampler holds).
    Limits are stored as floats (or ``None``), ``surrogates`` as a tuple.

    Raises:
        ValueError: On an invalid setting (an integer out of range, a non-positive limit, an
            unknown selection or surrogate, an exploration share outside [0, 1]).
    """

    num_classes: int = 10
    in_channels: int = 3
    cost_convention: str = "nachos"
    max_avg_macs: float | None = None
    min_accuracy: float | None = None
    max_peak_macs: float | None = None
    max_params: float | None = None
    accuracy_objective: int | None = None
    avg_macs_objective: int | None = None
    n_startup_trials: int = 100
    feasible_startup: bool = True
    batch_size: int = 8
    population_size: int = 40
    n_generations: int = 20
    selection: str = "hypervolume"
    exploration: float = 0.125
    surrogates: tuple[str, ...] = SURROGATE_NAMES
    n_folds: int = 5
    n_repeats: int = 3

    def __post_init__(self) -> None:
        for name, low in (
            ("n_startup_trials", 0),
            ("batch_size", 1),
            ("population_size", 2),
            ("n_generations", 0),
            ("n_folds", 2),
            ("n_repeats", 1),
            ("num_classes", 2),
            ("in_channels", 1),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")
        for name in ("max_avg_macs", "max_peak_macs", "max_params"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive (or None), got {value!r}.")
        if self.selection not in SELECTIONS:
            raise ValueError(
                f"selection must be 'hypervolume' or 'spread', got {self.selection!r}."
            )
        if not 0.0 <= self.exploration <= 1.0:
            raise ValueError(f"exploration must lie in [0, 1], got {self.exploration!r}.")
        surrogates = tuple(self.surrogates)
        unknown = [s for s in surrogates if s not in SURROGATE_NAMES]
        if not surrogates or unknown:
            raise ValueError(
                f"surrogates must be a non-empty selection of {SURROGATE_NAMES}, got {surrogates}."
            )
        # Normalized forms; the dataclass is frozen, so they are set through object.
        for name in ("max_avg_macs", "min_accuracy", "max_peak_macs", "max_params"):
            value = getattr(self, name)
            object.__setattr__(self, name, None if value is None else float(value))
        object.__setattr__(self, "exploration", float(self.exploration))
        object.__setattr__(self, "surrogates", surrogates)

    @property
    def n_explore(self) -> int:
        """Proposals of a round chosen to explore (the rest follow the predicted front)."""
        return min(int(round(self.exploration * self.batch_size)), self.batch_size)
