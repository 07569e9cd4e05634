"""The retirement sweep: delete retired baselines' deployments once their grace period has run.

A promotion retires the baseline bundle at once but keeps its deployment for ``retire_grace_seconds``
(a day by default) so a person can still roll forward to it by hand. Nothing should sleep a day for
that: the promotion records the retirement (the bundle's ``status_changed_at``), and this sweep — run by
the scheduled ``retirement-scan`` flow and by ``modelshift sweep`` — deletes every deployment whose grace
has run. It is safe to repeat and to run from several places:

- one ARM list per account: only deployments that still exist are deleted (no second DELETE, no 404);
- a deployment another live bundle still names (a prompt-only candidate shares its baseline's) is kept;
- each deletion is audited (``deployment.deleted``) with the bundle, its retirement time and the grace.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx

from modelshift.audit import Reason, format_time
from modelshift.clock import utcnow
from modelshift.platforms import azure
from modelshift.platforms.base import AccountRef, Deployments
from modelshift.rollout.apply import deployment_ref, sharing_bundles
from modelshift.settings import Settings
from modelshift.store import BundleStatus, Store
from modelshift.store.records import RegisteredBundle


@dataclass(frozen=True)
class SweepItem:
    """One retired bundle's deployment and what the sweep did with it."""

    app: str
    version: str
    digest: str
    deployment: str
    account: str
    retired_at: datetime
    due_at: datetime
    #: deleted | pending (grace not over) | kept (another live bundle uses it) | gone (already deleted)
    action: str
    reason: str = ""

    def row(self) -> dict[str, str]:
        """Plain strings for a table or JSON."""
        return {
            "app": self.app,
            "version": self.version,
            "digest": self.digest,
            "deployment": self.deployment,
            "account": self.account,
            "retired_at": format_time(self.retired_at),
            "due_at": format_time(self.due_at),
            "action": self.action,
            "reason": self.reason,
        }


@dataclass
class SweepResult:
    """Everything the sweep looked at, by action."""

    items: list[SweepItem] = field(default_factory=list)

    def by_action(self, action: str) -> list[SweepItem]:
        """The items that ended with ``action``."""
        return [i for i in self.items if i.action == action]


def _item(
    bundle: RegisteredBundle, ref: AccountRef, name: str, grace: timedelta, action: str, reason: str = ""
) -> SweepItem:
    return SweepItem(
        app=bundle.app,
        version=bundle.version,
        digest=bundle.digest,
        deployment=name,
        account=ref.name,
        retired_at=bundle.status_changed_at,
        due_at=bundle.status_changed_at + grace,
        action=action,
        reason=reason,
    )


def sweep_retired(
    store: Store,
    deployments: Deployments,
    *,
    now: datetime,
    grace_seconds: float,
    actor: str,
    dry_run: bool = False,
    app: str | None = None,
) -> SweepResult:
    """Delete the deployments of retired bundles whose grace period is over (``dry_run``: only report)."""
    grace = timedelta(seconds=grace_seconds)
    result = SweepResult()
    existing: dict[AccountRef, set[str]] = {}
    for bundle in store.list_bundles(app, BundleStatus.RETIRED):
        target = deployment_ref(bundle)
        if target is None:
            continue
        ref, name = target
        if ref not in existing:
            existing[ref] = {d.name for d in deployments.list(ref)}
        if name not in existing[ref]:
            result.items.append(_item(bundle, ref, name, grace, "gone"))
            continue
        users = sharing_bundles(store, bundle)
        if users:
            why = "still used by " + ", ".join(f"{o.app}@{o.version} ({o.status})" for o in users)
            result.items.append(_item(bundle, ref, name, grace, "kept", why))
        elif bundle.status_changed_at + grace > now:
            result.items.append(_item(bundle, ref, name, grace, "pending", "grace period not over"))
        elif dry_run:
            result.items.append(_item(bundle, ref, name, grace, "due", "dry run: would delete"))
        else:
            deployments.delete(ref, name)
            existing[ref].discard(name)
            done = _item(bundle, ref, name, grace, "deleted")
            store.append_audit(
                Reason.DEPLOYMENT_DELETED,
                f"deployment {ref.name}/{name}",
                {**done.row(), "grace_seconds": grace_seconds},
                actor=actor,
            )
            result.items.append(done)
    return result


def sweep_with_settings(
    settings: Settings, *, actor: str, dry_run: bool = False, app: str | None = None
) -> SweepResult:
    """The sweep on the settings' store and ARM, with their grace period, now (the scan task and the CLI)."""
    with (
        Store.open(settings.resolved_database_url) as store,
        httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0)) as client,
    ):
        return sweep_retired(
            store,
            azure.arm_client(settings, client=client),
            now=utcnow(),
            grace_seconds=settings.retire_grace_seconds,
            actor=actor,
            dry_run=dry_run,
            app=app,
        )
