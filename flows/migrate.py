"""The ``model-migration`` flow: control flow only; every step is a task (tasks/).

It runs the assess and plan stages, records them in the migration record and the audit chain, publishes
the plan as artifacts, and then: a dry run ends in ``dry_run_done``; a real run ends in ``planned``, or —
with ``MODELSHIFT_PREPARE_STAGE=true`` and a ready plan — goes on through the prepare stage (golden data
check, fine-tune re-run, re-chunk, side-by-side deployment, candidate bundle) and ends in ``prepared``, or
``failed`` with the reason (a GX report, Azure's fine-tune error, quota) and the baseline untouched.

A re-run of a migration that is still ``planned`` or ``preparing`` (a crash mid-stage) resumes the prepare
stage of that same migration: every step finds what the earlier run made (job, generation, deployment,
candidate) instead of making it again.

With ``MODELSHIFT_EVALUATE_STAGE=true`` a prepared migration goes on: ``evaluating`` (candidate vs baseline on
the golden data, through the gate), then ``evaluated`` (candidate bundle ``evaluated``) when the gate passes,
or ``failed`` when it fails or is inconclusive (candidate ``rejected``, its side-by-side deployment deleted,
baseline and router untouched). A re-run of a migration left ``prepared`` or ``evaluating`` finishes the
stage, using the evaluation record when one exists (the candidate is not run again). The canary and promote
stages arrive in later issues.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from modelshift.errors import DataValidationError, ModelshiftError
from modelshift.evaluation.stage import evaluate_stage_enabled
from modelshift.migration import MigrationPhase
from modelshift.migration.params import MigrationOutcome, MigrationParams
from modelshift.settings import get_settings
from modelshift.validation import report_from_error
from tasks.assess import assess_app
from tasks.evaluate import candidate_of, evaluate_candidate, settle_candidate
from tasks.plan import plan_app
from tasks.prepare import compose, deploy, fine_tune, rechunk, validate_golden
from tasks.records import advance_migration, open_migration
from tasks.report import publish_plan

#: phases from which a (re-)run carries on with the prepare stage
_RESUMABLE = frozenset({MigrationPhase.PLANNED, MigrationPhase.PREPARING})
#: phases from which a (re-)run carries on with the evaluate stage
_EVALUABLE = frozenset({MigrationPhase.PREPARED, MigrationPhase.EVALUATING})


def _runs(plan: dict[str, Any], stage: str) -> bool:
    return any(s.get("name") == stage and s.get("runs") for s in plan.get("stages") or [])


def _prepares(params: MigrationParams, plan: dict[str, Any] | None) -> bool:
    """Whether this real run goes on into the prepare stage (enabled, and a plan that is ready)."""
    return (
        not params.dry_run
        and get_settings().prepare_stage
        and plan is not None
        and plan.get("status") == "ready"
    )


def _failure_evidence(exc: ModelshiftError, stage: str) -> dict[str, Any]:
    evidence: dict[str, Any] = {"stage": stage, "error": str(exc)[:2000], "error_type": type(exc).__name__}
    if isinstance(exc, DataValidationError):
        report = report_from_error(exc)
        if report is not None:
            evidence["report"] = report.audit_data()
    return evidence


def _prepare(
    migration_id: str,
    baseline_digest: str,
    plan: dict[str, Any],
    params: MigrationParams,
    *,
    phase: MigrationPhase,
    created: bool,
    plan_text: str = "",
) -> MigrationOutcome:
    """The prepare stage of one migration, from ``phase`` (planned, or preparing when resuming)."""
    logger = get_run_logger()
    actor = params.actor
    target = f"{plan['target']['name']}@{plan['target']['version']}" if plan.get("target") else None

    def outcome(final: MigrationPhase, message: str) -> MigrationOutcome:
        return MigrationOutcome(
            migration_id=migration_id,
            app=params.app,
            phase=final,
            created=created,
            target=target,
            baseline_digest=baseline_digest,
            plan=plan,
            plan_text=plan_text,
            message=message,
        )

    stages = [name for name in ("fine_tune", "rechunk") if _runs(plan, name)]
    if phase is MigrationPhase.PLANNED:
        advance_migration(migration_id, MigrationPhase.PREPARING, actor, evidence={"stages": stages})
    else:
        logger.info("migration %s is %s: resuming its prepare stage", migration_id, phase)
    step = "golden-data"
    try:
        validate_golden(migration_id, baseline_digest, actor)
        tuned = None
        if "fine_tune" in stages:
            step = "fine_tune"
            tuned = fine_tune(migration_id, baseline_digest, plan, actor)
        chunks = None
        if "rechunk" in stages:
            step = "rechunk"
            chunks = rechunk(migration_id, baseline_digest, plan, actor)
        step = "deploy"
        deployment = (
            tuned.deployment
            if tuned is not None
            else deploy(migration_id, baseline_digest, plan, actor).deployment
        )
        step = "candidate"
        candidate = compose(
            migration_id,
            baseline_digest,
            plan,
            deployment,
            actor,
            fine_tuned_model=tuned.fine_tuned_model if tuned is not None else None,
            rechunked=chunks,
        )
    except ModelshiftError as exc:
        # an expected failure (bad data, Azure's error, quota): the migration fails with the reason; nothing
        # the baseline serves from was touched
        advance_migration(migration_id, MigrationPhase.FAILED, actor, evidence=_failure_evidence(exc, step))
        logger.error("migration %s failed in prepare (%s): %s", migration_id, step, exc)
        return outcome(MigrationPhase.FAILED, f"prepare failed at {step}: {exc}")
    except Exception as exc:
        advance_migration(
            migration_id, MigrationPhase.FAILED, actor, evidence={"stage": step, "error": str(exc)[:2000]}
        )
        raise
    evaluates = evaluate_stage_enabled()
    note = (
        f"prepared: candidate {candidate.app}@{candidate.version} ({candidate.digest}) on deployment "
        f"{deployment}; "
        + ("evaluating it next" if evaluates else "evaluate with MODELSHIFT_EVALUATE_STAGE=true")
    )
    advance_migration(
        migration_id,
        MigrationPhase.PREPARED,
        actor,
        evidence={
            "candidate_digest": candidate.digest,
            "candidate_version": candidate.version,
            "baseline_digest": baseline_digest,
            "deployment": deployment,
            "fine_tuned_model": tuned.fine_tuned_model if tuned is not None else None,
            "index_generation": chunks.generation if chunks is not None else None,
        },
    )
    logger.info("migration %s of %s: %s", migration_id, params.app, note)
    prepared = outcome(MigrationPhase.PREPARED, note)
    if not evaluates:
        return prepared
    return _evaluate(
        migration_id, baseline_digest, candidate.digest, params, phase=MigrationPhase.PREPARED, base=prepared
    )


def _evaluate(
    migration_id: str,
    baseline_digest: str,
    candidate_digest: str,
    params: MigrationParams,
    *,
    phase: MigrationPhase,
    base: MigrationOutcome,
) -> MigrationOutcome:
    """The evaluate stage of one migration, from ``phase`` (prepared, or evaluating when resuming)."""
    logger = get_run_logger()
    actor = params.actor
    if phase is MigrationPhase.PREPARED:
        advance_migration(
            migration_id,
            MigrationPhase.EVALUATING,
            actor,
            evidence={"candidate_digest": candidate_digest, "baseline_digest": baseline_digest},
        )
    else:
        logger.info("migration %s is %s: resuming its evaluate stage", migration_id, phase)
    try:
        summary = evaluate_candidate(migration_id, baseline_digest, candidate_digest, actor)
        settled = settle_candidate(migration_id, summary, actor)
    except ModelshiftError as exc:
        # the evaluation could not finish (an endpoint, the store, bad data): the candidate keeps its status
        # and nothing the baseline serves from was touched
        advance_migration(
            migration_id, MigrationPhase.FAILED, actor, evidence=_failure_evidence(exc, "evaluate")
        )
        logger.error("migration %s failed in evaluate: %s", migration_id, exc)
        return base.model_copy(update={"phase": MigrationPhase.FAILED, "message": f"evaluate failed: {exc}"})
    except Exception as exc:
        advance_migration(
            migration_id,
            MigrationPhase.FAILED,
            actor,
            evidence={"stage": "evaluate", "error": str(exc)[:2000]},
        )
        raise
    evidence = {
        "candidate_digest": candidate_digest,
        **summary.evidence(),
        "candidate_status": settled.status,
    }
    if summary.passed:
        note = f"evaluated: candidate {candidate_digest} passed the offline gate ({summary.summary})"
        advance_migration(migration_id, MigrationPhase.EVALUATED, actor, evidence=evidence)
        logger.info("migration %s of %s: %s", migration_id, params.app, note)
        return base.model_copy(update={"phase": MigrationPhase.EVALUATED, "message": note})
    removed = settled.deleted_deployment or f"none ({settled.kept_because})"
    note = f"candidate rejected by the offline gate: {summary.summary}; deployment removed: {removed}"
    evidence |= {
        "stage": "evaluate",
        "error": note,
        "deleted_deployment": settled.deleted_deployment,
        "kept_because": settled.kept_because,
    }
    advance_migration(migration_id, MigrationPhase.FAILED, actor, evidence=evidence)
    logger.warning("migration %s of %s: %s", migration_id, params.app, note)
    return base.model_copy(update={"phase": MigrationPhase.FAILED, "message": note})


@flow(name="model-migration", flow_run_name="migrate-{params.app}", validate_parameters=True)
def model_migration(params: MigrationParams) -> MigrationOutcome:
    """Migrate one app's bundle to a new model: assess, plan, then (when enabled) prepare, evaluate."""
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
    if not started.created and record.phase in _RESUMABLE and _prepares(params, record.plan):
        assert record.plan is not None  # _prepares checked it
        return _prepare(
            record.id, record.baseline_digest, record.plan, params, phase=record.phase, created=False
        )
    if not started.created and record.phase in _EVALUABLE and _prepares(params, record.plan):
        candidate = candidate_of(record.id) if evaluate_stage_enabled() else None
        if candidate:
            base = MigrationOutcome(
                migration_id=record.id,
                app=params.app,
                phase=record.phase,
                created=False,
                target=record.target,
                baseline_digest=record.baseline_digest,
                plan=record.plan,
            )
            return _evaluate(
                record.id, record.baseline_digest, candidate, params, phase=record.phase, base=base
            )
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
    elif _prepares(params, plan_data):
        final, note = MigrationPhase.PLANNED, "planned; preparing the candidate next"
    else:
        final = MigrationPhase.PLANNED
        note = "planned; the prepare, evaluate, canary and promote stages arrive in later modelshift releases"
    advance_migration(record.id, final, params.actor, evidence={"note": note}, plan=plan_data)
    publish_plan(plan, assessment, record.id, str(final))
    logger.info("migration %s of %s: %s (%s)", record.id, params.app, final, note)
    if final is MigrationPhase.PLANNED and _prepares(params, plan_data):
        return _prepare(
            record.id,
            assessment.baseline_digest or "",
            plan_data,
            params,
            phase=MigrationPhase.PLANNED,
            created=True,
            plan_text=plan.text,
        )
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
