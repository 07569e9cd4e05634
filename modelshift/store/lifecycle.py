"""Session-level moves that change status and traffic together: adopt, promote, roll back.

Each runs inside one write transaction, so the status changes, the router write and their audit events
commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from modelshift import audit
from modelshift.errors import IllegalTransitionError, StateError
from modelshift.store import bundles as ops
from modelshift.store.records import RouterState
from modelshift.store.routing import Change, route, router_state
from modelshift.store.status import BundleStatus, check_transition


def _status_change(
    session: Session,
    row: Any,
    new: BundleStatus,
    change: Change,
    evidence: Mapping[str, Any],
    **kwargs: Any,
) -> None:
    ops.change_status(
        session,
        row,
        new,
        now=change.now,
        actor=change.actor,
        reason=change.reason,
        migration_id=change.migration_id,
        evidence=evidence,
        **kwargs,
    )


def adopt(session: Session, digest: str, change: Change) -> RouterState:
    """Onboard an already-serving bundle: candidate -> production (no gate), router 100 % on it."""
    row = ops.require_by_digest(session, digest)
    if BundleStatus(row.status) is not BundleStatus.CANDIDATE:
        raise IllegalTransitionError(
            f"bundle {row.app}@{row.version} ({digest}) is {row.status}; only a candidate can be adopted as "
            "production",
            digest=digest,
        )
    ops.ensure_no_other_production(session, row.app, digest)
    _status_change(
        session,
        row,
        BundleStatus.PRODUCTION,
        change,
        {"adopted": True},
        audit_reason=audit.Reason.BUNDLE_ADOPTED,
        check=False,
    )
    return route(session, row.app, {digest: 100}, change, expected_revision=None)


def promote(session: Session, digest: str, change: Change, evidence: Mapping[str, Any]) -> RouterState:
    """Old production -> retired, this canary -> production, router 100 % on it. Idempotent."""
    row = ops.require_by_digest(session, digest)
    current = router_state(session, row.app)
    if BundleStatus(row.status) is BundleStatus.PRODUCTION and current.weights == {digest: 100}:
        return current  # already promoted: no new events
    # Check the canary's own move first, so a wrong call retires nothing.
    check_transition(
        BundleStatus(row.status),
        BundleStatus.PRODUCTION,
        subject=f"bundle {row.app}@{row.version} ({digest})",
    )
    old = ops.production_row(session, row.app)
    if old is not None:
        _status_change(session, old, BundleStatus.RETIRED, change, {**evidence, "replaced_by": digest})
    _status_change(session, row, BundleStatus.PRODUCTION, change, evidence)
    return route(session, row.app, {digest: 100}, change, expected_revision=None)


def roll_back(session: Session, digest: str, change: Change, evidence: Mapping[str, Any]) -> RouterState:
    """Router 100 % back on production, this canary -> rolled_back. Idempotent."""
    row = ops.require_by_digest(session, digest)
    production = ops.production_row(session, row.app)
    if production is None:
        raise StateError(
            f"app {row.app!r} has no production bundle to roll back to; route traffic by hand with "
            "set_router or adopt the serving bundle with adopt_production",
            app=row.app,
        )
    if BundleStatus(row.status) is not BundleStatus.ROLLED_BACK:
        _status_change(session, row, BundleStatus.ROLLED_BACK, change, evidence)
    current = router_state(session, row.app)
    if current.weights == {production.digest: 100}:
        return current  # traffic is already all on production
    return route(session, row.app, {production.digest: 100}, change, expected_revision=None)
