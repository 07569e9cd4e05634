"""The HTML report and its markdown summary: sections, numbers from the data, plots, escaping, no network."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from modelshift.report import MigrationView, load_migration_view, render_html, report_markdown, report_tables
from modelshift.report.html import report_path, write_report
from tests.report.conftest import Scenario
from tests.report.report_helpers import HOSTILE, Page

Get = Callable[..., Scenario]
SECTIONS = ["summary", "assessment", "prepare", "evaluation", "canary", "audit"]
UI = "http://127.0.0.1:4200"


def _view(s: Scenario) -> MigrationView:
    with s.store() as store:
        return load_migration_view(store, s.built.migration_id, clock=s.clock)


def _num(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.4g}" if signed else f"{value:.4g}"


@pytest.mark.parametrize(
    "until", ["planned", "prepared", "rejected", "evaluated", "canary", "promoted", "rolled_back"]
)
def test_every_section_is_present_whatever_the_state(scenario: Get, until: str) -> None:
    view = _view(scenario(until))
    html = render_html(view)
    page = Page(html)
    assert [a["id"] for a in page.find("section")] == SECTIONS
    assert view.decision.outcome in page.section("summary")
    assert page.find("script") == [] and page.find("link") == [] and page.find("iframe") == []
    title = f"Migration shop: {view.from_model} → {view.to_model} ({view.decision.outcome})"
    assert f"<title>{title}</title>" in html
    if view.evaluation is None:
        assert "No evaluation record" in page.section("evaluation")
    if view.canary is None:
        assert "has not received live traffic" in page.section("canary")


def test_evaluation_table_shows_each_metric_with_its_numbers_and_a_plot(scenario: Get) -> None:
    view = _view(scenario("rejected"))
    assert view.evaluation is not None
    html = render_html(view)
    page = Page(html)
    rows = page.find("tr", "metric")
    assert [r["data-metric"] for r in rows] == [m.name for m in view.evaluation.metrics]
    text = page.section("evaluation")
    for m in view.evaluation.metrics:
        assert _num(m.baseline) in text and _num(m.candidate) in text and _num(m.diff, True) in text
        assert f"[{_num(m.ci_low, True)}, {_num(m.ci_high, True)}]" in text
    f1 = next(m for m in view.evaluation.metrics if m.name == "answer_f1")
    assert f1.verdict == "fail"
    assert any(r["data-metric"] == "answer_f1" and "verdict-fail" in r["class"] for r in rows)
    figures = page.find("figure", "histogram")
    assert [f["data-metric"] for f in figures] == [m.name for m in view.evaluation.metrics]
    assert len(page.find("svg")) == len(view.evaluation.metrics)
    # two bars per bin: answer_f1's scores are spread over all 10 bins
    assert len(page.find("rect", "bar")) >= 2 * 10
    assert "gate FAIL" in text


def test_canary_section_has_the_timeline_and_a_row_per_weight_step(scenario: Get) -> None:
    view = _view(scenario("promoted"))
    assert view.canary is not None
    page = Page(render_html(view))
    assert len(page.find("tr", "canary-step")) == len(view.canary.steps) == 2
    assert len(page.find("circle", "weight-point")) == 3
    assert len(page.find("path", "weight-line")) == 1
    text = page.section("canary")
    assert "10 %" in text and "50 %" in text and "promoted" in text
    for step in view.canary.steps:
        assert f" {step.canary.requests} " in f" {text} " and f" {step.baseline.requests} " in f" {text} "
    assert len(page.find("div", "analysis")) == 2


def test_audit_section_lists_every_event_with_hash_and_digests(scenario: Get) -> None:
    s = scenario("promoted")
    view = _view(s)
    page = Page(render_html(view))
    assert [int(r["data-seq"]) for r in page.find("tr", "audit-event")] == [e.seq for e in view.audit]
    text = page.section("audit")
    assert all(e.hash in text for e in view.audit)
    assert s.built.candidate in text and s.built.baseline in text
    assert "The whole audit chain verifies" in text and str(view.audit_head_hash) in text


def test_prepare_section_shows_the_finetune_job_and_the_chunking_stats(scenario: Get) -> None:
    view = _view(scenario("prepared"))
    text = Page(render_html(view)).section("prepare")
    chunking = view.prepare.chunking
    assert chunking is not None
    assert "ftjob-report-1" in text and "gpt-4o-mini-2024-07-18.ft-report" in text
    assert chunking.generation in text and f"{chunking.documents} → {chunking.chunks}" in text


def test_hostile_strings_are_escaped_everywhere(scenario: Get) -> None:
    view = _view(scenario("promoted", hostile=True))
    html = render_html(view)
    page = Page(html)
    # no markup from the data became an element
    assert page.find("script") == [] and page.find("b") == []
    assert "<script>" not in html and "<b>bold</b>" not in html
    # ... and the text is still there for a person to read
    assert HOSTILE in page.section("summary")  # the migration's actor and reason
    assert HOSTILE in page.section("assessment")  # the assessment's risks


def test_no_external_resources_except_the_prefect_run_link(scenario: Get) -> None:
    view = _view(scenario("promoted")).model_copy(update={"flow_run_id": "0b7e-run"})
    page = Page(render_html(view, prefect_ui_url=UI + "/"))
    external = [
        (tag, name, value)
        for tag, attrs in page.tags
        for name, value in attrs.items()
        if name in ("src", "href", "xlink:href", "action") and re.match(r"(?i)\s*(https?:)?//", value)
    ]
    assert external == [("a", "href", f"{UI}/runs/flow-run/0b7e-run")]
    assert all(a["href"].startswith("#") for a in page.find("a") if "prefect-run" not in a.get("class", ""))
    # no UI URL (or one that is not http/https) -> no link at all, the run id is shown as text
    for ui in (None, "javascript:alert(1)"):
        page = Page(render_html(view, prefect_ui_url=ui))
        assert page.find("a", "prefect-run") == []
        assert "0b7e-run" in page.section("summary")


def test_write_report_writes_the_file_atomically_under_reports(scenario: Get, tmp_path: Path) -> None:
    view = _view(scenario("evaluated"))
    path = report_path(tmp_path, view.id)
    assert path == tmp_path / "reports" / f"{view.id}.html"
    assert write_report(view, path) == path
    assert path.read_text(encoding="utf-8") == render_html(view)
    assert list(path.parent.iterdir()) == [path]
    assert report_path(tmp_path, "../../etc/x").parent == tmp_path / "reports"


def test_markdown_summary_and_tables_carry_the_decision_and_the_numbers(scenario: Get) -> None:
    view = _view(scenario("rolled_back"))
    markdown = report_markdown(view, report_path="/r/x.html")
    assert markdown.startswith("# Migration of shop: **rolled back**")
    assert "`/r/x.html`" in markdown and view.baseline.digest in markdown
    assert view.evaluation is not None and view.canary is not None
    for m in view.evaluation.metrics:
        assert f"| {m.name} | {_num(m.baseline)} | {_num(m.candidate)} |" in markdown
    assert "| 10 % | 40 | 35.00 % | 0.00 % |" in markdown
    tables = report_tables(view)
    assert set(tables) == {"stages", "evaluation", "canary"}
    assert [r["metric"] for r in tables["evaluation"]] == [m.name for m in view.evaluation.metrics]
    assert tables["canary"][0]["canary_error_rate"] == pytest.approx(0.35)
    assert {r["stage"]: r["state"] for r in tables["stages"]}["roll back"] == "done"
    planned = report_tables(_view(scenario("planned")))
    assert set(planned) == {"stages"}
