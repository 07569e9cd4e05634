"""The migration report: one migration's story gathered from the state store, drawn and rendered.

- :mod:`modelshift.report.data`: :class:`MigrationView` and :func:`load_migration_view` (no HTML; the
  dashboard and the CLI's ``--json`` reuse it);
- :mod:`modelshift.report.svg`: deterministic inline SVG plots (score distributions, the canary timeline);
- :mod:`modelshift.report.html`: the self-contained HTML file (Jinja2 templates shipped with the package);
- :mod:`modelshift.report.markdown`: the short markdown summary and tables for Prefect artifacts.
"""

from __future__ import annotations

from modelshift.report.data import MigrationView, load_migration_view
from modelshift.report.html import render_html, write_report
from modelshift.report.markdown import report_markdown, report_tables

__all__ = [
    "MigrationView",
    "load_migration_view",
    "render_html",
    "report_markdown",
    "report_tables",
    "write_report",
]
