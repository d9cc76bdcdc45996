"""Benchmark of the non-domination helpers: the sampler's hand-written sorts against Optuna's.

Measures, in one run:

(a) the constrained non-dominated sort of the NACHOS sampler's NSGA-II (``constrained_ranks``)
    before and after it moved onto Optuna's ``_fast_non_domination_rank``, on random pools of
    predicted objectives and violations (2 and 3 objectives), checking that the ranks agree;
(b) ``select_hypervolume`` (the sampler's greedy hypervolume subset selection) on a
    3-objective pool of 800 candidates and on the 2-objective pool of a round, before
    (greedy over every candidate with a recursive hypervolume) and after (Pareto filtering,
    then the same greedy on Optuna's hypervolume), checking that the choices agree.

The earlier implementation is read from the repository's history (``--before``, a commit),
so it is not kept in the package.

Usage::

    python benchmarks/bench_pareto.py [--out FILE] [--before COMMIT] [--repeats 5]

Writes ``benchmarks/results/pareto.json`` by default.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from optuna_nachos.benchmark import cpu_model
from optuna_nachos.samplers import _nsga2 as after

ROOT = Path(__file__).resolve().parent.parent
BEFORE = "9d48889"
"""The last commit with the hand-written sorts and hypervolume."""


def load_before(commit: str) -> types.ModuleType:
    """The sampler's NSGA-II module as it was at ``commit``."""
    source = subprocess.run(
        ["git", "show", f"{commit}:optuna_nachos/samplers/_nsga2.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    module = types.ModuleType("nsga2_before")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, "nsga2_before", "exec"), module.__dict__)
    return module


def best_of(fn: Callable[..., Any], repeats: int, *args: Any, **kwargs: Any) -> tuple[float, Any]:
    """Shortest wall time of ``repeats`` calls ``fn(*args, **kwargs)``, and the last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn(*args, **kwargs)
        best = min(best, time.perf_counter() - started)
    return best, result


def pool(rng: np.random.Generator, n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Predicted objectives (minimized) and violations of ``n`` candidates."""
    objectives = rng.random((n, m))
    violations = np.where(rng.random(n) < 0.3, rng.random(n), 0.0)
    return objectives, violations


def bench_ranks(before: types.ModuleType, repeats: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    rows = []
    for n, m in ((80, 2), (800, 2), (800, 3), (2000, 3)):
        f, v = pool(rng, n, m)
        old_s, old = best_of(before.constrained_ranks, repeats, f, v)
        new_s, new = best_of(after.constrained_ranks, repeats, f, v)
        mismatches = 0
        for seed in range(300):
            cf, cv = pool(np.random.default_rng(seed), int(n), m)
            if seed % 2:  # ties and duplicates
                cf = np.round(cf * 4) / 4
            mismatches += not np.array_equal(
                before.constrained_ranks(cf, cv), after.constrained_ranks(cf, cv)
            )
        rows.append(
            {
                "n": n,
                "objectives": m,
                "before_ms": old_s * 1e3,
                "after_ms": new_s * 1e3,
                "speedup": old_s / new_s,
                "same_ranks": bool(np.array_equal(old, new)),
                "mismatched_cases_of_300": mismatches,
            }
        )
        print(
            f"constrained ranks n={n} m={m}: {old_s * 1e3:.2f} ms -> {new_s * 1e3:.2f} ms "
            f"({old_s / new_s:.1f}x), mismatches {mismatches}/300"
        )
    return rows


def bench_selection(before: types.ModuleType, repeats: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(1)
    rows = []
    for n, m, k in ((800, 3, 8), (320, 2, 8)):
        f, v = pool(rng, n, m)
        front = rng.random((6, m)) * 0.5 + 0.5
        reference = np.full(m, 1.1)
        args = (f, v, k)
        kwargs = {"front": front, "reference": reference}
        old_s, old = best_of(before.select_hypervolume, 1, *args, **kwargs)
        new_s, new = best_of(after.select_hypervolume, repeats, *args, **kwargs)
        rows.append(
            {
                "n": n,
                "objectives": m,
                "k": k,
                "before_s": old_s,
                "after_s": new_s,
                "speedup": old_s / new_s,
                "same_choice": old.tolist() == new.tolist(),
            }
        )
        print(
            f"select_hypervolume n={n} m={m} k={k}: {old_s:.3f} s -> {new_s * 1e3:.1f} ms "
            f"({old_s / new_s:.0f}x), same choice {old.tolist() == new.tolist()}"
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/pareto.json"))
    parser.add_argument("--before", default=BEFORE, help="commit of the earlier implementation")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    before = load_before(args.before)
    results = {
        "machine": {"cpu": cpu_model(), "python": platform.python_version()},
        "before_commit": args.before,
        "constrained_ranks": bench_ranks(before, args.repeats),
        "select_hypervolume": bench_selection(before, args.repeats),
    }
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
