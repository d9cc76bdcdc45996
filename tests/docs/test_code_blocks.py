"""Every code block of the documentation runs, in order, against what the command line
creates, or says why it cannot run.

A block that cannot run here (a long search, a download, a server, an installation, a sketch
with placeholders) is preceded by an HTML comment, invisible on the site::

    <!-- not-run: a 20-trial search at 32x32, tens of minutes -->

The pages of ``RUN_HERE`` run in a folder where ``optuna-nachos search`` has written a small
study (``sqlite:///nachos.db``, study ``nachos``, the trained networks in
``nachos_artifacts/``), as a reader's folder holds after the search of the guides: their
Python blocks in one namespace, their ``optuna-nachos`` command lines through the command's
entry point, one after the other as the page shows them.
"""

from __future__ import annotations

import re
import shlex
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"

_FENCE = re.compile(
    r"(?P<before>(?:<!--[^\n]*-->\n)?)^```(?P<lang>[\w-]*)[^\n]*\n(?P<code>.*?)^```\s*$",
    re.DOTALL | re.MULTILINE,
)
_NOT_RUN = re.compile(r"<!--\s*not-run:\s*(?P<reason>.+?)\s*-->")

PROGRAMS = ("python", "bash")
"""Fence languages of code a reader runs; every other fence (``text``, ``toml``) shows output,
formulas or file contents."""

RUN_HERE = (
    "guide/visualization.md",
    "guide/dashboard.md",
    "guide/export.md",
    "guide/samplers.md",
    "guide/benchmarks.md",
    "concepts/costs.md",
    "concepts/search-space.md",
)
"""Pages whose runnable blocks this module runs, in page order."""

RUN_ELSEWHERE = {
    ("quickstart.md", "python"): "tests/test_readme.py runs every Python block, in order",
    ("guide/own-model.md", "python"): "tests/docs/test_guides.py runs every Python block",
}
"""Blocks another test runs as written."""

NOT_HERE_YET: dict[str, str] = {}
"""Pages whose blocks are not checked yet, with the reason."""


@dataclass(frozen=True)
class Block:
    page: str
    index: int
    lang: str
    code: str
    not_run: str | None


def blocks(page: str) -> list[Block]:
    """The fenced blocks of a page, in order, with their ``not-run`` reason if any."""
    text = (DOCS / page).read_text(encoding="utf-8")
    found = []
    for index, match in enumerate(_FENCE.finditer(text)):
        reason = _NOT_RUN.search(match["before"])
        found.append(
            Block(page, index, match["lang"], match["code"], reason["reason"] if reason else None)
        )
    return found


def _pages() -> list[str]:
    return sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))


def test_every_program_block_runs_somewhere_or_says_why_not():
    unaccounted = []
    for page in _pages():
        if page in NOT_HERE_YET:
            continue
        for block in blocks(page):
            if block.lang not in PROGRAMS or block.not_run is not None:
                continue
            if page in RUN_HERE or (page, block.lang) in RUN_ELSEWHERE:
                continue
            unaccounted.append(f"{page} block {block.index} ({block.lang})")
    assert not unaccounted, (
        "blocks that no test runs: run them in a test or precede them with "
        "<!-- not-run: reason -->: " + ", ".join(unaccounted)
    )


def test_every_fence_names_its_language_and_every_reason_is_given():
    for page in _pages():
        for block in blocks(page):
            assert block.lang, f"{page} block {block.index}: a fence without a language"
            if block.not_run is not None:
                assert len(block.not_run) > 10, f"{page} block {block.index}: say why"


def test_the_blocks_of_other_tests_are_not_marked():
    for page, lang in RUN_ELSEWHERE:
        marked = [b.index for b in blocks(page) if b.lang == lang and b.not_run]
        assert not marked, f"{page}: {marked} are run by another test; drop their mark"


# --- running the pages ----------------------------------------------------------------------


SEARCH = (
    "search --dataset digits --resolution 8 --n-trials 3 --sampler random --seed 0 "
    "--max-avg-macs 20M --min-accuracy 0.05 --backbone-epochs 1 --warmup-epochs 0 "
    "--exit-epochs 1 --batch-size 64 --train-subset 256 --threads 1 --no-progress "
    "--storage sqlite:///nachos.db"
)
"""The smallest real search: 3 trained trials, as the guides' search writes them."""


@pytest.fixture(scope="module")
def searched(tmp_path_factory) -> Path:
    """A folder where the command line has searched the study the guides read."""
    from optuna_nachos.cli import main

    folder = tmp_path_factory.mktemp("reader")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        assert main(shlex.split(SEARCH)) == 0
    return folder


def _command_lines(code: str) -> list[str]:
    joined = code.replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if line.strip() and line[0] != "#"]


def run_page(page: str) -> dict:
    """Run a page's blocks in order: Python in one module namespace, command lines through
    the command's entry point; return the namespace."""
    from optuna_nachos.cli import main

    module = types.ModuleType("docs_" + re.sub(r"\W", "_", page))
    sys.modules[module.__name__] = module
    try:
        for block in blocks(page):
            if block.lang not in PROGRAMS or block.not_run is not None:
                continue
            where = f"{page} block {block.index}"
            if block.lang == "python":
                try:
                    exec(compile(block.code, where, "exec"), module.__dict__)
                except Exception as error:
                    raise AssertionError(f"{where} failed: {error!r}") from error
                continue
            for line in _command_lines(block.code):
                words = shlex.split(line, comments=True)
                assert words[0] == "optuna-nachos", f"{where}: not a command of the package"
                assert main(words[1:]) == 0, f"{where}: {line!r} failed"
    finally:
        del sys.modules[module.__name__]
    return module.__dict__


@pytest.fixture
def reader(searched, monkeypatch) -> Path:
    """The reader's folder, the current directory; figures are not shown, images not
    rendered (HTML only: no browser for kaleido)."""
    import plotly.graph_objects as go

    from optuna_nachos.visualization import _save

    monkeypatch.chdir(searched)
    monkeypatch.setattr(go.Figure, "show", lambda self, *args, **kwargs: None)
    monkeypatch.setattr(_save, "_image_export_problem", "not rendered in the docs test")
    return searched


def test_visualization_guide_runs(reader):
    namespace = run_page("guide/visualization.md")
    assert namespace["study"].study_name == "nachos"
    assert set(namespace["figures"]) >= {"pareto_front", "exit_metrics", "architecture"}
    assert (reader / "figures" / "pareto_front.html").is_file()


def test_dashboard_guide_runs(reader):
    pytest.importorskip("optuna_dashboard")
    run_page("guide/dashboard.md")
    assert (reader / "report.html").stat().st_size > 1e6
    assert (reader / "report.md").read_text().startswith("# optuna-nachos report")


def test_export_guide_runs_on_the_commands_export(reader):
    namespace = run_page("guide/export.md")
    assert (reader / "my-eenn" / "eenn.json").is_file()
    assert namespace["prediction"].predictions.shape == (1,)


@pytest.mark.parametrize(
    "page",
    ["guide/samplers.md", "guide/benchmarks.md", "concepts/costs.md", "concepts/search-space.md"],
)
def test_pages_without_a_study_run(page, reader):
    run_page(page)
