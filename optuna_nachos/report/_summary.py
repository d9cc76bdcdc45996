"""What a report says about a study: counts, settings, the admissible front, the trade-offs.

The summary is computed once (:func:`summarize`) and rendered as Markdown (the dashboard note,
the Markdown report) or HTML (the HTML report).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import TrialState

from optuna_nachos._units import format_amount
from optuna_nachos.record import (
    CONSTRAINT_NAMES,
    MAX_AVG_LATENCY,
    MAX_AVG_MACS,
    MIN_ACCURACY,
    SKIP_REASON_ATTR,
    is_latency_study,
    selection_constraints,
    selection_feasible,
    study_settings,
)
from optuna_nachos.results import admissible_trials, front_rows, high_tradeoff_trials, hypervolume
from optuna_nachos.study import study_protocol

TABLE_COLUMNS = (
    "trial",
    "val accuracy",
    "val avg MACs",
    "test accuracy",
    "test avg MACs",
    "peak MACs",
    "exits",
    "exit ratios",
    "thresholds",
)
"""Columns of the admissible-front tables, in order: the trials are chosen on the validation
figures (``val``) and reported on the test figures (``test``)."""

PROTOCOL_SENTENCE = (
    "Trials are chosen on the validation split (the split that chose their exit thresholds): "
    "the admissible front, the trade-offs, the constraints and the hypervolume use validation "
    "figures; the test columns report the chosen networks on the test split, which played no "
    "part in the choice."
)

LATENCY_COLUMNS = ("avg latency", "peak latency")
"""Columns added at the end when the trials carry predicted latencies (a latency table)."""


def has_latency(rows: Sequence[Mapping[str, Any]]) -> bool:
    """Whether front rows carry latencies (the study used a latency table)."""
    return any("avg_latency_ms" in row for row in rows)


def table_columns(rows: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """Columns of a table of ``rows``: :data:`TABLE_COLUMNS`, and the latency columns when the
    rows carry latencies."""
    return TABLE_COLUMNS + (LATENCY_COLUMNS if has_latency(rows) else ())


def format_ms(value: float | None) -> str:
    """A latency in milliseconds, e.g. ``1.234 ms``."""
    return "-" if value is None else f"{float(value):.3f} ms"


@dataclass(frozen=True)
class StudySummary:
    """The facts of a study that the dashboard note and the reports show.

    Attributes:
        study_name: Name of the study.
        settings: The search settings (:func:`optuna_nachos.record.study_settings`).
        counts: Numbers of trials: ``trials`` (all), ``complete``, ``skipped`` (completed
            without training by the static guard), ``feasible``, ``infeasible``,
            ``unconstrained`` (complete but carrying no constraint), ``admissible``,
            ``failed``, ``pruned`` and ``running`` (running or waiting).
        violations: For each constraint name, how many complete trials violate it.
        hypervolume: Normalized hypervolume of the admissible front, ``None`` when the study
            records no budget and accuracy floor.
        front: :func:`~optuna_nachos.results.front_rows` of the admissible trials.
        tradeoffs: Rows of the high trade-off trials
            (:func:`~optuna_nachos.results.high_tradeoff_trials`).
        protocol: How trials are chosen and reported; for studies written by earlier
            versions, what they lack (:func:`~optuna_nachos.study.study_protocol`).
    """

    study_name: str
    settings: dict[str, Any]
    counts: dict[str, int]
    violations: dict[str, int]
    hypervolume: float | None
    front: list[dict[str, Any]]
    tradeoffs: list[dict[str, Any]]
    protocol: str = PROTOCOL_SENTENCE


def summarize(study: optuna.Study, *, n_tradeoffs: int = 3) -> StudySummary:
    """Compute the :class:`StudySummary` of an EENN study."""
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    constrained = [t for t in complete if t.constraints]
    feasible = [t for t in constrained if selection_feasible(t)]
    front = admissible_trials(study)
    violations: dict[str, int] = {}
    for trial in constrained:
        for name, value in selection_constraints(trial).items():
            if value > 0:
                violations[name] = violations.get(name, 0) + 1
    order = {name: i for i, name in enumerate(CONSTRAINT_NAMES)}
    violations = dict(sorted(violations.items(), key=lambda kv: (order.get(kv[0], 99), kv[0])))
    try:
        volume: float | None = hypervolume(study)
    except ValueError:  # no reference point recorded on the study
        volume = None
    counts = {
        "trials": len(trials),
        "complete": len(complete),
        "skipped": sum(1 for t in complete if SKIP_REASON_ATTR in t.user_attrs),
        "feasible": len(feasible),
        "infeasible": len(constrained) - len(feasible),
        "unconstrained": len(complete) - len(constrained),
        "admissible": len(front),
        "failed": sum(1 for t in trials if t.state == TrialState.FAIL),
        "pruned": sum(1 for t in trials if t.state == TrialState.PRUNED),
        "running": sum(1 for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)),
    }
    return StudySummary(
        study_name=study.study_name,
        settings=study_settings(study),
        counts=counts,
        violations=violations,
        hypervolume=volume,
        front=front_rows(front),
        tradeoffs=front_rows(high_tradeoff_trials(front, n=n_tradeoffs)) if front else [],
        protocol=_protocol_text(study),
    )


def _protocol_text(study: optuna.Study) -> str:
    protocol = study_protocol(study)
    if protocol.n_legacy:
        return f"{PROTOCOL_SENTENCE} {protocol.note}"
    return PROTOCOL_SENTENCE


# --- formatting of single values -------------------------------------------------------------


def format_macs(value: float | None) -> str:
    """A MAC amount in millions, e.g. ``0.812 M``."""
    return "-" if value is None else f"{float(value) / 1e6:.3f} M"


def _numbers(values: Sequence[float] | None, fmt: str) -> str:
    if not values:
        return "-"
    return " / ".join(format(float(v), fmt) for v in values)


def _exits(stages: Sequence[int] | None) -> str:
    if stages is None:
        return "-"
    early = ", ".join(str(s) for s in stages)
    return f"{early} + final" if early else "final only"


def row_cells(row: Mapping[str, Any], *, latency: bool | None = None) -> list[str]:
    """The cells of one front row, in the order of :func:`table_columns`.

    Args:
        row: A row of :func:`~optuna_nachos.results.front_rows`.
        latency: Add the latency cells; by default when the row carries latencies.
    """
    if latency is None:
        latency = "avg_latency_ms" in row
    extra = (
        [format_ms(row.get("avg_latency_ms")), format_ms(row.get("peak_latency_ms"))]
        if latency
        else []
    )
    return [
        str(row["trial"]),
        f"{float(row['accuracy']):.4f}",
        format_macs(row["avg_macs"]),
        "-" if row.get("test_accuracy") is None else f"{float(row['test_accuracy']):.4f}",
        format_macs(row.get("test_avg_macs")),
        format_macs(row["peak_macs"]),
        _exits(row["exit_stages"]),
        _numbers(row["exit_ratios"], ".3f"),
        _numbers(row["thresholds"], ".2f"),
        *extra,
    ]


def setting_items(settings: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Settings flattened one level (``train.batch_size``) as ``(name, text)`` pairs."""
    items = []
    for key, value in settings.items():
        if isinstance(value, Mapping):
            items.extend((f"{key}.{sub}", _text(v, sub)) for sub, v in value.items())
        else:
            items.append((key, _text(value, key)))
    return items


