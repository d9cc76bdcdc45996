"""Choosing exit thresholds on cached exit outputs (DESIGN 2.4, "Thresholds")."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from optuna_nachos._pareto import cheapest_first_front
from optuna_nachos.models import cumulative_confidence, select_exits
from optuna_nachos.train._evaluation import average_macs_of, check_exit_costs, exit_ratios_of
from optuna_nachos.train._inference import ExitOutputs

SEARCH_CALIBRATIONS = ("search", "nachos", "global")
"""Calibration methods a search chooses from: per-exit search, the reference's rule, one
threshold for every exit."""

CALIBRATION_METHODS = (*SEARCH_CALIBRATIONS, "fixed")
"""Threshold calibration methods of :func:`calibrate_thresholds` (``"fixed"`` evaluates the
thresholds a configuration carries)."""


def check_search_calibration(method: str) -> None:
    """Raise a :class:`ValueError` unless ``method`` is one of :data:`SEARCH_CALIBRATIONS`."""
    if method not in SEARCH_CALIBRATIONS:
        raise ValueError(
            f"calibration must be one of {', '.join(map(repr, SEARCH_CALIBRATIONS))}, "
            f"got {method!r}."
        )


NACHOS_GRID = (0.1, 0.2, 0.3, 0.5, 0.6, 0.7, 0.8)
"""Global thresholds the reference tries (``method="nachos"``)."""

NACHOS_FIRST_EXIT_MIN = 0.7
"""Smallest threshold of the first exit in the reference's global grid."""

NACHOS_STEP = 0.1
"""Step by which the reference's repair lowers a threshold."""

_ACC_TOL = 1e-12
_MACS_RTOL = 1e-9


@dataclass(frozen=True)
class Calibration:
    """Thresholds chosen by :func:`calibrate_thresholds`, and their figures on the
    calibration split.

    Attributes:
        thresholds: One threshold per early exit (1.0 disables an exit).
        method: ``"search"``, ``"nachos"``, ``"global"`` or ``"fixed"``.
        accuracy: Accuracy with early exiting on the calibration split.
        avg_macs: Average MACs on the calibration split.
        exit_ratios: Fraction of the calibration samples leaving at each exit.
        feasible: Whether both constraints hold on the calibration split.
        reason: Why the constraints do not hold (``None`` when feasible).
        max_avg_macs: The average-MAC budget, if any.
        min_accuracy: The accuracy floor, if any.
    """

    thresholds: tuple[float, ...]
    method: str
    accuracy: float
    avg_macs: float
    exit_ratios: tuple[float, ...]
    feasible: bool
    reason: str | None
    max_avg_macs: float | None
    min_accuracy: float | None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serializable dictionary."""
        return {
            "thresholds": [float(t) for t in self.thresholds],
            "method": self.method,
            "accuracy": float(self.accuracy),
            "avg_macs": float(self.avg_macs),
            "exit_ratios": [float(r) for r in self.exit_ratios],
            "feasible": bool(self.feasible),
            "reason": self.reason,
            "max_avg_macs": None if self.max_avg_macs is None else float(self.max_avg_macs),
            "min_accuracy": None if self.min_accuracy is None else float(self.min_accuracy),
        }


@dataclass(frozen=True)
class OperatingPoint:
    """One threshold setting on the accuracy / average-MACs curve.

    Attributes:
        thresholds: One threshold per early exit.
        accuracy: Accuracy with early exiting.
        avg_macs: Average MACs per sample.
        exit_ratios: Fraction of samples leaving at each exit.
    """

    thresholds: tuple[float, ...]
    accuracy: float
    avg_macs: float
    exit_ratios: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serializable dictionary."""
        return {
            "thresholds": [float(t) for t in self.thresholds],
            "accuracy": float(self.accuracy),
            "avg_macs": float(self.avg_macs),
            "exit_ratios": [float(r) for r in self.exit_ratios],
        }


