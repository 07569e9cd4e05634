"""Canary tasks: load the rollout spec, one observe -> decide -> apply step, retire, roll back, artifacts.

The controller is pure (``modelshift.rollout``); these tasks give it the observation (the gateway's
request windows over the current step) and carry out its decision (``modelshift.rollout.apply``). Each
task opens the store from the settings, so it runs the same in a worker as in a test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import httpx
from prefect import task
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, ConfigDict

from modelshift.audit import Reason, format_time
from modelshift.bundle.manifest import Canary
from modelshift.clock import utcnow
from modelshift.errors import StateError
from modelshift.gateway import observe
from modelshift.platforms import azure
from modelshift.rollout import (
    AnalysisPolicy,
    ApprovalInput,
    RequestApproval,
    RolloutPhase,
    RolloutSpec,
    RolloutStatus,
    decide,
    pair_from_windows,
)
from modelshift.rollout.apply import Applier, DeploymentRemover, StoreRouterBackend
from modelshift.settings import get_settings
from modelshift.store import BundleStatus, Store
from tasks.report import artifact_key
from tasks.retry import retry_condition_fn

_RETRIES = 3


#: candidate statuses that end a rollout, and the phase it ends in
_ENDED = {BundleStatus.PRODUCTION: RolloutPhase.PROMOTED, BundleStatus.ROLLED_BACK: RolloutPhase.ROLLED_BACK}


class CanaryContext(BaseModel):
    """Who runs the rollout and the knobs the tasks need (plain data, so Prefect can pass it around)."""

    model_config = ConfigDict(frozen=True)

    actor: str
    migration_id: str | None = None
    grace_seconds: float = 86400.0


class StepResult(BaseModel):
    """What one observe -> decide -> apply step left: the new status and what the flow does next."""

    model_config = ConfigDict(frozen=True)

    status: RolloutStatus
    wait_until: datetime | None = None
    approval: RequestApproval | None = None
    removed_deployments: list[str] = []
    retire_digest: str | None = None
    delete_after: datetime | None = None


@contextmanager
def _applier(ctx: CanaryContext) -> Iterator[Applier]:
    settings = get_settings()
    with (
        Store.open(settings.resolved_database_url) as store,
        httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0)) as client,
    ):
        yield Applier(
            store=store,
            backend=StoreRouterBackend(store, actor=ctx.actor, migration_id=ctx.migration_id),
            remover=DeploymentRemover(azure.arm_client(settings, client=client)),
            actor=ctx.actor,
            migration_id=ctx.migration_id,
            grace_seconds=ctx.grace_seconds,
        )


@task(name="canary-spec", retries=_RETRIES, retry_condition_fn=retry_condition_fn)
def load_spec(
    app: str,
    baseline_digest: str,
    candidate_digest: str,
    analysis: AnalysisPolicy | None = None,
    lease_seconds: int = 300,
) -> tuple[RolloutSpec, BundleStatus]:
    """The rollout spec from the candidate bundle's canary policy, and the candidate's current status."""
    with Store.open(get_settings().resolved_database_url) as store:
        candidate = store.get_bundle_by_digest(candidate_digest)
        baseline = store.get_bundle_by_digest(baseline_digest)
    for bundle in (candidate, baseline):
        if bundle.app != app:
            raise StateError(
                f"bundle {bundle.app}@{bundle.version} ({bundle.digest}) belongs to app {bundle.app!r}, not "
                f"{app!r}; pass the digests of {app}'s production bundle and its candidate",
                app=app,
            )
    canary = Canary.model_validate(candidate.manifest.get("canary") or {})
    spec = RolloutSpec.from_canary(
        app=app,
        baseline_digest=baseline_digest,
        candidate_digest=candidate_digest,
        canary=canary,
        lease_seconds=lease_seconds,
        analysis=analysis,
    )
    return spec, candidate.status


@task(name="canary-step", retries=_RETRIES, retry_condition_fn=retry_condition_fn)
def canary_step(
    spec: RolloutSpec, status: RolloutStatus, approval: ApprovalInput | None, ctx: CanaryContext
) -> StepResult:
    """Observe the current step's window, decide, carry the decision out; idempotent, so safe to retry."""
    now = utcnow()
    with _applier(ctx) as applier:
        current = applier.store.get_bundle_by_digest(spec.candidate_digest).status
        ended = _ENDED.get(current)
        if ended is not None and status.phase not in (RolloutPhase.PROMOTING, RolloutPhase.ROLLING_BACK):
            # a person promoted or rolled back from the CLI: the rollout is over, with their decision
            reason = f"candidate became {current} outside this flow (manual override)"
            return StepResult(status=status.model_copy(update={"phase": ended, "outcome_reason": reason}))
        observation = None
        if status.step_started_at is not None and status.phase is not RolloutPhase.PENDING:
            windows = observe(applier.store, spec.app, status.step_started_at, now)
            observation = pair_from_windows(spec, windows, approval=approval)
        elif approval is not None:
            observation = pair_from_windows(spec, {}, approval=approval)
        decision = decide(spec, status, observation, now)
        outcome = applier.apply(spec, decision, now)
    return StepResult(
        status=outcome.status,
        wait_until=outcome.wait_until,
        approval=outcome.approval,
        removed_deployments=list(outcome.removed_deployments),
        retire_digest=outcome.retire_digest,
        delete_after=outcome.delete_after,
    )


