"""The plan task: turn an assessment into a migration plan (target, scope, stages and why, blockers).

Calls the lifecycle planner (``modelshift.lifecycle.plan``) when this checkout has it; until then it
classifies the scope of the change with ``modelshift.lifecycle.scope`` and lists no stages.
"""

from __future__ import annotations

import importlib
from typing import Any

from prefect import task

from modelshift.errors import ConfigError
from modelshift.lifecycle.families import load_families
from modelshift.lifecycle.scope import ModelPoint, classify_scope
from modelshift.migration.params import parse_target
from tasks.results import AppAssessment, PlanSummary
from tasks.retry import PLATFORM_RETRIES, PLATFORM_RETRY_DELAYS, retry_condition_fn


def _scope_only(assessment: AppAssessment) -> PlanSummary:
    if assessment.target is None:
        raise ConfigError(
            f"app {assessment.app}: no target model for {assessment.model} (status {assessment.status}); "
            "pass --target NAME@VERSION",
            app=assessment.app,
        )
    name, version = parse_target(assessment.target)
    cur_name, _, cur_version = assessment.model.partition("@")
    platform = str(assessment.detail.get("platform") or "azure-openai")
    decision = classify_scope(
        ModelPoint(name=cur_name, version=cur_version or None, platform=platform),
        ModelPoint(name=name, version=version, platform=platform),
        load_families(),
    )
    detail: dict[str, Any] = {"scope": decision.model_dump(mode="json"), "planner": "scope-only"}
    return PlanSummary(
        app=assessment.app,
        target=assessment.target,
        scope=str(decision.scope),
        stages=[],
        detail=detail,
    )


def build_plan(assessment: AppAssessment) -> PlanSummary:
    """The plan for one assessed app (pure given the assessment)."""
    try:
        planner = importlib.import_module("modelshift.lifecycle.plan")
    except ModuleNotFoundError:
        return _scope_only(assessment)
    summary: PlanSummary = planner.plan_summary(assessment.model_dump(mode="json"))
    return summary


@task(
    name="plan-migration",
    retries=PLATFORM_RETRIES,
    retry_delay_seconds=PLATFORM_RETRY_DELAYS,
    retry_condition_fn=retry_condition_fn,
)
def plan_migration(assessment: AppAssessment) -> PlanSummary:
    """Plan the migration of one assessed app; changes nothing."""
    return build_plan(assessment)
