"""MkDocs hook: the benchmark page shows the committed result files, never typed-in numbers.

A line ``<!-- benchmark-results: NAME -->`` in a page is replaced by
``benchmarks/results/NAME/results.md`` (written by ``optuna-nachos benchmark``), its headings
moved one level down, and its figures published under ``benchmark-figures/NAME/``.
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.structure.files import File, Files

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
MARKER = re.compile(r"^<!-- benchmark-results: ([\w.+-]+) -->$", re.MULTILINE)
FIGURES_URI = "benchmark-figures"


def on_files(files: Files, config) -> Files:
    for png in sorted(RESULTS.glob("*/figures/*.png")):
        suite = png.parent.parent.name
        uri = f"{FIGURES_URI}/{suite}/{png.name}"
        files.append(File.generated(config, uri, abs_src_path=str(png)))
    return files


def _results_section(name: str, page_uri: str) -> str:
    path = RESULTS / name / "results.md"
    if not path.is_file():
        return (
            f'!!! warning "No results for the `{name}` suite yet"\n'
            f"    Run `optuna-nachos benchmark --suite {name} --out benchmarks/results/{name}`."
        )
    text = path.read_text()
    text = re.sub(r"^(#+) ", r"#\1 ", text, flags=re.MULTILINE)
    depth = page_uri.count("/")
    prefix = "../" * depth + f"{FIGURES_URI}/{name}/"
    return re.sub(r"\]\(figures/([^)]+)\)", lambda m: f"]({prefix}{m.group(1)})", text)


def on_page_markdown(markdown: str, page, config, files) -> str:
    uri = page.file.src_uri
    return MARKER.sub(lambda match: _results_section(match.group(1), uri), markdown)
