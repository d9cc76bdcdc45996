"""write_report(): one self-contained HTML page, or Markdown with PNG figures."""

import re
import shutil
import sys
from pathlib import Path

import plotly.graph_objects
import plotly.io
import pytest
from optuna.trial import TrialState
from plotly.offline import get_plotlyjs

import optuna_nachos as nachos
from optuna_nachos.report import summarize, write_report
from optuna_nachos.visualization import study_figures

SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script>", re.IGNORECASE | re.DOTALL)
NETWORK_REFERENCE = re.compile(
    r"""(?:\b(?:src|href|action|poster|data)\s*=\s*["']?\s*(?:https?:)?//)"""
    r"""|(?:url\(\s*["']?\s*(?:https?:)?//)|(?:@import)""",
    re.IGNORECASE,
)


@pytest.fixture(scope="module")
def html_report(digits_study, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("report") / "sub" / "report.html"
    assert write_report(digits_study.study, path) == path
    return path.read_text(encoding="utf-8")


def test_the_html_report_is_self_contained(html_report):
    scripts = SCRIPT.findall(html_report)
    assert scripts, "plotly.js is inlined"
    assert all("src" not in attrs.lower() for attrs, _ in scripts), "no external script"
    markup = SCRIPT.sub("", html_report)  # the page outside the inlined JavaScript
    assert "<link" not in markup.lower()
    assert "src=" not in markup.lower(), "no image or frame to fetch"
    assert NETWORK_REFERENCE.search(markup) is None
    assert not re.search(r"https?://", markup), "no address at all outside the scripts"
    # plotly.js itself is inlined exactly once, not fetched from a CDN.
    assert html_report.count(get_plotlyjs()[:200]) == 1
    assert "cdn.plot.ly" not in markup


def test_the_html_report_names_every_admissible_trial_and_only_those(digits_study, html_report):
    study = digits_study.study
    front = {t.number for t in nachos.admissible_trials(study)}
    assert front
    complete = {t.number for t in study.get_trials(states=(TrialState.COMPLETE,))}
    for number in complete:
        assert (f'id="trial-{number}"' in html_report) == (number in front)
    for trial in nachos.high_tradeoff_trials(study):  # highlighted in the one front table
        assert f'<tr id="trial-{trial.number}" class="tradeoff">' in html_report


def test_the_best_trade_offs_are_marked_in_the_front_not_repeated(digits_study, html_report):
    knees = [t.number for t in nachos.high_tradeoff_trials(digits_study.study)]
    assert knees
    assert "Best trade-offs</h2>" not in html_report  # no second table of the same rows
    for number in knees:
        assert html_report.count(f'id="trial-{number}"') == 1
    sentence = re.search(r'<p id="tradeoffs">(.*?)</p>', html_report).group(1)
    assert "highlighted" in sentence and all(str(n) in sentence for n in knees)


def test_the_settings_read_in_the_units_the_user_typed(digits_study, html_report, tmp_path):
    from optuna_nachos._units import format_amount

    budget = format_amount(digits_study.max_avg_macs)
    assert budget == "900K"
    assert f'<td class="text">max_avg_macs</td><td class="text">{budget}</td>' in html_report
    assert "9e+05" not in html_report
    text = write_report(digits_study.study, tmp_path / "r.md", format="md").read_text()
    assert f"| max_avg_macs | `{budget}` |" in text
    assert "## Best trade-offs" not in text and "Best trade-offs: trial" in text


def test_the_html_report_holds_every_figure_settings_and_hypervolume(digits_study, html_report):
    study = digits_study.study
    figures = study_figures(study)
    for name in figures:
        assert f'id="figure-{name}"' in html_report
        assert f'id="plot-{name}"' in html_report
    assert html_report.count("Plotly.newPlot(") == len(figures)
    assert f"{nachos.hypervolume(study):.4f}" in html_report
    settings = summarize(study).settings
    for key in ("dataset", "max_avg_macs", "min_accuracy"):
        assert f'<td class="text">{key}</td>' in html_report
    assert str(settings["dataset"]) in html_report


def _kaleido_can_render() -> bool:
    try:
        import kaleido  # noqa: F401
    except ImportError:
        return False
    return any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome"))


def test_the_markdown_report_shows_the_front_and_its_png_figures(digits_study, tmp_path):
    study = digits_study.study
    path = write_report(study, tmp_path / "report.md", format="md")
    text = path.read_text(encoding="utf-8")
    assert text.startswith(f"# optuna-nachos report: study `{study.study_name}`")
    knees = {t.number for t in nachos.high_tradeoff_trials(study)}
    for trial in nachos.admissible_trials(study):
        mark = " *" if trial.number in knees else ""
        assert f"| {trial.number}{mark} | {trial.values[0]:.4f} |" in text
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    if images:
        for image in images:
            assert not Path(image).is_absolute() and image.endswith(".png")
            assert (path.parent / image).is_file()
        assert len(images) == len(study_figures(study))
    else:
        assert "Figures not rendered" in text
    if _kaleido_can_render():
        assert images, "kaleido and a browser are installed: the PNG figures are written"


def test_without_kaleido_the_markdown_says_so(digits_study, tmp_path, monkeypatch):
    def no_kaleido(*args, **kwargs):
        raise RuntimeError("Image export requires the Kaleido package")

    monkeypatch.setitem(sys.modules, "kaleido", None)
    monkeypatch.setattr(plotly.io, "write_images", no_kaleido, raising=False)
    monkeypatch.setattr(plotly.graph_objects.Figure, "write_image", no_kaleido)
    text = write_report(digits_study.study, tmp_path / "report.md", format="md").read_text()
    assert "**Figures not rendered**: kaleido is not installed" in text
    assert 'format="html"' in text
    assert "![" not in text


def test_an_unknown_format_is_rejected(digits_study, tmp_path):
    with pytest.raises(ValueError, match="unknown report format 'pdf'"):
        write_report(digits_study.study, tmp_path / "r.pdf", format="pdf")
