"""The migration report in short, for Prefect artifacts: a markdown page and plain tables.

Cells are plain text (pipes and newlines neutralised); Prefect renders the markdown itself.
"""

from __future__ import annotations

from modelshift.report.data import MigrationView

Row = dict[str, str | int | float | bool | None]


def _cell(value: object) -> str:
    text = "-" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ").replace("\r", " ")


def _num(value: float | None, *, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.4g}" if signed else f"{value:.4g}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f} %"


def report_markdown(view: MigrationView, *, report_path: str | None = None) -> str:
    """A short page: the decision, from/to, the stages, the gate's metrics and the canary steps."""
    d = view.decision
    lines = [
        f"# Migration of {_cell(view.app)}: **{_cell(d.outcome)}**",
        "",
        f"- migration `{view.id}` (phase **{view.phase}**)",
        f"- from {_cell(view.from_model)} `{view.baseline.digest}`",
        f"- to {_cell(view.to_model)}" + (f" `{view.candidate.digest}`" if view.candidate else ""),
        f"- offline gate: {_cell(d.gate_verdict)}; canary: {_cell(d.canary_verdict)}",
    ]
    if d.reason:
        lines.append(f"- why: {_cell(d.reason)}")
    if report_path:
        lines.append(f"- full report: `{report_path}`")
    lines += ["", "| stage | state | started | ended |", "|---|---|---|---|"]
    for s in view.stages:
        lines.append(
            f"| {s.name} | {s.state} | {s.started_at.isoformat() if s.started_at else '-'} | "
            f"{s.ended_at.isoformat() if s.ended_at else '-'} |"
        )
    if view.evaluation is not None:
        lines += [
            "",
            f"## Evaluation: {_cell(view.evaluation.summary)}",
            "",
            "| metric | baseline | candidate | diff | CI | p | margin | verdict |",
            "|---|---:|---:|---:|---|---:|---:|---|",
        ]
        for m in view.evaluation.metrics:
            ci = "-" if m.ci_low is None or m.ci_high is None else f"[{_num(m.ci_low, signed=True)}, "
            ci += "" if ci == "-" else f"{_num(m.ci_high, signed=True)}]"
            lines.append(
                f"| {_cell(m.name)} | {_num(m.baseline)} | {_num(m.candidate)} | "
                f"{_num(m.diff, signed=True)} | {ci} | {_num(m.p_value)} | {_num(m.margin)} | "
                f"{_cell(m.verdict)} |"
            )
    if view.canary is not None:
        c = view.canary
        lines += [
            "",
            f"## Canary: {_cell(c.outcome)}" + (f" ({_cell(c.verdict)})" if c.verdict else ""),
            "",
            "| weight | canary requests | canary error rate | baseline error rate | canary p50 ms "
            "| baseline p50 ms |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        for w in c.steps:
            lines.append(
                f"| {w.candidate_weight} % | {w.canary.requests} | {_pct(w.canary.error_rate)} | "
                f"{_pct(w.baseline.error_rate)} | {_num(w.canary.latency_p50_ms)} | "
                f"{_num(w.baseline.latency_p50_ms)} |"
            )
    verified = {None: "not checked", True: "verifies", False: "does NOT verify"}[view.audit_verified]
    lines += ["", f"Audit trail: {len(view.audit)} event(s); chain {verified}."]
    return "\n".join(lines) + "\n"


def report_tables(view: MigrationView) -> dict[str, list[Row]]:
    """Plain tables (``create_table_artifact`` rows) by name: ``stages``, ``evaluation``, ``canary``."""
    tables: dict[str, list[Row]] = {
        "stages": [
            {
                "stage": s.name,
                "state": s.state,
                "started": None if s.started_at is None else s.started_at.isoformat(),
                "ended": None if s.ended_at is None else s.ended_at.isoformat(),
            }
            for s in view.stages
        ]
    }
    if view.evaluation is not None:
        tables["evaluation"] = [
            {
                "metric": m.name,
                "baseline": m.baseline,
                "candidate": m.candidate,
                "diff": m.diff,
                "ci_low": m.ci_low,
                "ci_high": m.ci_high,
                "p_value": m.p_value,
                "margin": m.margin,
                "n": m.n,
                "verdict": m.verdict,
            }
            for m in view.evaluation.metrics
        ]
    if view.canary is not None:
        tables["canary"] = [
            {
                "start": w.start.isoformat(),
                "end": w.end.isoformat(),
                "weight": w.candidate_weight,
                "canary_requests": w.canary.requests,
                "canary_error_rate": w.canary.error_rate,
                "baseline_requests": w.baseline.requests,
                "baseline_error_rate": w.baseline.error_rate,
                "canary_p50_ms": w.canary.latency_p50_ms,
                "baseline_p50_ms": w.baseline.latency_p50_ms,
            }
            for w in view.canary.steps
        ]
    return tables
