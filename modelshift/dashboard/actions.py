"""What a person does from the dashboard, through the same audited code as the CLI.

- roll back a canary: :func:`modelshift.rollout.apply.manual_roll_back` (``modelshift rollback APP``);
- approve or reject a paused canary: Prefect's ``resume_flow_run`` with the typed ``CanaryApproval`` input
  (the flow then records ``canary.approved`` / ``canary.rejected`` naming the approver); the dashboard
  first records ``canary.approval_submitted`` with the operator as the actor;
- start a migration: a dry run first (:func:`modelshift.launcher.run_migration` with ``dry_run``), then the
  real run from that dry run - through the ``model-migration`` deployment when a Prefect server is
  configured (:func:`modelshift.launcher.start_deployment_run`), else in this process in the background.

Every function is blocking (Prefect's sync client, the store); the web app calls them in a worker thread.
The operator's name is the audit actor of everything these do.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx

from modelshift.audit import Reason
from modelshift.clock import Clock
from modelshift.dashboard.fleet import pending_approval
from modelshift.errors import ConfigError, MigrationConflictError, NotFoundError, StateError
from modelshift.migration import Migration, MigrationPhase, MigrationStore, Trigger, idempotency_key
from modelshift.migration.params import MigrationOutcome, MigrationParams
from modelshift.rollout.apply import Applier, DeploymentRemover, StoreRouterBackend, manual_roll_back
from modelshift.settings import Settings
from modelshift.store import BundleStatus, Store

#: the flow and flow-run name of a canary (flows/canary.py: ``flow_run_name="canary-{app}"``)
CANARY_FLOW = "canary-rollout"
#: how old a dry run may be and still start the real migration
DRY_RUN_MAX_AGE = timedelta(hours=24)


class PrefectUnavailable(Exception):
    """The Prefect API could not be reached or refused; the message says what to check."""


@dataclass(frozen=True)
class RollbackResult:
    """What a rollback from the dashboard did."""

    app: str
    rolled_back: str
    digest: str
    router: dict[str, int]
    deleted_deployments: list[str]
    actor: str


@dataclass(frozen=True)
class ApprovalResult:
    """The answer sent to a paused canary flow run."""

    app: str
    flow_run_id: str
    decision: str
    approver: str
    reason: str


@dataclass(frozen=True)
class StartResult:
    """How the real migration was started: a Prefect flow run, or in this process in the background."""

    app: str
    mode: str  # "deployment" | "in_process"
    flow_run_id: str | None
    dry_run_id: str
    message: str


def require_app(store: Store, app: str) -> None:
    """NotFoundError naming the app unless some bundle of it is registered."""
    if not store.list_bundles(app=app):
        raise NotFoundError(
            f"no app {app!r} in the state store; the fleet table lists the registered apps "
            "(`modelshift bundle register --adopt` onboards one)",
            app=app,
        )


@contextmanager
def _applier(settings: Settings, store: Store, actor: str, keep_deployment: bool) -> Iterator[Applier]:
    from modelshift.platforms import azure

    with httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0)) as client:
        arm = None if keep_deployment else azure.arm_client(settings, client=client)
        yield Applier(
            store=store,
            backend=StoreRouterBackend(store, actor=actor),
            remover=DeploymentRemover(arm),
            actor=actor,
            grace_seconds=settings.retire_grace_seconds,
        )


def roll_back(
    settings: Settings,
    store: Store,
    app: str,
    *,
    actor: str,
    reason: str,
    keep_deployment: bool,
    clock: Clock,
) -> RollbackResult:
    """``modelshift rollback APP`` on behalf of ``actor``: the canary back to 100 % production, audited."""
    require_app(store, app)
    with _applier(settings, store, actor, keep_deployment) as applier:
        candidate, removed = manual_roll_back(
            applier, app, reason=reason or "rolled back from the dashboard", now=clock()
        )
    router = store.get_router(app)
    return RollbackResult(
        app=app,
        rolled_back=f"{candidate.app}@{candidate.version}",
        digest=candidate.digest,
        router=dict(router.weights),
        deleted_deployments=removed,
        actor=actor,
    )


def paused_canary_run(app: str) -> str:
    """The id of the app's canary flow run paused for approval, from the Prefect API."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    try:
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=[CANARY_FLOW])),
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))
                ),
                limit=50,
            )
    except (httpx.HTTPError, RuntimeError) as exc:
        raise PrefectUnavailable(
            f"cannot read flow runs from the Prefect API ({exc}); check PREFECT_API_URL and that the server "
            "is up"
        ) from None
    for run in runs:
        if (run.parameters or {}).get("app") == app:
            return str(run.id)
    raise StateError(
        f"app {app!r} has no canary flow run paused for approval in Prefect; it may have been answered "
        "already or timed out - reload the page",
        app=app,
    )


