"""The ``model-migration`` flow: control flow only; every step is a task (tasks/).

In this issue it runs the assess and plan stages for real, records them in the migration record and the
audit chain, publishes the plan as artifacts, and ends: a dry run in ``dry_run_done``, a real run in
``planned``. The prepare, evaluate, canary and promote stages arrive in later issues, in this same flow.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from modelshift.migration import MigrationPhase
from modelshift.migration.params import MigrationOutcome, MigrationParams
from tasks.assess import assess_app
from tasks.plan import plan_app
from tasks.records import advance_migration, open_migration
from tasks.report import publish_plan


@flow(name="model-migration", flow_run_name="migrate-{params.app}", validate_parameters=True)
def model_migration(params: MigrationParams) -> MigrationOutcome:
    """Migrate one app's production bundle to a new model (assess and plan in this release)."""
    logger = get_run_logger()
    assessment = assess_app(params.app, params.target, params.as_of)
    logger.info(
        "%s on %s: %s, target %s",
        params.app,
        assessment.model,
        assessment.status,
        assessment.target or "none",
    )
    run_id = flow_run.get_id()
    started = open_migration(params, assessment, run_id)
    record = started.migration
    if not started.created:
        logger.info(
            "migration %s already covers %s -> %s (phase %s); starting nothing new",
            record.id,
            params.app,
            record.target,
            record.phase,
        )
        return MigrationOutcome(
            migration_id=record.id,
            app=params.app,
            phase=record.phase,
            created=False,
            target=record.target,
            baseline_digest=record.baseline_digest,
            plan=record.plan,
            message=f"migration {record.id} already exists for this app, baseline and target",
        )
    advance_migration(
        record.id,
        MigrationPhase.ASSESSING,
        params.actor,
        evidence={k: v for k, v in assessment.row().items() if k != "risks"} | {"risks": assessment.risks},
    )
    try:
        plan = plan_app(assessment, params.as_of)
    except Exception as exc:
        advance_migration(record.id, MigrationPhase.FAILED, params.actor, evidence={"error": str(exc)[:2000]})
        raise
    plan_data = plan.detail
    if plan.status == "no_target":
        advance_migration(
            record.id,
            MigrationPhase.FAILED,
            params.actor,
            evidence={"error": "; ".join(plan.blockers)},
            plan=plan_data,
        )
        publish_plan(plan, assessment, record.id, str(MigrationPhase.FAILED))
        return MigrationOutcome(
            migration_id=record.id,
            app=params.app,
            phase=MigrationPhase.FAILED,
            created=True,
            baseline_digest=assessment.baseline_digest,
            plan=plan_data,
            plan_text=plan.text,
            message="; ".join(plan.blockers),
        )
    if params.dry_run:
        final, note = MigrationPhase.DRY_RUN_DONE, "dry run: assessed and planned, nothing changed"
    else:
        final = MigrationPhase.PLANNED
        note = "planned; the prepare, evaluate, canary and promote stages arrive in later modelshift releases"
    advance_migration(record.id, final, params.actor, evidence={"note": note}, plan=plan_data)
    publish_plan(plan, assessment, record.id, str(final))
    logger.info("migration %s of %s: %s (%s)", record.id, params.app, final, note)
    return MigrationOutcome(
        migration_id=record.id,
        app=params.app,
        phase=final,
        created=True,
        target=plan.target,
        baseline_digest=assessment.baseline_digest,
        plan=plan_data,
        plan_text=plan.text,
        message=note,
    )
