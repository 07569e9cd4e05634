"""The fleet table: one row per app with its production bundle, lifecycle, live canary and next action.

Pure over what it is given: the store's bundles, migrations, router and audit chain, and (when ARM could be
read) the lifecycle scan. The next action is the one thing a person should do about the app today:

- ``needs_approval``: a canary is paused waiting for a person's approve/reject;
- ``migration_running``: a real migration is in flight (with its phase);
- ``plan_ready``: the latest dry run (or a migration stopped at ``planned``) has a ready plan;
- ``blocked``: the latest migration failed or was rolled back, or its plan is blocked - with the reason;
- ``migrate``: the model retires, deprecates or has an upgrade, and nothing has been started yet;
- ``none``: nothing to do.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from modelshift import audit
from modelshift.lifecycle.assess import Assessment, AssessmentStatus
from modelshift.lifecycle.scan import ScanReport
from modelshift.migration import Migration, MigrationPhase
from modelshift.store import BundleStatus, RegisteredBundle, RouterState

ActionKind = Literal["none", "plan_ready", "migration_running", "needs_approval", "blocked", "migrate"]

#: days left at or below which a retirement is shown as urgent (red), and as a warning (amber)
URGENT_DAYS = 30
WARNING_DAYS = 90

#: the lifecycle statuses that call for a migration
_AT_RISK = frozenset(
    {
        AssessmentStatus.RETIRED,
        AssessmentStatus.RETIRING,
        AssessmentStatus.DEPRECATING,
        AssessmentStatus.UPGRADE_AVAILABLE,
    }
)
#: audit codes that answer or end a pending approval request
_ANSWERS = frozenset(
    {
        audit.Reason.CANARY_APPROVED,
        audit.Reason.CANARY_REJECTED,
        audit.Reason.CANARY_PROMOTED,
        audit.Reason.CANARY_ROLLED_BACK,
    }
)


class BundleSummary(BaseModel):
    """A bundle as the fleet table shows it."""

    model_config = ConfigDict(frozen=True)

    version: str
    digest: str
    status: str
    model: str
    model_version: str | None
    deployment: str | None
    platform: str | None

    @classmethod
    def of(cls, bundle: RegisteredBundle) -> BundleSummary:
        """Read the summary fields out of a registered bundle's manifest."""
        model: dict[str, Any] = bundle.manifest.get("model") or {}
        return cls(
            version=bundle.version,
            digest=bundle.digest,
            status=str(bundle.status),
            model=str(model.get("name") or "?"),
            model_version=None if model.get("version") is None else str(model["version"]),
            deployment=None if model.get("deployment") is None else str(model["deployment"]),
            platform=None if model.get("platform") is None else str(model["platform"]),
        )


class Lifecycle(BaseModel):
    """The lifecycle of the production model, from the scan (``available`` False when ARM was not read)."""

    model_config = ConfigDict(frozen=True)

    available: bool
    status: str | None = None
    retirement: datetime | None = None
    days_left: int | None = None
    #: ``urgent`` | ``warning`` | ``ok`` | ``unknown``: the colour of the days-left cell
    urgency: str = "unknown"
    auto_upgrades: list[str] = []
    target: str | None = None
    note: str | None = None


class NextAction(BaseModel):
    """What a person should do about the app now, and why."""

    model_config = ConfigDict(frozen=True)

    kind: ActionKind
    label: str
    detail: str = ""
    migration_id: str | None = None


class Approval(BaseModel):
    """A canary's open question to a person: approve or reject this candidate (before any traffic, or
    mid-way)."""

    model_config = ConfigDict(frozen=True)

    candidate_digest: str
    reason: str
    requested_at: datetime
    migration_id: str | None = None


class Canary(BaseModel):
    """The app's live canary: the candidate, its share of traffic and whether it waits for a person."""

    model_config = ConfigDict(frozen=True)

    candidate: BundleSummary
    weight: int
    awaiting_approval: bool
    approval_reason: str | None = None
    migration_id: str | None = None


class FleetRow(BaseModel):
    """One app of the fleet table."""

    model_config = ConfigDict(frozen=True)

    app: str
    production: BundleSummary | None
    lifecycle: Lifecycle
    canary: Canary | None
    approval: Approval | None = None
    latest_migration: dict[str, Any] | None
    next_action: NextAction