def answer_approval(store: Store, app: str, *, decision: str, operator: str, reason: str) -> ApprovalResult:
    """Resume the app's paused canary with ``CanaryApproval(decision, approver=operator, reason)``."""
    from prefect.exceptions import FlowPauseTimeout, NotPausedError
    from prefect.flow_runs import resume_flow_run

    if decision not in ("approve", "reject"):
        raise ConfigError(f"decision {decision!r}: use 'approve' or 'reject'", decision=decision)
    require_app(store, app)
    pending = pending_approval(store.audit_events(), app, store.list_bundles(app=app))
    if pending is None:
        raise StateError(
            f"app {app!r} has no canary waiting for approval; there is nothing to approve or reject", app=app
        )
    run_id = paused_canary_run(app)
    store.append_audit(
        Reason.CANARY_APPROVAL_SUBMITTED,
        f"rollout {app} -> {pending.candidate_digest}",
        {"app": app, "decision": decision, "reason": reason, "flow_run_id": run_id, "via": "dashboard"},
        actor=operator,
        migration_id=pending.migration_id,
    )
    try:
        resume_flow_run(
            uuid.UUID(run_id), run_input={"decision": decision, "approver": operator, "reason": reason}
        )
    except (NotPausedError, FlowPauseTimeout) as exc:
        raise StateError(
            f"the canary flow run {run_id} of {app} can no longer be resumed ({exc}); reload the page",
            app=app,
        ) from None
    except (httpx.HTTPError, RuntimeError) as exc:
        raise PrefectUnavailable(f"Prefect refused to resume flow run {run_id}: {exc}") from None
    return ApprovalResult(app=app, flow_run_id=run_id, decision=decision, approver=operator, reason=reason)


def _params(app: str, target: str | None, reason: str, actor: str, *, dry_run: bool) -> MigrationParams:
    from pydantic import ValidationError

    try:
        return MigrationParams(
            app=app,
            target=target or None,
            reason=reason or "started from the dashboard",
            trigger=Trigger.UI,
            actor=actor,
            dry_run=dry_run,
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"migration of {app}: {problems}", app=app) from None


def dry_run(store: Store, app: str, *, target: str | None, reason: str, actor: str) -> MigrationOutcome:
    """Run the model-migration flow as a dry run in this process: assess and plan, change nothing else."""
    from modelshift import launcher

    if not store.list_bundles(app=app, status=BundleStatus.PRODUCTION):
        require_app(store, app)
        raise StateError(f"app {app!r} has no production bundle to migrate from", app=app)
    return launcher.run_migration(_params(app, target, reason, actor, dry_run=True))


def dry_run_of(store: Store, app: str, dry_run_id: str, *, clock: Clock) -> Migration:
    """The dry run a real start refers to: of this app, finished, with a ready plan, not too old."""
    record = MigrationStore(store).get(dry_run_id)
    if record.app != app or not record.dry_run:
        raise ConfigError(
            f"migration {dry_run_id} is not a dry run of {app}; start a dry run of {app} first", app=app
        )
    if record.phase is not MigrationPhase.DRY_RUN_DONE:
        raise StateError(f"dry run {dry_run_id} of {app} is {record.phase}, not finished", app=app)
    status = (record.plan or {}).get("status")
    if status != "ready":
        raise StateError(
            f"the plan of dry run {dry_run_id} is {status or 'missing'}, not ready; fix what it names and "
            "run a new dry run",
            app=app,
        )
    if clock() - record.updated_at > DRY_RUN_MAX_AGE:
        raise StateError(f"dry run {dry_run_id} of {app} is older than 24 hours; run a new one", app=app)
    return record


def prefect_server_configured() -> bool:
    """True when a Prefect API URL is configured (a server with deployments), not the ephemeral API."""
    from prefect.settings import PREFECT_API_URL

    return bool(PREFECT_API_URL.value())


def start_migration(
    store: Store, app: str, dry_run_id: str, *, reason: str, actor: str, clock: Clock, mode: str
) -> StartResult:
    """Start the real migration a finished dry run planned; ``mode`` ``deployment`` or ``in_process``."""
    from modelshift import launcher

    planned = dry_run_of(store, app, dry_run_id, clock=clock)
    migrations = MigrationStore(store)
    active = migrations.active_for(app)
    if active is not None:
        raise MigrationConflictError(
            f"app {app} already has active migration {active.id} (phase {active.phase}); wait for it",
            app=app,
            migration_id=active.id,
        )
    params = _params(app, planned.target, reason, actor, dry_run=False)
    if mode == "deployment":
        key = idempotency_key(app, planned.baseline_digest, planned.target)
        prefect_key = f"model-migration-{key}-{migrations.attempts(key) + 1}"
        try:
            run = launcher.start_deployment_run(params, idempotency_key=prefect_key, tags=["dashboard"])
        except (httpx.HTTPError, RuntimeError) as exc:
            raise PrefectUnavailable(f"cannot start the model-migration deployment: {exc}") from None
        return StartResult(
            app=app,
            mode=mode,
            flow_run_id=run.flow_run_id,
            dry_run_id=dry_run_id,
            message=f"flow run {run.name} created ({run.state or 'scheduled'}); a worker runs it",
        )
    thread = threading.Thread(target=_run_quietly, args=(params,), name=f"migrate:{app}", daemon=True)
    thread.start()
    return StartResult(
        app=app,
        mode=mode,
        flow_run_id=None,
        dry_run_id=dry_run_id,
        message="the migration runs in the dashboard's process; its phase shows in the fleet table",
    )


def _run_quietly(params: MigrationParams) -> Any:
    """Run a migration in the background; its record and audit chain say how it went."""
    from modelshift import launcher

    try:
        return launcher.run_migration(params)
    except Exception:  # the flow recorded the failure in the migration record; nothing to raise to
        return None
