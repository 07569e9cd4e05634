"""The ``model-migration`` flow: control flow only; every step is a task (tasks/) or a subflow.

The whole DAG of one app: assess -> plan -> prepare -> evaluate -> canary -> promote | roll back.

- assess and plan are recorded in the migration record and the audit chain and published as artifacts; a
  dry run ends in ``dry_run_done``.
- prepare (golden data check, fine-tune re-run, re-chunk, side-by-side deployment, candidate bundle) ends
  in ``prepared``, or ``failed`` with the reason (a GX report, Azure's fine-tune error, quota).
- evaluate (candidate vs baseline on the golden data, through the gate): ``evaluated`` when the gate
  passes, else ``failed`` (candidate ``rejected``, its side-by-side deployment deleted).
- canary (the ``canary-rollout`` subflow: stepped traffic through the gateway with live analysis):
  ``promoting`` -> ``succeeded`` (candidate production, baseline retired, its deployment deleted after the
  grace period by the retirement sweep), or ``rolling_back`` -> ``rolled_back``.

In every failure the baseline keeps serving. ``MODELSHIFT_STOP_AFTER`` (plan | prepare | evaluate) ends a
real run early, e.g. ``plan`` for plan-only operation.

A re-run of a migration left mid-way (a crash, a UI "Retry") resumes it: prepare finds the job, generation,
deployment and candidate an earlier run made; evaluate reuses the evaluation record; the canary restarts
from its first step (the lapsed lease has put traffic back on the baseline meanwhile); a canary that had
already ended only has its outcome recorded.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from flows.canary import CanaryOutcome, canary_rollout
from modelshift.errors import DataValidationError, ModelshiftError
from modelshift.migration import MigrationPhase
from modelshift.migration.params import MigrationOutcome, MigrationParams
from modelshift.rollout import RolloutPhase
from modelshift.settings import Stage, get_settings
from modelshift.store import BundleStatus
from modelshift.validation import report_from_error
from tasks.assess import assess_app
from tasks.evaluate import candidate_of, evaluate_candidate, settle_candidate
from tasks.migration_report import write_migration_report
from tasks.plan import plan_app
from tasks.prepare import compose, deploy, fine_tune, rechunk, validate_golden
from tasks.records import advance_migration, bundle_status, open_migration
from tasks.report import publish_plan

#: phases from which a (re-)run carries on with the prepare stage
_RESUMABLE = frozenset({MigrationPhase.PLANNED, MigrationPhase.PREPARING})
#: phases from which a (re-)run carries on with the evaluate stage
_EVALUABLE = frozenset({MigrationPhase.PREPARED, MigrationPhase.EVALUATING})
#: phases from which a (re-)run carries on with the canary stage (or records how it ended)
_CANARY = frozenset(
    {MigrationPhase.EVALUATED, MigrationPhase.CANARY, MigrationPhase.PROMOTING, MigrationPhase.ROLLING_BACK}
)


def _runs(plan: dict[str, Any], stage: str) -> bool:
    return any(s.get("name") == stage and s.get("runs") for s in plan.get("stages") or [])


def _prepares(params: MigrationParams, plan: dict[str, Any] | None) -> bool:
    """Whether this real run goes on into the prepare stage (enabled, and a plan that is ready)."""
    return (
        not params.dry_run
        and get_settings().runs(Stage.PREPARE)
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
    evaluates = get_settings().runs(Stage.EVALUATE)
    note = (
        f"prepared: candidate {candidate.app}@{candidate.version} ({candidate.digest}) on deployment "
        f"{deployment}; "
        + ("evaluating it next" if evaluates else "stopped here (MODELSHIFT_STOP_AFTER=prepare)")
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
        evaluated = base.model_copy(
            update={"phase": MigrationPhase.EVALUATED, "message": note, "candidate_digest": candidate_digest}
        )
        if not get_settings().runs(Stage.CANARY):
            return evaluated
        return _canary(
            migration_id,
            baseline_digest,
            candidate_digest,
            params,
            phase=MigrationPhase.EVALUATED,
            base=evaluated,
        )
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


def _canary(
    migration_id: str,
    baseline_digest: str,
    candidate_digest: str,
    params: MigrationParams,
    *,
    phase: MigrationPhase,
    base: MigrationOutcome,
) -> MigrationOutcome:
    """The canary stage, from ``phase``: evaluated (start it), canary (a re-run restarts it from its first
    step), or promoting / rolling_back (the rollout ended before the record did: record how)."""
    logger = get_run_logger()
    actor = params.actor
    base = base.model_copy(update={"candidate_digest": candidate_digest})
    ids: dict[str, Any] = {"candidate_digest": candidate_digest, "baseline_digest": baseline_digest}
    ended: RolloutPhase | None = {
        MigrationPhase.PROMOTING: RolloutPhase.PROMOTED,
        MigrationPhase.ROLLING_BACK: RolloutPhase.ROLLED_BACK,
    }.get(phase)
    result: CanaryOutcome | None = None
    if ended is None:
        if phase is MigrationPhase.EVALUATED:
            advance_migration(migration_id, MigrationPhase.CANARY, actor, evidence=ids)
        else:
            logger.info(
                "migration %s is %s: the canary restarts from its first step (the baseline serves meanwhile)",
                migration_id,
                phase,
            )
        try:
            result = canary_rollout(
                app=params.app,
                baseline_digest=baseline_digest,
                candidate_digest=candidate_digest,
                migration_id=migration_id,
                actor=actor,
            )
        except Exception as exc:
            # the subflow's failure hook has put all traffic back on the baseline (or the lease will)
            status = bundle_status(candidate_digest)
            evidence = ids | {"stage": "canary", "error": str(exc)[:2000], "candidate_status": str(status)}
            if status is BundleStatus.ROLLED_BACK:
                advance_migration(migration_id, MigrationPhase.ROLLING_BACK, actor, evidence=evidence)
                advance_migration(migration_id, MigrationPhase.ROLLED_BACK, actor, evidence=evidence)
                note = f"canary ended without a promotion and was rolled back: {exc}"
                logger.warning("migration %s of %s: %s", migration_id, params.app, note)
                return base.model_copy(update={"phase": MigrationPhase.ROLLED_BACK, "message": note})
            advance_migration(migration_id, MigrationPhase.FAILED, actor, evidence=evidence)
            if isinstance(exc, ModelshiftError):
                logger.error("migration %s failed in canary: %s", migration_id, exc)
                return base.model_copy(
                    update={"phase": MigrationPhase.FAILED, "message": f"canary failed: {exc}"}
                )
            raise
        ended = result.phase
    evidence = ids | (
        {
            "verdict": result.verdict,
            "reason": result.reason,
            "decisions": result.decisions,
            "removed_deployments": result.removed_deployments,
        }
        if result is not None
        else {"resumed": True}
    )
    if ended is RolloutPhase.PROMOTED:
        if phase is not MigrationPhase.PROMOTING:
            advance_migration(migration_id, MigrationPhase.PROMOTING, actor, evidence=evidence)
        advance_migration(migration_id, MigrationPhase.SUCCEEDED, actor, evidence=evidence)
        note = f"promoted: candidate {candidate_digest} is in production" + (
            f" ({result.reason})" if result is not None and result.reason else ""
        )
        final = MigrationPhase.SUCCEEDED
    else:
        if phase is not MigrationPhase.ROLLING_BACK:
            advance_migration(migration_id, MigrationPhase.ROLLING_BACK, actor, evidence=evidence)
        advance_migration(migration_id, MigrationPhase.ROLLED_BACK, actor, evidence=evidence)
        note = f"rolled back: the baseline {baseline_digest} serves all traffic" + (
            f" (verdict {result.verdict}: {result.reason})" if result is not None else ""
        )
        final = MigrationPhase.ROLLED_BACK
    logger.info("migration %s of %s: %s", migration_id, params.app, note)
    return base.model_copy(
        update={
            "phase": final,
            "message": note,
            "canary_verdict": None if result is None else result.verdict,
        }
    )


@flow(name="model-migration", flow_run_name="migrate-{params.app}", validate_parameters=True)
def model_migration(params: MigrationParams) -> MigrationOutcome:
    """Migrate one app's bundle to a new model: assess -> plan -> prepare -> evaluate -> canary -> promote |
    roll back (``MODELSHIFT_STOP_AFTER`` may end it earlier); the migration report is written at the end."""
    outcome = _migrate(params)
    if outcome.migration_id is None:
        return outcome
    try:
        path = write_migration_report(outcome.migration_id)
    except Exception as exc:  # the report is evidence, not a stage: a failure to write it fails nothing
        get_run_logger().warning("migration %s: no report written: %s", outcome.migration_id, exc)
        return outcome
    return outcome.model_copy(update={"report_path": path})


def _migrate(params: MigrationParams) -> MigrationOutcome:
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
    settings = get_settings()
    resumes = (record.phase in _EVALUABLE and settings.runs(Stage.EVALUATE)) or (
        record.phase in _CANARY and settings.runs(Stage.CANARY)
    )
    if not started.created and resumes and _prepares(params, record.plan):
        candidate = candidate_of(record.id)
        if candidate:
            base = MigrationOutcome(
                migration_id=record.id,
                app=params.app,
                phase=record.phase,
                created=False,
                target=record.target,
                baseline_digest=record.baseline_digest,
                plan=record.plan,
                candidate_digest=candidate,
            )
            stage = _evaluate if record.phase in _EVALUABLE else _canary
            return stage(record.id, record.baseline_digest, candidate, params, phase=record.phase, base=base)
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
        note = "planned; stopped here (MODELSHIFT_STOP_AFTER=plan: plan-only operation)"
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
