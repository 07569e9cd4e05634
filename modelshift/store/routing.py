"""Session-level router operations: read an app's weights, and write them (CAS, invariants, audit event)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from modelshift import audit
from modelshift.errors import RouterConflictError
from modelshift.store.models import BundleRow, EvaluationRecordRow, RouterStateRow, RouterWeightRow
from modelshift.store.records import RegisteredBundle, RouterState
from modelshift.store.router import check_router_invariants


@dataclass(frozen=True)
class Change:
    """Who makes a change, why, when, and under which migration: what every audit event records."""

    now: datetime
    actor: str
    reason: str
    migration_id: str | None = None


def router_state(session: Session, app: str) -> RouterState:
    """The app's router as stored (revision 0 and no weights before its first write)."""
    state = session.get(RouterStateRow, app, populate_existing=True)
    if state is None:
        return RouterState(app=app, revision=0)
    weights = {
        w.digest: w.weight
        for w in session.scalars(
            select(RouterWeightRow).where(RouterWeightRow.app == app).order_by(RouterWeightRow.digest)
        )
    }
    return RouterState(
        app=app,
        revision=state.revision,
        weights=weights,
        lease_expires_at=state.lease_expires_at,
        updated_at=state.updated_at,
        updated_by=state.updated_by,
    )


def passing_digests(session: Session, digests: list[str]) -> set[str]:
    """Which of ``digests`` have at least one passing evaluation record."""
    return set(
        session.scalars(
            select(EvaluationRecordRow.bundle_digest).where(
                EvaluationRecordRow.bundle_digest.in_(digests), EvaluationRecordRow.passed.is_(True)
            )
        )
    )


def route(
    session: Session,
    app: str,
    weights: Mapping[str, int],
    change: Change,
    *,
    expected_revision: int | None,
    lease_expires_at: datetime | None = None,
) -> RouterState:
    """Write the app's weights in the open write transaction; CAS unless ``expected_revision`` is None.

    Zero weights are dropped, so the stored split lists only bundles that receive traffic.
    """
    before = router_state(session, app)
    if expected_revision is not None and before.revision != expected_revision:
        raise RouterConflictError(
            f"router of app {app!r} is at revision {before.revision}, not {expected_revision}; another "
            "writer changed it: re-read it with get_router and decide again",
            app=app,
            expected_revision=expected_revision,
            actual_revision=before.revision,
        )
    digests = [str(d) for d in weights]
    rows = session.scalars(select(BundleRow).where(BundleRow.digest.in_(digests))).all()
    by_digest = {r.digest: RegisteredBundle.from_row(r) for r in rows}
    check_router_invariants(weights, by_digest, passing_digests(session, digests), app=app)
    kept = {d: int(w) for d, w in sorted(weights.items()) if w > 0}
    state = session.get(RouterStateRow, app)
    if state is None:
        state = RouterStateRow(app=app, revision=0, updated_at=change.now, updated_by=change.actor)
        session.add(state)
    state.revision += 1
    state.updated_at = change.now
    state.updated_by = change.actor
    state.lease_expires_at = lease_expires_at
    session.flush()
    session.execute(delete(RouterWeightRow).where(RouterWeightRow.app == app))
    session.add_all(RouterWeightRow(app=app, digest=d, weight=w) for d, w in kept.items())
    session.flush()
    audit.append(
        session,
        occurred_at=change.now,
        actor=change.actor,
        reason=audit.Reason.ROUTER_UPDATED,
        subject=f"router:{app}",
        data={
            "app": app,
            "revision": state.revision,
            "weights": kept,
            "previous_weights": before.weights,
            "why": change.reason,
            "lease_expires_at": None if lease_expires_at is None else audit.format_time(lease_expires_at),
        },
        migration_id=change.migration_id,
    )
    return router_state(session, app)
