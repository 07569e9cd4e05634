"""The ``canary-rollout`` flow: stepped traffic with live analysis, then promote or roll back.

Control flow only; every step is a task (tasks/canary.py). The loop: load the spec from the candidate
bundle's canary policy; then observe (the gateway's request windows over the current step) -> decide ->
apply, sleeping until the controller's ``Wait`` (at most the poll interval). Every decision renews the
router lease, so if this process dies the gateway falls back to the baseline once the lease lapses; the
failure and crash hooks roll back at once when they get to run.

A promotion with a grace period keeps the retired baseline's deployment; the retirement sweep deletes it
later (``modelshift.rollout.sweep``), so the flow never sleeps through the grace period.

A re-run restarts the canary from its first step (the spec never changes mid-way, and meanwhile the lapsed
lease has put traffic back on the baseline): the rollout status lives in this flow run, every step of it
in the audit chain. A candidate a person already promoted or rolled back is not touched again.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from pydantic import BaseModel, ConfigDict

from modelshift.clock import utcnow
from modelshift.errors import StateError
from modelshift.rollout import AnalysisPolicy, ApprovalInput, RolloutPhase, RolloutStatus, is_terminal
from modelshift.rollout.verdict import Verdict
from modelshift.settings import get_settings
from modelshift.store import BundleStatus
from tasks.canary import (
    CanaryContext,
    canary_step,
    load_spec,
    publish_decision,
    retire_deployment,
    roll_back_candidate,
)
from tasks.report import artifact_key


class CanaryApproval(RunInput):
    """The typed answer a person gives a paused canary (Prefect UI form): approve or reject, who, why."""

    decision: Literal["approve", "reject"] = "reject"
    approver: str
    reason: str = ""


class CanaryOutcome(BaseModel):
    """How a canary rollout ended: promoted or rolled back (or already so), with the reason."""

    model_config = ConfigDict(frozen=True)

    app: str
    candidate_digest: str
    phase: RolloutPhase
    verdict: str | None = None
    reason: str | None = None
    decisions: int = 0
    removed_deployments: list[str] = []
    #: when the retired baseline's deployment is due for deletion by the retirement sweep (grace period)
    deletion_due_at: datetime | None = None


def _roll_back_hook(flow: Any, flow_run: Any, state: Any) -> None:
    """on_failure / on_crashed: all traffic back to the baseline now instead of waiting for the lease."""
    params = flow_run.parameters
    actor = params.get("actor") or get_settings().actor
    roll_back_candidate(
        params["app"],
        params["candidate_digest"],
        actor=actor,
        migration_id=params.get("migration_id"),
        reason=f"canary flow run {flow_run.name} ended {state.name}: {state.message or 'no message'}",
    )


def _ask(request_reason: str, evidence: dict[str, Any], step: int, timeout: int) -> ApprovalInput:
    """Pause the flow for a typed approve/reject; a timeout fails the flow (and the hook rolls back)."""
    answer = pause_flow_run(
        wait_for_input=CanaryApproval.with_initial_data(
            description=f"**Canary approval needed** (step {step}): {request_reason}\n\n"
            f"```\n{str(evidence)[:4000]}\n```",
            approver="",
        ),
        timeout=timeout,
        # the answer is seen within a poll; short timeouts (tests) poll every second
        poll_interval=1 if timeout < 60 else 10,
        key=f"canary-approval-{step}",
    )
    return ApprovalInput(decision=answer.decision, approver=answer.approver, reason=answer.reason)


def _sleep_until(until: datetime | None, poll: float) -> None:
    wait = poll if until is None else (until - utcnow()).total_seconds()
    time.sleep(min(max(wait, 0.0), poll))


@flow(
    name="canary-rollout",
    flow_run_name="canary-{app}",
    validate_parameters=True,
    on_failure=[_roll_back_hook],
    on_crashed=[_roll_back_hook],
)
def canary_rollout(
    app: str,
    baseline_digest: str,
    candidate_digest: str,
    migration_id: str | None = None,
    actor: str | None = None,
    poll_seconds: float | None = None,
    grace_seconds: float | None = None,
    lease_seconds: int | None = None,
    approval_timeout_seconds: int = 3600,
    analysis: AnalysisPolicy | None = None,
) -> CanaryOutcome:
    """Run ``candidate_digest`` as a canary of ``app`` next to ``baseline_digest``: promote or roll back."""
    logger = get_run_logger()
    settings = get_settings()
    poll = poll_seconds if poll_seconds is not None else settings.canary_poll_seconds
    ctx = CanaryContext(
        actor=actor or settings.actor,
        migration_id=migration_id,
        grace_seconds=settings.retire_grace_seconds if grace_seconds is None else grace_seconds,
    )
    lease = settings.canary_lease_seconds if lease_seconds is None else lease_seconds
    spec, current = load_spec(app, baseline_digest, candidate_digest, analysis, lease)
    done = {
        BundleStatus.PRODUCTION: RolloutPhase.PROMOTED,
        BundleStatus.ROLLED_BACK: RolloutPhase.ROLLED_BACK,
    }
    if current in done:
        logger.info("candidate %s of %s is already %s; nothing to do", candidate_digest, app, current)
        return CanaryOutcome(app=app, candidate_digest=candidate_digest, phase=done[current])
    if current not in (BundleStatus.EVALUATED, BundleStatus.CANARY):
        raise StateError(
            f"candidate {candidate_digest} of {app} is {current}; only an evaluated bundle (with a passing "
            "evaluation record) goes into canary - run the evaluate stage first",
            app=app,
        )
    progress = create_progress_artifact(
        progress=0.0, key=artifact_key("canary-progress", app), description=f"canary of {app}"
    )
    assert isinstance(progress, UUID)  # the sync call in a sync flow returns the id, not a coroutine
    status = RolloutStatus()
    approval: ApprovalInput | None = None
    removed: list[str] = []
    decisions = 0
    last_index = -1
    while True:
        decisions += 1
        result = canary_step(spec, status, approval, ctx)
        approval = None
        status = result.status
        removed += result.removed_deployments
        if status.step_index != last_index:
            last_index = status.step_index
            share = min(100.0, 100.0 * status.step_index / len(spec.steps))
            update_progress_artifact(artifact_id=progress, progress=share)
            logger.info(
                "canary %s: step %d of %d (%s)", app, status.step_index, len(spec.steps), status.phase
            )
        if is_terminal(status.phase):
            break
        if result.approval is not None:
            approval = _ask(
                result.approval.reason, result.approval.evidence, status.step_index, approval_timeout_seconds
            )
            continue
        _sleep_until(result.wait_until, poll)
    update_progress_artifact(artifact_id=progress, progress=100.0)
    due_at = None
    if status.phase is RolloutPhase.PROMOTED and result.retire_digest is not None:
        if result.delete_after is not None and result.delete_after > utcnow():
            # the retirement sweep (retirement-scan flow, `modelshift sweep`) deletes it after the grace
            due_at = result.delete_after
            logger.info(
                "the retired baseline's deployment is kept until %s (grace period), then swept", due_at
            )
        else:
            removed += retire_deployment(result.retire_digest, ctx)
    publish_decision(spec, status, removed)
    verdict = status.outcome_verdict
    analysed = [r.verdict for r in status.history if r.verdict is not None]
    if verdict is None and status.phase is RolloutPhase.PROMOTED and analysed:
        verdict = Verdict.reduce(analysed)  # all steps passed: the worst of their analyses (successful)
    return CanaryOutcome(
        app=app,
        candidate_digest=candidate_digest,
        phase=status.phase,
        verdict=None if verdict is None else str(verdict),
        reason=status.outcome_reason,
        decisions=decisions,
        removed_deployments=removed,
        deletion_due_at=due_at,
    )