def _text(value: Any, key: str = "") -> str:
    if value is None:
        return "-"
    amount = isinstance(value, int | float) and not isinstance(value, bool)
    if amount and (key.endswith("_macs") or key == "max_params"):
        return format_amount(value)  # as typed: 2.7M, not 2.7e+06
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str | int | bool):
        return str(value)
    return json.dumps(value)


def tradeoffs_sentence(summary: StudySummary, *, marked: str) -> str:
    """One sentence naming the best trade-offs of the front (its knees), which the front
    table marks as ``marked`` says, rather than a second table repeating its rows."""
    if not summary.tradeoffs:
        return ""
    numbers = [str(row["trial"]) for row in summary.tradeoffs]
    names = numbers[0] if len(numbers) == 1 else ", ".join(numbers[:-1]) + " and " + numbers[-1]
    trials = "trial" if len(numbers) == 1 else "trials"
    return (
        f"Best trade-offs: {trials} {names} ({marked}), the knees of the front "
        "(optuna_nachos.high_tradeoff_trials): the others can only replace them at a high "
        "price in accuracy or average cost."
    )


def counts_sentence(summary: StudySummary) -> str:
    """One sentence with the trial counts."""
    c = summary.counts
    parts = [f"{c['trials']} trials", f"{c['complete']} complete"]
    if c["skipped"]:
        parts.append(f"{c['skipped']} of them rejected by the static guard (not trained)")
    parts += [f"{c['feasible']} feasible", f"{c['infeasible']} infeasible"]
    if c["unconstrained"]:
        parts.append(f"{c['unconstrained']} without constraints")
    parts.append(f"{c['admissible']} admissible (on the feasible Pareto front)")
    for key in ("failed", "pruned", "running"):
        if c[key]:
            parts.append(f"{c[key]} {key}")
    return ", ".join(parts) + "."


