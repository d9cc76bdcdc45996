"""Reports of an EENN search: one self-contained HTML page, or Markdown with PNG figures."""

from optuna_nachos.report._report import (
    REPORT_FORMATS,
    report_html,
    report_markdown,
    write_report,
)
from optuna_nachos.report._summary import StudySummary, summarize, summary_markdown

__all__ = [
    "REPORT_FORMATS",
    "StudySummary",
    "report_html",
    "report_markdown",
    "summarize",
    "summary_markdown",
    "write_report",
]
