"""Checking a suite's output: schema, a non-empty admissible front, figures on disk."""

from __future__ import annotations

import json
from pathlib import Path

from optuna_nachos.benchmark._summary import FIGURES_DIR, MARKDOWN_FILE, RESULTS_FILE, SCHEMA

_TOP_KEYS = ("schema", "suite", "environment", "parts", "experiments", "efficiency", "figures")
_RUN_KEYS = ("seed", "study", "trials", "trained", "admissible", "hypervolume", "best", "front")


def check_results(out_dir: str | Path, *, main_experiment: str | None = None) -> list[str]:
    """Problems found in a suite's output folder; an empty list means it is complete.

    Checks that ``results.json`` has the expected schema and keys, that every experiment ran
    for every seed, that the main experiment (the suite's efficiency experiment by default)
    has a non-empty admissible front, that the figures it lists exist, that the suite's
    supernet (if it has one) finished training, and that ``results.md`` was written.
    """
    out_dir = Path(out_dir)
    path = out_dir / RESULTS_FILE
    if not path.is_file():
        return [f"{path} is missing: run the suite first."]
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        return [f"{path} is not valid JSON: {error}"]
    problems = [f"results.json lacks {key!r}" for key in _TOP_KEYS if key not in record]
    if problems:
        return problems
    if record["schema"] != SCHEMA:
        problems.append(f"schema is {record['schema']!r}, expected {SCHEMA!r}")
    supernet = record.get("supernet")
    if supernet and not supernet["complete"]:
        problems.append(
            f"the supernet trained {supernet['epochs_done']} of {supernet['epochs_planned']} "
            "epochs: run --part supernet again"
        )
    seeds = record["suite"]["seeds"]
    for experiment in record["experiments"]:
        ran = [run["seed"] for run in experiment["runs"]]
        if sorted(ran) != sorted(seeds):
            problems.append(f"experiment {experiment['name']!r} ran seeds {ran}, expected {seeds}")
        for run in experiment["runs"]:
            missing = [key for key in _RUN_KEYS if key not in run]
            if missing:
                problems.append(f"{run.get('study', experiment['name'])} lacks {missing}")
    main = main_experiment or (record["efficiency"].get("network") or {}).get("experiment")
    if main is None and record["experiments"]:
        main = record["experiments"][0]["name"]
    fronts = [
        run["front"]
        for experiment in record["experiments"]
        if experiment["name"] == main
        for run in experiment["runs"]
    ]
    if not any(fronts):
        problems.append(f"the admissible front of {main!r} is empty in every run")
    if not record["figures"]:
        problems.append(f"no figures were written under {FIGURES_DIR}/")
    for name, relative in record["figures"].items():
        if not (out_dir / relative).is_file():
            problems.append(f"figure {name!r} listed but {relative} is missing")
    if not (out_dir / MARKDOWN_FILE).is_file():
        problems.append(f"{MARKDOWN_FILE} is missing")
    return problems