def hypervolume_sentence(summary: StudySummary) -> str:
    """One sentence with the hypervolume and its reference point."""
    if summary.hypervolume is None:
        return "Hypervolume: not available (the study records no budget and accuracy floor)."
    floor = summary.settings.get(MIN_ACCURACY)
    if is_latency_study(summary.settings):
        budget = summary.settings.get(MAX_AVG_LATENCY)
        return (
            f"Hypervolume of the admissible front: {summary.hypervolume:.4f} (normalized; "
            f"reference point accuracy {float(floor):g}, average latency {format_ms(budget)})."
        )
    budget = summary.settings.get(MAX_AVG_MACS)
    return (
        f"Hypervolume of the admissible front, on validation figures: {summary.hypervolume:.4f} "
        "(normalized; reference "
        f"point accuracy {float(floor):g}, average MACs {format_macs(budget)})."
    )


# --- Markdown --------------------------------------------------------------------------------


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = [
        "| " + " | ".join(_md_escape(h) for h in header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def summary_markdown(summary: StudySummary, *, level: int = 2) -> str:
    """The summary as Markdown, its sections at heading ``level`` (no title)."""
    h = "#" * level
    blocks = [summary.protocol, counts_sentence(summary), hypervolume_sentence(summary)]
    blocks.append(f"{h} Admissible Pareto front")
    if summary.front:
        latency = has_latency(summary.front)
        knees = {row["trial"] for row in summary.tradeoffs}
        rows = [row_cells(r, latency=latency) for r in summary.front]
        for row, cells in zip(summary.front, rows):
            if row["trial"] in knees:
                cells[0] += " *"
        blocks.append(markdown_table(table_columns(summary.front), rows))
        blocks.append(
            "Exits: stages followed by an early exit. Exit ratios: fraction of the test samples "
            "leaving at each exit, the final one last. Thresholds: one per early exit."
        )
        blocks.append(tradeoffs_sentence(summary, marked="marked * in the table"))
    else:
        blocks.append("No admissible trial yet (no completed trial satisfies every constraint).")
    blocks.append(f"{h} Constraints")
    if summary.violations:
        blocks.append(
            markdown_table(
                ("constraint", "violated by (complete trials)"),
                [(name, str(n)) for name, n in summary.violations.items()],
            )
        )
    else:
        blocks.append("No completed trial violates a constraint.")
    blocks.append(f"{h} Settings")
    items = setting_items(summary.settings)
    if items:
        blocks.append(markdown_table(("setting", "value"), [(k, f"`{v}`") for k, v in items]))
    else:
        blocks.append("The study records no settings.")
    return "\n\n".join(blocks) + "\n"
