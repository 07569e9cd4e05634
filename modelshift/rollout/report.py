"""Markdown renderings of analyses and rollouts, for Prefect artifacts and approval forms.

Users of canary tools ask above all "why did it pass or fail?", so every table shows both values, the
difference, the p-value and the rule that was applied, not only the verdict.
"""

from __future__ import annotations

from modelshift.rollout.analysis import AnalysisResult, MetricVerdict
from modelshift.rollout.spec import RolloutSpec, RolloutStatus


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _cell(text: str) -> str:
    # a pipe would end the table cell early
    return text.replace("|", "\\|").replace("\n", " ")


def _metric_row(metric: MetricVerdict) -> str:
    verdict = str(metric.verdict) if metric.counted else f"{metric.verdict} (not counted)"
    cells = [
        metric.name,
        verdict,
        _fmt(metric.canary),
        _fmt(metric.baseline),
        _fmt(metric.difference),
        _fmt(metric.p_value),
        f"{metric.n_canary} / {metric.n_baseline}",
        _cell(metric.rule),
    ]
    return "| " + " | ".join(cells) + " |"


def analysis_markdown(result: AnalysisResult) -> str:
    """One analysis as markdown: the verdict and reason, then one table row per metric."""
    lines = [
        f"**Verdict: {result.verdict}** - {_cell(result.reason)}",
        "",
        "| metric | verdict | canary | baseline | difference | p | n canary / baseline | rule |",
        "|---|---|---|---|---|---|---|---|",
        *(_metric_row(m) for m in result.metrics),
    ]
    return "\n".join(lines) + "\n"


def rollout_markdown(spec: RolloutSpec, status: RolloutStatus) -> str:
    """The rollout so far: phase, current weights and one row per finished step."""
    total = len(spec.steps)
    weights = ", ".join(f"{d}: {w} %" for d, w in sorted(status.weights.items())) or "not set yet"
    lines = [
        f"### Canary of {spec.app}",
        "",
        f"- baseline `{spec.baseline_digest}`",
        f"- candidate `{spec.candidate_digest}`",
        f"- phase **{status.phase}**, step {min(status.step_index + 1, total)} of {total}",
        f"- weights: {weights}",
    ]
    if status.outcome_reason:
        outcome = f"{status.outcome_verdict}: " if status.outcome_verdict else ""
        lines.append(f"- outcome: {outcome}{_cell(status.outcome_reason)}")
    lines += ["", "| # | step | verdict | approved by | finished | reason |", "|---|---|---|---|---|---|"]
    for record in status.history:
        cells = [
            str(record.index + 1),
            record.kind,
            "-" if record.verdict is None else str(record.verdict),
            record.approved_by or "-",
            record.finished_at.isoformat(),
            _cell(record.reason) or "-",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
