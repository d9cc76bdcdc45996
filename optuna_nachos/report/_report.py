"""Writing a study report: one self-contained HTML file, or Markdown with PNG figures."""

from __future__ import annotations

import datetime
import html
import importlib.util
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import optuna

from optuna_nachos._logging import get_logger
from optuna_nachos._version import __version__
from optuna_nachos.report._summary import (
    StudySummary,
    counts_sentence,
    has_latency,
    hypervolume_sentence,
    row_cells,
    setting_items,
    summarize,
    summary_markdown,
    table_columns,
    tradeoffs_sentence,
)

if TYPE_CHECKING:
    import plotly.graph_objects as go

_logger = get_logger(__name__)

REPORT_FORMATS = ("html", "md")

# Plotly's mode bar without the links to plotly.com, so that the page offers nothing online.
_PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       color: #1f2328; background: #fff; }
main { max-width: 1100px; margin: 0 auto; padding: 1.5rem 2rem 3rem; }
h1 { font-size: 1.7rem; margin-bottom: .2rem; }
h2 { font-size: 1.3rem; margin-top: 2.2rem; border-bottom: 1px solid #d0d7de;
     padding-bottom: .3rem; }
h3 { font-size: 1.05rem; margin-top: 1.6rem; }
.meta { color: #59636e; font-size: .9rem; }
table { border-collapse: collapse; margin: .6rem 0; font-size: .9rem; }
th, td { border: 1px solid #d0d7de; padding: .3rem .6rem; text-align: right; }
th { background: #f6f8fa; }
td.text, th.text { text-align: left; }
tr.tradeoff td { background: #fff8c5; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .85em; }
.figure { margin: 1rem 0 2rem; }
.note { color: #59636e; font-size: .9rem; }
"""


def _title(name: str) -> str:
    text = name.replace("_", " ")
    return text[:1].upper() + text[1:]


def _study_figures(study: optuna.Study) -> dict[str, go.Figure]:
    from optuna_nachos.visualization import study_figures

    return dict(study_figures(study))


# --- HTML ------------------------------------------------------------------------------------


def _html_table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    row_ids: Sequence[str] | None = None,
    row_classes: Sequence[str] | None = None,
    text_columns: Sequence[int] = (),
) -> str:
    def cell(tag: str, i: int, value: str) -> str:
        cls = ' class="text"' if i in text_columns else ""
        return f"<{tag}{cls}>{html.escape(value)}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(header))
    body = []
    for r, row in enumerate(rows):
        attrs = ""
        if row_ids is not None:
            attrs += f' id="{html.escape(row_ids[r])}"'
        if row_classes is not None and row_classes[r]:
            attrs += f' class="{html.escape(row_classes[r])}"'
        body.append(f"<tr{attrs}>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _front_html(summary: StudySummary) -> str:
    if not summary.front:
        return "<p>No admissible trial yet (no completed trial satisfies every constraint).</p>"
    knees = {row["trial"] for row in summary.tradeoffs}
    table = _html_table(
        table_columns(summary.front),
        [row_cells(row, latency=has_latency(summary.front)) for row in summary.front],
        row_ids=[f"trial-{row['trial']}" for row in summary.front],
        row_classes=["tradeoff" if row["trial"] in knees else "" for row in summary.front],
        text_columns=(4,),
    )
    return (
        table + '<p class="note">Exits: stages followed by an early exit. Exit ratios: fraction '
        "of the test samples leaving at each exit, the final one last. Thresholds: one per "
        "early exit.</p>"
        + (
            f'<p id="tradeoffs">{html.escape(tradeoffs_sentence(summary, marked="highlighted"))}'
            "</p>"
            if summary.tradeoffs
            else ""
        )
    )


def _figures_html(figures: Mapping[str, go.Figure]) -> str:
    if not figures:
        return "<p>No figure.</p>"
    parts = []
    for name, figure in figures.items():
        div = figure.to_html(
            full_html=False,
            include_plotlyjs=False,
            div_id=f"plot-{name}",
            config=_PLOTLY_CONFIG,
        )
        parts.append(
            f'<section class="figure" id="figure-{html.escape(name)}">'
            f"<h3>{html.escape(_title(name))}</h3>{div}</section>"
        )
    return "\n".join(parts)


def report_html(study: optuna.Study, *, figures: Mapping[str, go.Figure] | None = None) -> str:
    """The report of an EENN study as one self-contained HTML page.

    plotly.js is inlined once and nothing refers to the network, so the page opens offline.
    See :func:`write_report` for the content.

    Args:
        study: An EENN study.
        figures: Figures by name; by default
            :func:`optuna_nachos.visualization.study_figures` of the study.
    """
    from plotly.offline import get_plotlyjs

    summary = summarize(study)
    if figures is None:
        figures = _study_figures(study)
    name = html.escape(summary.study_name)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if summary.violations:
        constraints = _html_table(
            ("constraint", "violated by (complete trials)"),
            [(k, str(v)) for k, v in summary.violations.items()],
            text_columns=(0,),
        )
    else:
        constraints = "<p>No completed trial violates a constraint.</p>"
    items = setting_items(summary.settings)
    settings = (
        _html_table(("setting", "value"), items, text_columns=(0, 1))
        if items
        else "<p>The study records no settings.</p>"
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>optuna-nachos report: {name}</title>
<style>{_CSS}</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head>
<body>
<main>
<h1>optuna-nachos report: study <code>{name}</code></h1>
<p class="meta">Written by optuna-nachos {html.escape(__version__)} on {stamp}.</p>
<p>{html.escape(summary.protocol)}</p>
<p>{html.escape(counts_sentence(summary))}</p>
<p>{html.escape(hypervolume_sentence(summary))}</p>
<h2 id="front">Admissible Pareto front</h2>
{_front_html(summary)}
<h2 id="figures">Figures</h2>
{_figures_html(figures)}
<h2 id="constraints">Constraints</h2>
{constraints}
<h2 id="settings">Settings</h2>
{settings}
</main>
</body>
</html>
"""


# --- Markdown --------------------------------------------------------------------------------


def _markdown_figures(study: optuna.Study, path: Path) -> str:
    """Write the PNG figures next to the report; the Markdown that shows them."""
    from optuna_nachos.visualization import save_figures

    folder = path.with_name(f"{path.stem}_figures")
    written = save_figures(study, folder, image_format="png", include_html=False)
    images = {name: Path(p) for name, p in written.items() if Path(p).suffix.lower() == ".png"}
    if not images:
        if importlib.util.find_spec("kaleido") is None:
            reason = "kaleido is not installed"
        else:
            reason = "kaleido could not export them (is Chrome or Chromium installed?)"
        return (
            f"> **Figures not rendered**: {reason}.\n>\n"
            "> PNG export needs kaleido and a Chrome or Chromium browser "
            '(`pip install "optuna-nachos[report]"`, then `plotly_get_chrome` if no browser is '
            'installed). The HTML report (`format="html"`) needs neither and holds every '
            "figure, interactive.\n"
        )
    lines = []
    for name, image in images.items():
        relative = Path(os.path.relpath(image, path.parent)).as_posix()
        lines.append(f"### {_title(name)}\n\n![{_title(name)}]({relative})\n")
    return "\n".join(lines)


def report_markdown(study: optuna.Study, path: str | os.PathLike[str]) -> str:
    """The Markdown report of an EENN study, its PNG figures written next to ``path``.

    See :func:`write_report`; this returns the text instead of writing it.
    """
    path = Path(path)
    summary = summarize(study)
    return (
        f"# optuna-nachos report: study `{summary.study_name}`\n\n"
        + summary_markdown(summary, level=2)
        + "\n## Figures\n\n"
        + _markdown_figures(study, path)
    )


def write_report(
    study: optuna.Study, path: str | os.PathLike[str], *, format: str = "html"
) -> Path:
    """Write the report of an EENN study.

    The report holds the trial counts, the hypervolume of the admissible front, the admissible
    Pareto table (trial, accuracy, average and peak MACs, exits, exit ratios, thresholds) with
    its best trade-offs marked (:func:`~optuna_nachos.high_tradeoff_trials`), every figure of
    :func:`optuna_nachos.visualization.study_figures`, the violated constraints and the
    search settings.

    Args:
        study: An EENN study.
        path: The file to write; its folder is created.
        format: ``"html"``: one self-contained page (plotly.js inlined, interactive figures,
            no reference to the network: it opens offline). ``"md"``: Markdown, with the
            figures as PNG files in the folder ``<name>_figures`` next to it
            (:func:`optuna_nachos.visualization.save_figures`, which needs kaleido and a
            Chrome or Chromium browser; without them the Markdown says so and the figures are
            left out).

    Returns:
        The path written.

    Raises:
        ValueError: If ``format`` is unknown.
    """
    if format not in REPORT_FORMATS:
        raise ValueError(f"unknown report format {format!r}; choose one of {REPORT_FORMATS}.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = report_html(study) if format == "html" else report_markdown(study, path)
    path.write_text(text, encoding="utf-8")
    _logger.info("Wrote the %s report of study %r to %s.", format, study.study_name, path)
    return path
