"""The migration report as one self-contained HTML file: inline CSS and SVG, no scripts, no network.

The page is rendered from the Jinja2 templates shipped in ``modelshift/report/templates`` with autoescape
on, so every string that comes from the store (app names, reasons, error messages) is HTML-escaped; the
only markup inserted as-is is the SVG that :mod:`modelshift.report.svg` builds (and escapes itself).
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from modelshift.report import svg
from modelshift.report.data import MigrationView

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


def _num(value: Any, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:+.4g}" if signed else f"{value:.4g}"


def _pct(value: Any) -> str:
    return "-" if value is None else f"{float(value) * 100:.2f} %"


def _ts(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _short(value: str | None, length: int = 12) -> str:
    if not value:
        return "-"
    return value if len(value) <= length + 7 else value[: length + 7] + "…"


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("modelshift.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(num=_num, pct=_pct, ts=_ts, short=_short, tojson_text=_json)
    return env


def prefect_run_url(view: MigrationView, prefect_ui_url: str | None) -> str | None:
    """The Prefect UI page of the migration's flow run, when both the UI URL and the run id are known."""
    if not prefect_ui_url or not view.flow_run_id:
        return None
    if not prefect_ui_url.startswith(("http://", "https://")):
        return None
    return f"{prefect_ui_url.rstrip('/')}/runs/flow-run/{view.flow_run_id}"


def render_html(view: MigrationView, *, prefect_ui_url: str | None = None) -> str:
    """The report page of ``view``; ``prefect_ui_url`` (e.g. ``PREFECT_UI_URL``) adds a link to the run."""
    histograms = []
    if view.evaluation is not None:
        histograms = [
            (
                m.name,
                Markup(svg.score_histogram(m.name, m.baseline_scores, m.candidate_scores, unit=m.unit)),
            )
            for m in view.evaluation.metrics
        ]
    timeline = None
    if view.canary is not None:
        timeline = Markup(svg.canary_timeline(view.canary))
    template = _environment().get_template("report.html.j2")
    return template.render(
        view=view,
        histograms=histograms,
        timeline=timeline,
        run_url=prefect_run_url(view, prefect_ui_url),
    )


def report_path(home: Path, migration_id: str) -> Path:
    """Where the report of ``migration_id`` is written by default: ``<home>/reports/<id>.html``."""
    return home / "reports" / f"{_SAFE_NAME.sub('-', migration_id)}.html"


def write_report(view: MigrationView, path: Path, *, prefect_ui_url: str | None = None) -> Path:
    """Render ``view`` and write it to ``path`` (parents created; replaced atomically); the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(render_html(view, prefect_ui_url=prefect_ui_url), encoding="utf-8")
    partial.replace(path)
    return path