class Fleet(BaseModel):
    """The whole table, with when it was read and where the lifecycle came from."""

    model_config = ConfigDict(frozen=True)

    generated_at: datetime
    lifecycle_source: str
    lifecycle_error: str | None = None
    rows: list[FleetRow]


def urgency(days_left: int | None, status: str | None) -> str:
    """The colour class of a days-left cell: urgent (retired or <= 30 days), warning (<= 90), ok, unknown."""
    if status == AssessmentStatus.RETIRED.value or (days_left is not None and days_left <= URGENT_DAYS):
        return "urgent"
    if days_left is not None and days_left <= WARNING_DAYS:
        return "warning"
    if status is None:
        return "unknown"
    return "ok"


def lifecycle_of(assessment: Assessment | None, *, error: str | None) -> Lifecycle:
    """The lifecycle cell of one app from its scan row (or why there is none)."""
    if assessment is None:
        note = error or "not in the lifecycle scan"
        return Lifecycle(available=False, note=note)
    upgrades = [
        f"{risk.to or 'a newer version'} on {risk.date.date().isoformat() if risk.date else 'any day'}"
        for risk in assessment.risks
        if risk.kind == "auto_upgrade"
    ]
    return Lifecycle(
        available=True,
        status=assessment.status.value,
        retirement=assessment.retirement,
        days_left=assessment.days_left,
        urgency=urgency(assessment.days_left, assessment.status.value),
        auto_upgrades=upgrades,
        target=None if assessment.target is None else str(assessment.target.model),
    )


#: candidate statuses a canary can still ask about (the approval step may come before any traffic)
_ASKING = frozenset({BundleStatus.EVALUATED, BundleStatus.CANARY})


def candidate_of(event: audit.AuditEvent) -> str:
    """The candidate digest a canary event is about (its subject is ``rollout APP -> DIGEST``)."""
    return event.subject.rpartition(" -> ")[2]


def pending_approval(
    events: Iterable[audit.AuditEvent], app: str, bundles: Sequence[RegisteredBundle]
) -> Approval | None:
    """The app's approval request that no later approve / reject / promote / roll back answered, while its
    candidate is still evaluated or in canary (a flow that gave up leaves the question moot)."""
    pending: audit.AuditEvent | None = None
    for event in events:
        if event.data.get("app") != app:
            continue
        if event.reason == audit.Reason.CANARY_APPROVAL_REQUESTED:
            pending = event
        elif event.reason in _ANSWERS:
            pending = None
    if pending is None:
        return None
    digest = candidate_of(pending)
    status = next((b.status for b in bundles if b.digest == digest), None)
    if status not in _ASKING:
        return None
    return Approval(
        candidate_digest=digest,
        reason=str(pending.data.get("reason") or "the canary asks for a person's approval"),
        requested_at=pending.occurred_at,
        migration_id=pending.migration_id,
    )


def failure_reason(events: Sequence[audit.AuditEvent]) -> str:
    """Why a migration ended failed or rolled back: the error of its last finishing event."""
    for event in reversed(events):
        if event.reason in (audit.Reason.MIGRATION_FINISHED, audit.Reason.CANARY_ROLLED_BACK):
            data = event.data
            why = data.get("error") or data.get("reason") or data.get("message")
            if why:
                return str(why)
    return "no reason recorded"


def migration_summary(migration: Migration) -> dict[str, Any]:
    """The few fields of a migration the fleet table and API show."""
    return {
        "id": migration.id,
        "phase": migration.phase.value,
        "dry_run": migration.dry_run,
        "target": migration.target,
        "actor": migration.actor,
        "trigger": migration.trigger.value,
        "created_at": migration.created_at.isoformat(),
        "updated_at": migration.updated_at.isoformat(),
        "plan_status": None if migration.plan is None else migration.plan.get("status"),
    }


