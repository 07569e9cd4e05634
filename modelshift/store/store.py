"""The state store: bundles, status, router weights, evaluation records and the audit chain.

Every mutating call runs in one transaction that holds the store's write lock and writes its audit event in
that same transaction: there is never a state change without its event, nor an event without its change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from functools import partial
from types import TracebackType
from typing import Any, TypeVar

from sqlalchemy import Engine, Select, select
from sqlalchemy.orm import Session

from modelshift import audit
from modelshift.clock import Clock, utcnow
from modelshift.errors import (
    BundleValidationError,
    NotFoundError,
    StateError,
)
from modelshift.settings import get_settings
from modelshift.store import bundles as ops
from modelshift.store import lifecycle, routing
from modelshift.store.engine import make_engine, redact, run_read, run_write
from modelshift.store.migrate import upgrade_to_head
from modelshift.store.models import AuditEventRow, BlobRow, BundleRow, EvaluationRecordRow, RouterWeightRow
from modelshift.store.records import EvaluationRecord, RegisteredBundle, RouterState
from modelshift.store.routing import Change
from modelshift.store.status import SERVING, BundleStatus, parse_status

_AUDIT_PAGE = 1000
T = TypeVar("T")


class Store:
    """Typed access to the state store. Open with :meth:`Store.open`; close (or use ``with``) when done."""

    def __init__(self, engine: Engine, *, clock: Clock = utcnow) -> None:
        self._engine = engine
        self._clock = clock
        self.url = redact(engine.url)

    @classmethod
    def open(cls, url: str | None = None, *, clock: Clock = utcnow) -> Store:
        """Open the store at ``url`` (default: the settings' URL) and upgrade its schema to head."""
        engine = make_engine(url or get_settings().resolved_database_url)
        try:
            upgrade_to_head(engine)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, clock=clock)

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for tests and operators; library code goes through the methods)."""
        return self._engine

    def close(self) -> None:
        """Release every pooled connection."""
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    # -- plumbing --

    def _now(self) -> datetime:
        return self._clock()

    def _change(self, actor: str, reason: str, migration_id: str | None) -> Change:
        if not actor:
            raise StateError("no actor given; every change names who or what made it (MODELSHIFT_ACTOR)")
        return Change(now=self._now(), actor=actor, reason=reason, migration_id=migration_id)

    def _write(self, fn: Callable[[Session], T]) -> T:
        return run_write(self._engine, fn, url=self._engine.url)

    def _read(self, fn: Callable[[Session], T]) -> T:
        return run_read(self._engine, fn, url=self._engine.url)

    # -- bundles --

    def register_bundle(
        self,
        app: str,
        version: str,
        digest: str,
        manifest: Mapping[str, Any],
        files: Mapping[str, str],
        blobs: Mapping[str, bytes],
        *,
        actor: str,
        migration_id: str | None = None,
        status: BundleStatus | str = BundleStatus.CANDIDATE,
    ) -> RegisteredBundle:
        """Register a bundle; the identical app@version again is a no-op, other content raises a conflict."""
        problems = ops.validate_registration(app, version, digest, files, blobs)
        if problems:
            raise BundleValidationError([f"{app}@{version}: {p}" for p in problems], app=app, version=version)
        wanted = parse_status(str(status))

        def work(session: Session) -> RegisteredBundle:
            return ops.register(
                session,
                now=self._now(),
                app=app,
                version=version,
                digest=digest,
                manifest=manifest,
                files=files,
                blobs=blobs,
                status=wanted,
                actor=actor,
                migration_id=migration_id,
            )

        return self._write(work)

    def get_bundle(self, app: str, version: str | None = None) -> RegisteredBundle:
        """``app@version``; with no version, the production bundle, else the latest registered one."""

        def work(session: Session) -> RegisteredBundle:
            query = select(BundleRow).where(BundleRow.app == app)
            if version is not None:
                row = session.scalars(query.where(BundleRow.version == version)).first()
            else:
                row = (
                    ops.production_row(session, app)
                    or session.scalars(query.order_by(BundleRow.id.desc())).first()
                )
            if row is None:
                what = f"bundle {app}@{version}" if version is not None else f"any bundle of app {app!r}"
                raise NotFoundError(
                    f"no {what} is registered; see `modelshift bundle list` or register it first",
                    app=app,
                    version=version,
                )
            return RegisteredBundle.from_row(row)

        return self._read(work)

    def get_bundle_by_digest(self, digest: str) -> RegisteredBundle:
        """The bundle with exactly this digest, or NotFoundError."""
        return self._read(lambda s: RegisteredBundle.from_row(ops.require_by_digest(s, digest)))

    def list_bundles(
        self, app: str | None = None, status: BundleStatus | str | None = None
    ) -> list[RegisteredBundle]:
        """Registered bundles, optionally of one app and/or one status, in registration order."""
        query = select(BundleRow).order_by(BundleRow.app, BundleRow.id)
        if app is not None:
            query = query.where(BundleRow.app == app)
        if status is not None:
            query = query.where(BundleRow.status == parse_status(str(status)).value)
        return self._read(lambda s: [RegisteredBundle.from_row(r) for r in s.scalars(query)])

    def bundle_blobs(self, digest: str) -> dict[str, bytes]:
        """The bytes of every file of a bundle, keyed by sha256."""

        def work(session: Session) -> dict[str, bytes]:
            row = ops.require_by_digest(session, digest)
            shas = set(row.files.values())
            return {
                b.sha256: b.data for b in session.scalars(select(BlobRow).where(BlobRow.sha256.in_(shas)))
            }

        return self._read(work)

    # -- status --

    def set_status(
        self,
        digest: str,
        new: BundleStatus | str,
        *,
        actor: str,
        reason: str,
        migration_id: str | None = None,
        evidence: Mapping[str, Any] | None = None,
    ) -> RegisteredBundle:
        """Move a bundle along the transition table; an illegal move raises and changes nothing."""
        wanted = parse_status(str(new))

        def work(session: Session) -> RegisteredBundle:
            row = ops.require_by_digest(session, digest)
            if wanted not in SERVING:
                weight = session.scalar(
                    select(RouterWeightRow.weight).where(
                        RouterWeightRow.digest == digest, RouterWeightRow.weight > 0
                    )
                )
                if weight:
                    raise StateError(
                        f"bundle {row.app}@{row.version} ({digest}) still receives {weight} % of traffic; "
                        f"shift it away first (set_router) or use Store.roll_back / Store.promote",
                        digest=digest,
                    )
            return ops.change_status(
                session,
                row,
                wanted,
                now=self._now(),
                actor=actor,
                reason=reason,
                migration_id=migration_id,
                evidence=evidence or {},
            )

        return self._write(work)

    def adopt_production(
        self, digest: str, *, actor: str, reason: str = "onboarding", migration_id: str | None = None
    ) -> RouterState:
        """Onboard an app's already-serving bundle: candidate -> production, router 100 % on it, audited.

        Only while the app has no production bundle yet."""
        return self._write(lambda s: lifecycle.adopt(s, digest, self._change(actor, reason, migration_id)))

    def promote(
        self,
        digest: str,
        *,
        actor: str,
        reason: str,
        migration_id: str | None = None,
        evidence: Mapping[str, Any] | None = None,
    ) -> RouterState:
        """Atomically: the old production bundle -> retired, this canary -> production, router 100 % on it."""
        change = self._change(actor, reason, migration_id)
        return self._write(lambda s: lifecycle.promote(s, digest, change, dict(evidence or {})))

    def roll_back(
        self,
        digest: str,
        *,
        actor: str,
        reason: str,
        migration_id: str | None = None,
        evidence: Mapping[str, Any] | None = None,
    ) -> RouterState:
        """Atomically: router 100 % back on production, this canary -> rolled_back. Idempotent."""
        change = self._change(actor, reason, migration_id)
        return self._write(lambda s: lifecycle.roll_back(s, digest, change, dict(evidence or {})))

    # -- router --

    def get_router(self, app: str) -> RouterState:
        """The app's current weights and revision (revision 0 and no weights before the first write)."""
        return self._read(lambda s: routing.router_state(s, app))

    def set_router(
        self,
        app: str,
        weights: Mapping[str, int],
        *,
        expected_revision: int,
        actor: str,
        reason: str,
        migration_id: str | None = None,
        lease_expires_at: datetime | None = None,
    ) -> RouterState:
        """Compare-and-set the app's weights; a stale revision raises RouterConflictError, bad weights
        RouterInvariantError; either way nothing changes."""
        change = self._change(actor, reason, migration_id)
        return self._write(
            lambda s: routing.route(
                s,
                app,
                weights,
                change,
                expected_revision=expected_revision,
                lease_expires_at=lease_expires_at,
            )
        )

    # -- evaluation records --

    def record_evaluation(
        self,
        bundle_digest: str,
        dataset_digest: str,
        passed: bool,
        verdict: str,
        report: Mapping[str, Any],
        *,
        baseline_digest: str | None = None,
        actor: str,
        migration_id: str | None = None,
    ) -> EvaluationRecord:
        """Store an evaluation outcome for an exact bundle digest, audited as evaluation.recorded."""

        def work(session: Session) -> EvaluationRecord:
            bundle = ops.require_by_digest(session, bundle_digest)
            if baseline_digest is not None:
                ops.require_by_digest(session, baseline_digest)
            now = self._now()
            subject = f"evaluation:{bundle.app}@{bundle.version}"
            row = EvaluationRecordRow(
                bundle_digest=bundle_digest,
                dataset_digest=dataset_digest,
                baseline_digest=baseline_digest,
                passed=bool(passed),
                verdict=verdict,
                report=audit.canonical_data(report, subject=subject),
                actor=actor,
                migration_id=migration_id,
                created_at=now,
            )
            session.add(row)
            session.flush()
            audit.append(
                session,
                occurred_at=now,
                actor=actor,
                reason=audit.Reason.EVALUATION_RECORDED,
                subject=subject,
                data={
                    "record_id": row.id,
                    "bundle_digest": bundle_digest,
                    "dataset_digest": dataset_digest,
                    "baseline_digest": baseline_digest,
                    "passed": bool(passed),
                    "verdict": verdict,
                },
                migration_id=migration_id,
            )
            return EvaluationRecord.from_row(row)

        return self._write(work)

    def passing_evaluation(self, bundle_digest: str) -> EvaluationRecord | None:
        """The newest passing evaluation record of exactly this digest, if any."""
        query = (
            select(EvaluationRecordRow)
            .where(EvaluationRecordRow.bundle_digest == bundle_digest, EvaluationRecordRow.passed.is_(True))
            .order_by(EvaluationRecordRow.id.desc())
            .limit(1)
        )
        return self._read(lambda s: next((EvaluationRecord.from_row(r) for r in s.scalars(query)), None))

    # -- audit --

    def append_audit(
        self,
        reason: audit.Reason | str,
        subject: str,
        data: Mapping[str, Any] | None = None,
        *,
        actor: str,
        migration_id: str | None = None,
    ) -> audit.AuditEvent:
        """Append a decision event that changes no store state (migration.*, canary.*, notice.*)."""
        code = audit.parse_reason(str(reason))
        return self._write(
            lambda s: audit.append(
                s,
                occurred_at=self._now(),
                actor=actor,
                reason=code,
                subject=subject,
                data=data,
                migration_id=migration_id,
            )
        )

    def iter_audit_events(self, migration_id: str | None = None) -> Iterator[audit.AuditEvent]:
        """Stream audit events in seq order, a page per read transaction."""
        after = 0
        while True:
            query = select(AuditEventRow).where(AuditEventRow.seq > after)
            if migration_id is not None:
                query = query.where(AuditEventRow.migration_id == migration_id)
            query = query.order_by(AuditEventRow.seq).limit(_AUDIT_PAGE)
            page = self._read(partial(_events, query=query))
            yield from page
            if len(page) < _AUDIT_PAGE:
                return
            after = page[-1].seq

    def audit_events(self, migration_id: str | None = None) -> list[audit.AuditEvent]:
        """Every audit event (of one migration, if given) in seq order."""
        return list(self.iter_audit_events(migration_id))

    def verify_audit(self) -> audit.VerifyResult:
        """Recompute the audit chain (see :func:`modelshift.audit.verify`)."""
        return audit.verify(self)


def _events(session: Session, *, query: Select[AuditEventRow]) -> list[audit.AuditEvent]:
    return [audit.AuditEvent.from_row(r) for r in session.scalars(query)]
