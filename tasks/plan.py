"""The plan task: the lifecycle planner (``modelshift.lifecycle.plan_migration``) for one app, reduced to a
small typed result; changes nothing."""

from __future__ import annotations

from datetime import date

from prefect import task

from modelshift.lifecycle import MigrationPlan, load_families, parse_target, plan_migration
from tasks.assess import as_of_datetime, live_snapshot, load_production
from tasks.results import AppAssessment, PlanSummary
from tasks.retry import PLATFORM_RETRIES, PLATFORM_RETRY_DELAYS, retry_condition_fn


def summarize(plan: MigrationPlan) -> PlanSummary:
    """The flow-facing summary of a plan (the whole plan stays in ``detail``)."""
    blockers = []
    if plan.quota is not None and plan.quota.status == "blocked":
        blockers.append(plan.quota.message)
    if plan.status == "no_target":
        blockers.append(f"no target model for {plan.baseline.model}; pass --target NAME@VERSION")
    return PlanSummary(
        app=plan.app,
        status=plan.status,
        target=str(plan.target) if plan.target is not None else None,
        scope=plan.scope.scope.value if plan.scope is not None else None,
        stages=[{"name": s.name, "runs": "yes" if s.runs else "no", "why": s.why} for s in plan.stages],
        blocked=plan.status != "ready",
        blockers=blockers,
        text=plan.render_text(),
        detail=plan.model_dump(mode="json"),
    )


@task(
    name="plan-migration",
    retries=PLATFORM_RETRIES,
    retry_delay_seconds=PLATFORM_RETRY_DELAYS,
    retry_condition_fn=retry_condition_fn,
)
def plan_app(assessment: AppAssessment, as_of: date | None = None, horizon_days: int = 90) -> PlanSummary:
    """Plan the migration of one assessed app towards the assessment's target; changes nothing."""
    (bundle,) = load_production(assessment.app)
    target = parse_target(assessment.target) if assessment.target else None
    plan = plan_migration(
        bundle,
        live_snapshot([bundle]),
        load_families(),
        as_of=as_of_datetime(as_of),
        target=target,
        horizon_days=horizon_days,
    )
    return summarize(plan)