def next_action(
    lifecycle: Lifecycle,
    canary: Canary | None,
    approval: Approval | None,
    migrations: Sequence[Migration],
    events_of: dict[str, list[audit.AuditEvent]],
) -> NextAction:
    """The one next action for an app (see the module docstring for the order of precedence)."""
    if approval is not None:
        where = f" (canary at {canary.weight} %)" if canary is not None else " (before any traffic)"
        return NextAction(
            kind="needs_approval",
            label="needs approval",
            detail=approval.reason + where,
            migration_id=approval.migration_id,
        )
    real = [m for m in migrations if not m.dry_run]
    active = next((m for m in real if m.active and m.phase is not MigrationPhase.PLANNED), None)
    if active is not None:
        return NextAction(
            kind="migration_running",
            label="migration running",
            detail=f"{active.phase.value} towards {active.target or 'auto'}",
            migration_id=active.id,
        )
    if canary is not None:
        return NextAction(
            kind="migration_running",
            label="migration running",
            detail=f"canary {canary.candidate.version} at {canary.weight} %",
            migration_id=canary.migration_id,
        )
    latest = migrations[0] if migrations else None
    if latest is not None:
        plan_status = None if latest.plan is None else latest.plan.get("status")
        if latest.phase in (MigrationPhase.FAILED, MigrationPhase.ROLLED_BACK):
            why = failure_reason(events_of.get(latest.id, []))
            return NextAction(
                kind="blocked",
                label="blocked",
                detail=f"migration {latest.phase.value}: {why}",
                migration_id=latest.id,
            )
        ready_phases = (MigrationPhase.DRY_RUN_DONE, MigrationPhase.PLANNED)
        if latest.phase in ready_phases and plan_status == "ready":
            return NextAction(
                kind="plan_ready",
                label="plan ready",
                detail=f"to {latest.target or 'auto'} ({'dry run' if latest.dry_run else 'planned'})",
                migration_id=latest.id,
            )
        if latest.phase in ready_phases and plan_status in ("blocked", "no_target"):
            steps = (latest.plan or {}).get("next_steps") or []
            why = "; ".join(str(s) for s in steps) or f"plan {plan_status}"
            return NextAction(kind="blocked", label="blocked", detail=why, migration_id=latest.id)
    if lifecycle.status is not None and AssessmentStatus(lifecycle.status) in _AT_RISK:
        days = lifecycle.days_left
        when = "" if days is None else f" in {days} days" if days >= 0 else f" {-days} days ago"
        return NextAction(
            kind="migrate",
            label="start a migration",
            detail=f"{lifecycle.status}{when}; dry run first"
            + (f" (target {lifecycle.target})" if lifecycle.target else ""),
        )
    return NextAction(kind="none", label="none")


def build_fleet(
    *,
    bundles: Sequence[RegisteredBundle],
    routers: dict[str, RouterState],
    migrations: Sequence[Migration],
    events: Sequence[audit.AuditEvent],
    report: ScanReport | None,
    lifecycle_error: str | None,
    now: datetime,
) -> Fleet:
    """Assemble the fleet table from the store's contents and the lifecycle scan (pure)."""
    apps = sorted({b.app for b in bundles})
    by_app_assessment = {r.app: r for r in (report.managed if report is not None else []) if r.app}
    events_of: dict[str, list[audit.AuditEvent]] = {}
    for event in events:
        if event.migration_id is not None:
            events_of.setdefault(event.migration_id, []).append(event)
    rows: list[FleetRow] = []
    for app in apps:
        mine = [b for b in bundles if b.app == app]
        production = next((b for b in mine if b.status is BundleStatus.PRODUCTION), None)
        app_migrations = [m for m in migrations if m.app == app]  # newest first
        approval = pending_approval(events, app, mine)
        canary = _canary(mine, routers.get(app), approval)
        lifecycle = lifecycle_of(by_app_assessment.get(app), error=lifecycle_error)
        rows.append(
            FleetRow(
                app=app,
                production=None if production is None else BundleSummary.of(production),
                lifecycle=lifecycle,
                canary=canary,
                approval=approval,
                latest_migration=migration_summary(app_migrations[0]) if app_migrations else None,
                next_action=next_action(lifecycle, canary, approval, app_migrations, events_of),
            )
        )
    source = report.origin if report is not None else "unavailable"
    return Fleet(generated_at=now, lifecycle_source=source, lifecycle_error=lifecycle_error, rows=rows)


def _canary(
    bundles: Sequence[RegisteredBundle], router: RouterState | None, approval: Approval | None
) -> Canary | None:
    candidate = next((b for b in reversed(bundles) if b.status is BundleStatus.CANARY), None)
    if candidate is None:
        return None
    asking = approval is not None and approval.candidate_digest == candidate.digest
    weight = 0 if router is None else router.weights.get(candidate.digest, 0)
    return Canary(
        candidate=BundleSummary.of(candidate),
        weight=weight,
        awaiting_approval=asking,
        approval_reason=approval.reason if asking and approval is not None else None,
        migration_id=approval.migration_id if asking and approval is not None else None,
    )
