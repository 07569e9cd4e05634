"""Report tasks: the scan table, and the migration plan as markdown and as a table (Prefect artifacts).

Artifact keys are lowercase letters, digits and dashes (notes/prefect-3.md §6); the same key across runs
makes versions, so the Artifacts tab shows a plan's history per app."""

from __future__ import annotations

import re

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from tasks.results import AppAssessment, PlanSummary


def artifact_key(*parts: str) -> str:
    """A valid artifact key from free text (lowercase, digits and dashes)."""
    raw = "-".join(parts).lower()
    return re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]", "-", raw)).strip("-")[:100] or "modelshift"


def plan_markdown(plan: PlanSummary, assessment: AppAssessment, *, migration_id: str, phase: str) -> str:
    """The plan as a page a person reads before approving anything."""
    lines = [
        f"# Migration plan: {plan.app}",
        "",
        f"- migration: `{migration_id}` (phase **{phase}**)",
        f"- baseline: bundle {assessment.bundle_version} `{assessment.baseline_digest}`",
        f"- model: {assessment.model} on {assessment.account}/{assessment.deployment}",
        f"- status: **{assessment.status}**, retirement {assessment.retirement or 'n/a'}"
        f" ({'n/a' if assessment.days_left is None else assessment.days_left} days left)",
        f"- target: **{plan.target}** ({assessment.target_source or 'explicit'})",
        f"- scope: **{plan.scope or 'unknown'}**",
    ]
    if assessment.risks:
        lines += ["", "## Risks", *(f"- {r}" for r in assessment.risks)]
    lines += ["", "## Stages"]
    lines += [
        f"- [{'run' if s.get('runs') == 'yes' else 'skip'}] **{s.get('name', '?')}**: {s.get('why', '')}"
        for s in plan.stages
    ] or ["- (none listed)"]
    if plan.blockers:
        lines += ["", f"## {plan.status}", *(f"- {b}" for b in plan.blockers)]
    if plan.text:
        lines += ["", "## Plan", "", "```text", plan.text, "```"]
    return "\n".join(lines) + "\n"


@task(name="publish-plan")
def publish_plan(plan: PlanSummary, assessment: AppAssessment, migration_id: str, phase: str) -> None:
    """Write the plan as a markdown artifact and its stages as a table artifact."""
    key = artifact_key("migration-plan", plan.app)
    create_markdown_artifact(
        markdown=plan_markdown(plan, assessment, migration_id=migration_id, phase=phase),
        key=key,
        description=f"Migration plan of {plan.app} ({migration_id})",
    )
    rows = [
        {"stage": s.get("name", ""), "runs": s.get("runs", ""), "why": s.get("why", "")} for s in plan.stages
    ]
    create_table_artifact(
        table=rows or [{"stage": "(none)", "why": f"scope {plan.scope}"}],
        key=artifact_key("migration-stages", plan.app),
        description=f"Stages of migration {migration_id}",
    )


@task(name="publish-scan")
def publish_scan(assessments: list[AppAssessment], title: str) -> None:
    """Write the fleet's assessments as one table artifact."""
    create_table_artifact(
        table=[a.row() for a in assessments] or [{"app": "(no production bundles matched)"}],
        key="retirement-scan",
        description=title,
    )