class _Table:
    """Cached arrays of one split, for evaluating many threshold settings cheaply."""

    def __init__(self, outputs: ExitOutputs, costs: tuple[float, ...]) -> None:
        if not torch.isfinite(outputs.confidences).all():
            raise ValueError("exit confidences contain NaN or infinite values.")
        self.confidences = outputs.confidences
        self.cum = cumulative_confidence(outputs.confidences[:, :-1])  # (N, K)
        self.n = outputs.num_samples
        self.k = outputs.num_exits - 1
        self.correct = outputs.correct.to(torch.float64)  # (N, E)
        self.costs = torch.tensor(costs, dtype=torch.float64)
        self.costs_tuple = costs
        self.rows = torch.arange(self.n)
        self.order = [torch.argsort(self.cum[:, j]) for j in range(self.k)]
        self.sorted = [self.cum[self.order[j], j] for j in range(self.k)]

    # -- exact evaluation through the shared exit rule --------------------------------------
    def point(self, thresholds: torch.Tensor) -> tuple[float, float, tuple[float, ...]]:
        exits = select_exits(self.confidences, thresholds)
        accuracy = float(self.correct[self.rows, exits].mean()) if self.n else 0.0
        ratios = exit_ratios_of(exits, self.k + 1)
        return accuracy, average_macs_of(self.costs_tuple, ratios), ratios

    def fires(self, thresholds: torch.Tensor) -> torch.Tensor:
        """Bool (N, K): whether each early exit's rule fires, exactly as ``select_exits``."""
        eps = thresholds.to(torch.float64)
        fires = self.cum >= eps.to(self.cum.dtype)
        return fires & (eps < 1.0)

    def quantile_grid(self, j: int, size: int) -> torch.Tensor:
        """Candidate thresholds of exit ``j``: quantiles of its cumulative confidence, 0, 1."""
        values = self.sorted[j]
        if self.n:
            positions = torch.linspace(0, self.n - 1, max(2, size)).round().long()
            picked = values[positions].to(torch.float64)
        else:
            picked = torch.empty(0, dtype=torch.float64)
        grid = torch.cat([picked, torch.tensor([0.0, 1.0], dtype=torch.float64)])
        return torch.unique(grid.clamp(0.0, 1.0))

    def sweep(
        self, thresholds: torch.Tensor, j: int, candidates: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Accuracy and average MACs of every candidate threshold of exit ``j``, the others
        fixed, in one vectorized pass (a sort-free suffix sum over the cached order)."""
        fires = self.fires(thresholds)
        exits_f = torch.cat([fires, torch.ones(self.n, 1, dtype=torch.bool)], dim=1)
        before = fires[:, :j].any(dim=1)
        first_before = fires[:, :j].to(torch.int8).argmax(dim=1) if j else self.rows * 0
        after = j + 1 + exits_f[:, j + 1 :].to(torch.int8).argmax(dim=1)
        fallback = torch.where(before, first_before, after)
        base_correct = self.correct[self.rows, fallback].sum()
        base_cost = self.costs[fallback].sum()
        reach = (~before).to(torch.float64)
        d_correct = (self.correct[:, j] - self.correct[self.rows, after]) * reach
        d_cost = (self.costs[j] - self.costs[after]) * reach
        order = self.order[j]
        zero = torch.zeros(1, dtype=torch.float64)
        suffix_correct = torch.cat([d_correct[order].flip(0).cumsum(0).flip(0), zero])
        suffix_cost = torch.cat([d_cost[order].flip(0).cumsum(0).flip(0), zero])
        position = torch.searchsorted(self.sorted[j], candidates.to(self.cum.dtype), side="left")
        position = torch.where(candidates < 1.0, position, torch.full_like(position, self.n))
        accuracy = (base_correct + suffix_correct[position]) / self.n
        macs = (base_cost + suffix_cost[position]) / self.n
        return accuracy, macs


def _best_index(
    accuracy: torch.Tensor,
    macs: torch.Tensor,
    budget: float | None,
    floor: float | None,
    *,
    prefer: int | None = None,
) -> int:
    """Index of the lexicographic best: least budget overrun, then least shortfall below the
    floor, then most accurate, then cheapest; ``prefer`` wins ties, else the middle of the
    tied candidates."""
    tied = torch.ones_like(accuracy, dtype=torch.bool)
    if budget is not None:
        overrun = torch.clamp(macs - budget, min=0.0) / budget
        tied &= overrun <= overrun[tied].min() + _MACS_RTOL
    if floor is not None:
        shortfall = torch.clamp(floor - accuracy, min=0.0)
        tied &= shortfall <= shortfall[tied].min() + _ACC_TOL
    top = accuracy[tied].max()
    tied &= accuracy >= top - _ACC_TOL
    cheapest = macs[tied].min()
    tied &= macs <= cheapest + _MACS_RTOL * max(1.0, abs(float(cheapest)))
    if prefer is not None and bool(tied[prefer]):
        return prefer
    indices = torch.nonzero(tied).flatten()
    return int(indices[len(indices) // 2])


class _Recorder:
    def __init__(self) -> None:
        self.thresholds: list[torch.Tensor] = []
        self.accuracy: list[torch.Tensor] = []
        self.macs: list[torch.Tensor] = []

    def add(self, thresholds: torch.Tensor, accuracy: torch.Tensor, macs: torch.Tensor) -> None:
        self.thresholds.append(thresholds)
        self.accuracy.append(accuracy)
        self.macs.append(macs)


def _coordinate_search(
    table: _Table,
    starts: Sequence[torch.Tensor],
    grids: Sequence[torch.Tensor],
    *,
    budget: float | None,
    floor: float | None,
    max_sweeps: int = 30,
    recorder: _Recorder | None = None,
) -> torch.Tensor:
    """Coordinate descent over per-exit candidate grids from several starts; the best result
    (least violation, then most accurate, then cheapest) over all starts."""
    results: list[torch.Tensor] = []
    for start in starts:
        thresholds = start.clone().to(torch.float64)
        for sweep in range(max_sweeps):
            changed = False
            exits = range(table.k - 1, -1, -1) if sweep % 2 == 0 else range(table.k)
            for j in exits:
                candidates = torch.cat([grids[j], thresholds[j : j + 1]])
                accuracy, macs = table.sweep(thresholds, j, candidates)
                if recorder is not None:
                    settings = thresholds.repeat(len(candidates), 1)
                    settings[:, j] = candidates
                    recorder.add(settings, accuracy, macs)
                best = _best_index(accuracy, macs, budget, floor, prefer=len(candidates) - 1)
                if best != len(candidates) - 1 and float(candidates[best]) != float(thresholds[j]):
                    thresholds[j] = candidates[best]
                    changed = True
            if not changed:
                break
        results.append(thresholds)
    points = [table.point(t) for t in results]
    accuracy = torch.tensor([p[0] for p in points], dtype=torch.float64)
    macs = torch.tensor([p[1] for p in points], dtype=torch.float64)
    return results[_best_index(accuracy, macs, budget, floor, prefer=0)]


def _nachos_global(table: _Table) -> tuple[list[float], float, float]:
    """The reference's global grid: the most accurate of ``[max(e, 0.7), e, e, ...]``."""
    best: tuple[list[float], float, float] | None = None
    for eps in NACHOS_GRID:
        thresholds = [max(eps, NACHOS_FIRST_EXIT_MIN)] + [eps] * (table.k - 1)
        accuracy, macs, _ = table.point(torch.tensor(thresholds, dtype=torch.float64))
        if best is None or accuracy > best[1]:
            best = (thresholds, accuracy, macs)
    assert best is not None
    return best


def _nachos_thresholds(table: _Table, *, budget: float | None, floor: float | None) -> torch.Tensor:
    if table.k == 0:
        return torch.zeros(0, dtype=torch.float64)
    thresholds, accuracy, macs = _nachos_global(table)
    if budget is None or (floor is not None and accuracy < floor):
        return torch.tensor(thresholds, dtype=torch.float64)
    i = table.k - 1
    while i >= 0 and macs > budget:
        candidate = list(thresholds)
        candidate[i] = max(0.0, round(candidate[i] - NACHOS_STEP, 10))
        cand_accuracy, cand_macs, _ = table.point(torch.tensor(candidate, dtype=torch.float64))
        if floor is not None and cand_accuracy < floor:
            i -= 1
            continue
        thresholds, accuracy, macs = candidate, cand_accuracy, cand_macs
        if thresholds[i] <= NACHOS_STEP + 1e-9:
            i -= 1
    return torch.tensor(thresholds, dtype=torch.float64)


def _global_thresholds(
    table: _Table, *, budget: float | None, floor: float | None, max_levels: int = 4096
) -> torch.Tensor:
    """One threshold shared by every early exit (SDN-style), the best over every distinct
    level (or ``max_levels`` quantiles of them on large splits)."""
    # With one shared level eps, a sample leaves at the first exit whose running maximum of
    # cumulative confidence reaches eps, so only those running maxima matter.
    running_max = torch.cummax(table.cum, dim=1).values
    levels = torch.unique(
        torch.cat([running_max.flatten(), torch.tensor([0.0, 1.0], dtype=table.cum.dtype)])
    ).to(torch.float64)
    if len(levels) > max_levels:
        positions = torch.linspace(0, len(levels) - 1, max_levels).round().long()
        levels = levels[positions]
    accuracy, macs = [], []
    for chunk in torch.split(levels, 256):
        exits = (running_max[:, None, :].to(torch.float64) < chunk[None, :, None]).sum(dim=2)
        exits = torch.where(chunk[None, :] < 1.0, exits, torch.full_like(exits, table.k))
        accuracy.append(table.correct.gather(1, exits).mean(dim=0))
        macs.append(table.costs[exits].mean(dim=0))
    best = _best_index(torch.cat(accuracy), torch.cat(macs), budget, floor)
    return torch.full((table.k,), float(levels[best]), dtype=torch.float64)


def _search_starts(
    table: _Table, grids: Sequence[torch.Tensor], *, restarts: int, seed: int
) -> list[torch.Tensor]:
    k = table.k
    starts = [
        torch.ones(k, dtype=torch.float64),
        torch.zeros(k, dtype=torch.float64),
        torch.tensor(_nachos_global(table)[0], dtype=torch.float64),
    ]
    for level in (0.5, 0.8, 0.95):
        position = min(table.n - 1, round(level * (table.n - 1)))
        starts.append(
            torch.tensor([float(table.sorted[j][position]) for j in range(k)], dtype=torch.float64)
        )
    rng = np.random.default_rng(seed)
    for _ in range(restarts):
        starts.append(
            torch.tensor(
                [float(grid[rng.integers(len(grid))]) for grid in grids], dtype=torch.float64
            )
        )
    return starts


def _check_constraints(max_avg_macs: float | None, min_accuracy: float | None) -> None:
    if max_avg_macs is not None and not (max_avg_macs > 0 and np.isfinite(max_avg_macs)):
        raise ValueError(f"max_avg_macs must be a positive number, got {max_avg_macs!r}.")
    if min_accuracy is not None and not 0.0 <= min_accuracy <= 1.0:
        raise ValueError(f"min_accuracy must lie in [0, 1], got {min_accuracy!r}.")


def _infeasibility(
    *,
    accuracy: float,
    macs: float,
    costs: tuple[float, ...],
    budget: float | None,
    floor: float | None,
    method: str,
) -> str | None:
    over_budget = budget is not None and macs > budget * (1 + _MACS_RTOL)
    under_floor = floor is not None and accuracy < floor - _ACC_TOL
    if not over_budget and not under_floor:
        return None
    if over_budget:
        cheapest = min(costs)
        if budget < cheapest * (1 - _MACS_RTOL):
            exit_index = costs.index(cheapest)
            return (
                f"max_avg_macs={budget:.6g} is below the cost of the cheapest exit (exit "
                f"{exit_index}: {cheapest:.6g} MACs): the budget cannot be met even with every "
                "sample leaving at the first exit."
            )
        if method == "nachos":
            return (
                f"the NACHOS repair stopped at {macs:.6g} average MACs > max_avg_macs="
                f"{budget:.6g}: lowering thresholds further would drop the accuracy below "
                f"min_accuracy={floor}, or every threshold was already lowered."
            )
        return (
            f"no threshold setting found meets max_avg_macs={budget:.6g} while keeping "
            f"accuracy >= min_accuracy={floor}; the closest reaches {macs:.6g} MACs at "
            f"accuracy {accuracy:.4f}."
        )
    within = f" within max_avg_macs={budget:.6g}" if budget is not None else ""
    return (
        f"no threshold setting{within} reaches min_accuracy={floor:.4f}; the best found "
        f"reaches {accuracy:.4f} ({macs:.6g} average MACs)."
    )


def calibrate_thresholds(
    outputs: ExitOutputs,
    exit_costs: Sequence[float],
    *,
    max_avg_macs: float | None = None,
    min_accuracy: float | None = None,
    method: str = "search",
    thresholds: Sequence[float] | None = None,
    grid_size: int = 64,
    restarts: int = 4,
    seed: int = 0,
) -> Calibration:
    """Choose one exit threshold per early exit on a calibration split.

    ``method="search"`` (default) looks for the most accurate per-exit thresholds with
    average MACs ``<= max_avg_macs`` and accuracy ``>= min_accuracy``: coordinate descent,
    each step choosing the best threshold of one exit (the others fixed) among the quantiles
    of that exit's cumulative confidence on the split (``grid_size`` levels) plus 0 and 1
    (disabled), evaluated for all candidates at once on the cached arrays. Moves must
    improve lexicographically (budget overrun, then shortfall below the floor, then accuracy,
    then MACs), so it terminates; it runs from several starts (every exit disabled, every
    sample at the first exit, the NACHOS global choice, the best shared threshold of
    ``method="global"``, uniform confidence quantiles, ``restarts`` random grid points) and
    keeps the best. When no setting satisfies the constraints, the least
    violating one is returned with ``feasible=False``.

    ``method="nachos"`` reproduces the reference, with its bugs fixed:

    1. For every ``e`` in :data:`NACHOS_GRID` try ``[max(e, 0.7), e, ..., e]``; keep the most
       accurate (the first in grid order on ties).
    2. If a budget is given and that accuracy is at least ``min_accuracy``: with ``i`` the
       last early exit, while ``i >= 0`` and the average MACs exceed the budget, propose
       ``thresholds[i] - 0.1`` (not below 0). If the proposal's accuracy falls below
       ``min_accuracy``, reject it (the reference keeps it by aliasing) and move to
       ``i - 1``; else accept it, and move to ``i - 1`` once ``thresholds[i] <= 0.1``.

    ``method="global"`` uses one threshold for every early exit (as SDN-style baselines do):
    the best, in the same lexicographic order as the search, over every distinct level.

    ``method="fixed"`` keeps the given ``thresholds`` (for example EDANAS threshold genes)
    and only evaluates them.

    Args:
        outputs: Exit outputs of the calibration split (the validation split).
        exit_costs: MACs of a sample leaving at each exit.
        max_avg_macs: Average-MAC budget; ``None`` for none.
        min_accuracy: Accuracy floor in ``[0, 1]``; ``None`` for none.
        method: ``"search"``, ``"nachos"``, ``"global"`` or ``"fixed"``.
        thresholds: The thresholds of ``method="fixed"``, one per early exit.
        grid_size: Quantile levels per exit of the search.
        restarts: Random starts of the search, besides the fixed ones.
        seed: Seed of the random starts.

    Returns:
        The thresholds, their accuracy, average MACs and exit ratios on ``outputs``, and
        whether the constraints hold (with the reason when they do not).
    """
    if method not in CALIBRATION_METHODS:
        raise ValueError(f"method must be one of {CALIBRATION_METHODS}, got {method!r}.")
    _check_constraints(max_avg_macs, min_accuracy)
    costs = check_exit_costs(exit_costs, outputs.num_exits)
    if outputs.num_samples == 0:
        raise ValueError("cannot calibrate thresholds on an empty split.")
    if (method == "fixed") != (thresholds is not None):
        raise ValueError(
            "pass thresholds=... exactly when method='fixed' (the thresholds to evaluate)."
        )
    table = _Table(outputs, costs)
    budget = None if max_avg_macs is None else float(max_avg_macs)
    floor = None if min_accuracy is None else float(min_accuracy)
    if method == "fixed":
        chosen = torch.tensor([float(t) for t in thresholds], dtype=torch.float64)
        if chosen.shape != (table.k,) or not bool(((chosen >= 0) & (chosen <= 1)).all()):
            raise ValueError(
                f"method='fixed' needs {table.k} thresholds in [0, 1] (one per early exit), "
                f"got {list(thresholds)}."
            )
    elif table.k == 0:
        chosen = torch.zeros(0, dtype=torch.float64)
    elif method == "nachos":
        chosen = _nachos_thresholds(table, budget=budget, floor=floor)
    elif method == "global":
        chosen = _global_thresholds(table, budget=budget, floor=floor)
    else:
        grids = [table.quantile_grid(j, grid_size) for j in range(table.k)]
        starts = _search_starts(table, grids, restarts=restarts, seed=seed)
        starts.append(_global_thresholds(table, budget=budget, floor=floor))
        chosen = _coordinate_search(table, starts, grids, budget=budget, floor=floor)
    accuracy, macs, ratios = table.point(chosen)
    reason = _infeasibility(
        accuracy=accuracy, macs=macs, costs=costs, budget=budget, floor=floor, method=method
    )
    return Calibration(
        thresholds=tuple(float(t) for t in chosen.tolist()),
        method=method,
        accuracy=accuracy,
        avg_macs=macs,
        exit_ratios=ratios,
        feasible=reason is None,
        reason=reason,
        max_avg_macs=budget,
        min_accuracy=floor,
    )


def _front_indices(accuracy: torch.Tensor, macs: torch.Tensor) -> torch.Tensor:
    """Indices of the non-dominated points, cheapest first (ties: the most accurate)."""
    keep = cheapest_first_front(macs.numpy(), accuracy.numpy(), tol=_ACC_TOL)
    return torch.as_tensor(keep)


def operating_curve(
    outputs: ExitOutputs,
    exit_costs: Sequence[float],
    *,
    num_budgets: int = 16,
    grid_size: int = 64,
    seed: int = 0,
) -> list[OperatingPoint]:
    """The accuracy / average-MACs Pareto curve of threshold settings on one split.

    Runs the threshold search of :func:`calibrate_thresholds` for ``num_budgets`` budgets
    spread between the cheapest and the dearest exit, keeps every setting it evaluates, and
    returns the non-dominated ones (no other setting is both cheaper and at least as
    accurate), cheapest first, each re-evaluated through the shared exit rule.

    Args:
        outputs: Exit outputs of one split.
        exit_costs: MACs of a sample leaving at each exit.
        num_budgets: Budgets to search for.
        grid_size: Quantile levels per exit.
        seed: Seed of the random starts.

    Returns:
        Operating points, by increasing average MACs and increasing accuracy.
    """
    costs = check_exit_costs(exit_costs, outputs.num_exits)
    if outputs.num_samples == 0:
        raise ValueError("cannot compute an operating curve on an empty split.")
    table = _Table(outputs, costs)
    if table.k == 0:
        accuracy, macs, ratios = table.point(torch.zeros(0))
        return [OperatingPoint((), accuracy, macs, ratios)]
    grids = [table.quantile_grid(j, grid_size) for j in range(table.k)]
    recorder = _Recorder()
    fixed = _search_starts(table, grids, restarts=0, seed=seed)
    previous = fixed[0]
    for level in np.linspace(min(costs), max(costs), max(2, num_budgets)):
        previous = _coordinate_search(
            table,
            [previous, *fixed[1:3]],
            grids,
            budget=float(level) if level > 0 else None,
            floor=None,
            max_sweeps=10,
            recorder=recorder,
        )
    settings = torch.cat(recorder.thresholds)
    accuracy = torch.cat(recorder.accuracy)
    macs = torch.cat(recorder.macs)
    front = _front_indices(accuracy, macs)
    points = []
    for setting in settings[front]:
        point_accuracy, point_macs, ratios = table.point(setting)
        points.append(OperatingPoint(tuple(setting.tolist()), point_accuracy, point_macs, ratios))
    keep = _front_indices(
        torch.tensor([p.accuracy for p in points], dtype=torch.float64),
        torch.tensor([p.avg_macs for p in points], dtype=torch.float64),
    )
    return [points[int(i)] for i in keep]
