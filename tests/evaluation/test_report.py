"""GateReport: JSON round trip, markdown artifact, plain-text CLI rendering, failing/vetoes/summary."""

from __future__ import annotations

import json

import pytest

from modelshift.evaluation.report import GateCounts, GateReport, MetricRow, Verdict


def metric_row(name: str, verdict: Verdict, *, critical: bool = False, **over: object) -> MetricRow:
    values: dict[str, object] = {
        "candidate": 0.61,
        "baseline": 0.72,
        "diff": -0.11,
        "ci_low": -0.14,
        "ci_high": -0.08,
        "p_value": 0.0001234,
        "margin": 0.03,
        "greater_is_better": True,
        "n": 40,
        "reason": "worse by 0.11, beyond the margin 0.03 (p=0.000123 < 0.05)",
    }
    values.update(over)
    return MetricRow.model_validate({"name": name, "verdict": verdict, "critical": critical, **values})


def report(rows: list[MetricRow], verdict: Verdict, counts: GateCounts | None = None) -> GateReport:
    return GateReport(
        verdict=verdict,
        rows=rows,
        counts=counts or GateCounts(paired=40),
        confidence=0.95,
        min_items=30,
        seed=0,
        n_resamples=2000,
    )


FAILED = report(
    [
        metric_row("groundedness", Verdict.FAIL),
        metric_row("answer_f1", Verdict.FAIL, critical=True),
        metric_row(
            "latency_p95_ms", Verdict.PASS, greater_is_better=False, candidate=140.0, baseline=150.0,
            diff=-10.0, ci_low=-12.0, ci_high=-8.0, p_value=1.0, margin=75.0, reason="non-inferior",
        ),
        metric_row(
            "retrieval_hit_rate", Verdict.INCONCLUSIVE, candidate=None, baseline=None, diff=None,
            ci_low=None, ci_high=None, p_value=None, margin=None, n=0, reason="defined on none | of 40",
        ),
    ],
    Verdict.FAIL,
    GateCounts(
        paired=40,
        candidate_only=["extra"],
        baseline_only=[f"q{i}" for i in range(12)],
        failed_candidate=["q50"],
        failed_baseline=["q50", "q51"],
    ),
)  # fmt: skip


def test_failing_lists_every_failure_critical_first() -> None:
    assert [r.name for r in FAILED.failing()] == ["answer_f1", "groundedness"]
    assert [r.name for r in FAILED.vetoes()] == ["answer_f1"]
    assert [r.name for r in FAILED.inconclusive()] == ["retrieval_hit_rate"]
    assert not FAILED.passed


def test_summary_names_failures_and_inconclusive_metrics() -> None:
    assert FAILED.summary() == (
        "gate FAIL; failing: answer_f1 (critical), groundedness; inconclusive: retrieval_hit_rate; "
        "40 paired items at 95% confidence"
    )


def test_json_round_trip() -> None:
    text = FAILED.model_dump_json()
    data = json.loads(text)
    assert data["verdict"] == "fail"
    assert data["rows"][1]["name"] == "answer_f1" and data["rows"][1]["critical"] is True
    assert data["rows"][3]["ci_low"] is None
    assert {"paired", "candidate_only", "baseline_only", "failed_candidate", "failed_baseline"} <= set(
        data["counts"]
    )
    assert GateReport.model_validate_json(text) == FAILED


def test_markdown_has_a_row_per_metric_and_the_counts() -> None:
    md = FAILED.render_markdown()
    lines = md.splitlines()
    assert lines[0] == "## Evaluation gate: **FAIL**"
    table = [line for line in lines if line.startswith("| ")]
    assert len(table) == 1 + 4  # header + one row per metric
    assert all(line.count(" | ") == table[0].count(" | ") for line in table)  # escaped pipes keep columns
    assert "| answer_f1 (higher is better) **critical** | 0.61 | 0.72 | -0.11 | [-0.14, -0.08] |" in md
    assert "| latency_p95_ms (lower is better) | 140 | 150 | -10 |" in md
    assert "defined on none \\| of 40" in md
    assert "| retrieval_hit_rate (higher is better) | - | - | - | - | - | - | 0 | **inconclusive** |" in md
    assert "- only in baseline: 12 (q0, q1, q2, q3, q4, q5, q6, q7, q8, q9, and 2 more)" in md
    assert "- failed on baseline: 2 (q50, q51)" in md
    assert "Seed 0, 2000 bootstrap resamples, min_items 30." in md


def test_text_is_plain_aligned_and_explains_non_passing_rows() -> None:
    text = FAILED.render_text()
    lines = text.splitlines()
    assert lines[0].startswith("gate FAIL; failing: answer_f1 (critical)")
    header = lines[2]
    assert header.split() == ["metric", "candidate", "baseline", "diff", "CI", "p", "margin", "n", "verdict"]
    # columns line up: every table row has its verdict where the header has "verdict"
    column = header.index("verdict")
    assert [line[column:].strip() for line in lines[3:7]] == ["FAIL", "FAIL", "PASS", "INCONCLUSIVE"]
    assert lines[4].startswith("answer_f1 *")
    assert "answer_f1: fail — worse by 0.11" in text
    assert "latency_p95_ms: pass" not in text  # passing rows need no explanation
    assert "only in candidate: 1 (extra)" in text
    for markup in ("**", "[bold", "\x1b["):
        assert markup not in text


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0.123456, "0.1235"), (1234567.0, "1.235e+06"), (0.0, "0"), (None, "-"), (float("nan"), "-")],
)
def test_numbers_are_compact(value: float | None, expected: str) -> None:
    r = report([metric_row("cost", Verdict.PASS, candidate=value)], Verdict.PASS)
    assert f"| cost (higher is better) | {expected} |" in r.render_markdown()


def test_passing_report() -> None:
    r = report([metric_row("answer_f1", Verdict.PASS, diff=0.0, ci_low=0.0, ci_high=0.0)], Verdict.PASS)
    assert r.passed and r.failing() == [] and r.vetoes() == []
    assert r.summary() == "gate PASS; 40 paired items at 95% confidence"
    assert "[+0, +0]" in r.render_text()
    assert "only in" not in r.render_markdown()


def test_table_rows_for_a_prefect_table_artifact() -> None:
    table = FAILED.table()
    assert [r["name"] for r in table] == ["groundedness", "answer_f1", "latency_p95_ms", "retrieval_hit_rate"]
    assert table[1] == {
        "name": "answer_f1",
        "candidate": 0.61,
        "baseline": 0.72,
        "diff": -0.11,
        "ci_low": -0.14,
        "ci_high": -0.08,
        "p_value": 0.0001234,
        "margin": 0.03,
        "n": 40,
        "critical": True,
        "greater_is_better": True,
        "verdict": "fail",
        "reason": "worse by 0.11, beyond the margin 0.03 (p=0.000123 < 0.05)",
    }
    assert json.loads(json.dumps(table)) == table  # plain JSON values only