@task(name="retire-baseline-deployment", retries=_RETRIES, retry_condition_fn=retry_condition_fn)
def retire_deployment(digest: str, ctx: CanaryContext) -> list[str]:
    """Delete the retired baseline's deployment (its grace period has run)."""
    with _applier(ctx) as applier:
        return applier.retire_deployment(digest)


def roll_back_candidate(
    app: str, candidate_digest: str, *, actor: str, migration_id: str | None, reason: str
) -> bool:
    """Roll the candidate back if it is in canary (the flow's failure and crash hooks); True if it was.

    Not a task: hooks run outside the task machinery, after the flow run has already failed or crashed.
    """
    ctx = CanaryContext(actor=actor, migration_id=migration_id, grace_seconds=0.0)
    with _applier(ctx) as applier:
        if applier.store.get_bundle_by_digest(candidate_digest).status is not BundleStatus.CANARY:
            return False
        applier.roll_back(app, candidate_digest, reason=reason, evidence={"hook": reason})
        applier.store.append_audit(
            Reason.CANARY_ROLLED_BACK,
            f"rollout {app} -> {candidate_digest}",
            {"app": app, "verdict": None, "reason": reason, "at": format_time(utcnow())},
            actor=actor,
            migration_id=migration_id,
        )
    return True


def decision_markdown(spec: RolloutSpec, status: RolloutStatus, removed: list[str]) -> str:
    """The final decision of a rollout with the evidence of every step, as a page to read."""
    verdict = status.outcome_verdict or "-"
    lines = [
        f"# Canary {spec.app}: **{status.phase}**",
        "",
        f"- baseline: `{spec.baseline_digest}`",
        f"- candidate: `{spec.candidate_digest}`",
        f"- verdict: **{verdict}**; reason: {status.outcome_reason or '-'}",
        f"- deployments deleted: {', '.join(removed) or 'none'}",
        "",
        "| step | kind | verdict | approved by | reason | finished |",
        "|---|---|---|---|---|---|",
    ]
    for record in status.history:
        lines.append(
            f"| {record.index} | {record.kind} | {record.verdict or ''} | {record.approved_by or ''} | "
            f"{record.reason.replace('|', '/')} | {format_time(record.finished_at)} |"
        )
    evidence: list[dict[str, Any]] = [r.model_dump(mode="json") for r in status.history if r.evidence]
    if evidence:
        lines += ["", "## Evidence", "", "```json", json.dumps(evidence, indent=2)[:20000], "```"]
    return "\n".join(lines) + "\n"


@task(name="publish-canary-decision")
def publish_decision(spec: RolloutSpec, status: RolloutStatus, removed: list[str]) -> None:
    """The final decision as a markdown artifact (versions per app under one key)."""
    create_markdown_artifact(
        markdown=decision_markdown(spec, status, removed),
        key=artifact_key("canary", spec.app),
        description=f"canary of {spec.app}: {status.phase}",
    )
