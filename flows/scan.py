"""The ``retirement-scan`` flow: assess every production bundle, report them, and start one
``model-migration`` per app that needs one, idempotently.

It also runs the retirement sweep: retired baselines' deployments whose grace period is over are deleted.

Started by the daily schedule, by hand, or by the deployment trigger on the webhook's notice event (then
``models`` scopes it to the models the notice names). Under a deployment each migration becomes its own
deployment run (``run_deployment(timeout=0, idempotency_key=...)``); otherwise it runs in-process as a
subflow. Either way the migrations table refuses a second active migration per app and a repeated key.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import flow, get_run_logger

from modelshift.launcher import in_deployment
from modelshift.migration.params import MigrationOutcome, MigrationParams
from modelshift.migration.phases import Trigger
from tasks.assess import assess_fleet
from tasks.launch import start_migration_run
from tasks.records import decide_launch
from tasks.report import publish_scan
from tasks.results import AppAssessment
from tasks.sweep import sweep_deployments


def _params(assessment: AppAssessment, notice_id: str | None, as_of: date | None) -> MigrationParams:
    trigger = Trigger.NOTICE if notice_id else Trigger.SCHEDULE
    when = f"retires {assessment.retirement}" if assessment.retirement else assessment.status
    source = f"Azure notice {notice_id}" if notice_id else "retirement scan"
    return MigrationParams(
        app=assessment.app,
        target=assessment.target,
        reason=f"{source}: {assessment.model} {when}",
        trigger=trigger,
        notice_id=notice_id,
        as_of=as_of,
        actor=f"notice:{notice_id}" if notice_id else "retirement-scan",
    )


@flow(name="retirement-scan", validate_parameters=True)
def retirement_scan(
    as_of: date | None = None,
    horizon_days: int = 90,
    models: list[str] | None = None,
    notice_id: str | None = None,
) -> dict[str, Any]:
    """Assess the fleet and start the migrations it needs; returns what was started and what was skipped."""
    logger = get_run_logger()
    assessments = assess_fleet(as_of, horizon_days, models)
    scope = f" for {', '.join(models)}" if models else ""
    publish_scan(assessments, f"Retirement scan{scope}: {len(assessments)} production bundle(s)")
    deployed = in_deployment()
    started: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for assessment in assessments:
        if not assessment.needs_migration:
            continue
        decision = decide_launch(assessment)
        if not decision.start:
            logger.info("%s: not starting a migration: %s", assessment.app, decision.why)
            skipped.append({"app": assessment.app, "why": decision.why})
            continue
        params = _params(assessment, notice_id, as_of)
        if deployed:
            run = start_migration_run(params, decision.prefect_key)
            logger.info("%s: migration run %s (%s) started", assessment.app, run.name, run.flow_run_id)
            started.append(
                {"app": assessment.app, "flow_run_id": run.flow_run_id, "key": decision.prefect_key}
            )
            continue
        state = model_migration_subflow(params)
        if state.is_completed():
            outcome: MigrationOutcome = state.result()
            started.append(
                {"app": assessment.app, "migration_id": outcome.migration_id, "phase": outcome.phase}
            )
        else:
            logger.error("%s: in-process migration ended %s: %s", assessment.app, state.type, state.message)
            skipped.append(
                {"app": assessment.app, "why": f"migration run ended {state.type}: {state.message}"}
            )
    # retired baselines whose grace period is over lose their deployments (the canary never sleeps a day)
    swept = sweep_deployments()
    deleted = [row for row in swept if row["action"] == "deleted"]
    logger.info(
        "scan done: %d assessed, %d started, %d skipped, %d retired deployment(s) deleted",
        len(assessments),
        len(started),
        len(skipped),
        len(deleted),
    )
    return {
        "assessed": len(assessments),
        "started": started,
        "skipped": skipped,
        "notice_id": notice_id,
        "swept": swept,
    }


def model_migration_subflow(params: MigrationParams) -> Any:
    """Run ``model-migration`` in-process as a subflow and return its final state (never raises)."""
    from flows.migrate import model_migration

    return model_migration(params, return_state=True)
