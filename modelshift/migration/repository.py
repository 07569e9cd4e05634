"""``MigrationStore``: create, advance and read migration records; every phase change audited in the same
transaction, under the store's write lock.

Audit reasons: creating a record is ``migration.started``; entering ``planned`` is ``migration.planned``;
entering ``prepared`` is ``migration.prepared``; entering a terminal phase is ``migration.finished``;
entering any other stage phase (assessing, preparing, evaluating, canary, promoting, rolling_back) is
``migration.started`` with ``data.stage`` naming the stage that starts. ``data`` always carries ``from``
and ``to``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from modelshift.migration.records import Migration, MigrationRow, idempotency_key

# isort: split
from modelshift import audit
from modelshift.clock import Clock, utcnow
from modelshift.errors import MigrationConflictError, NotFoundError, StateError
from modelshift.migration.phases import (
    ACTIVE,
    KEY_HOLDING,
    RETRYABLE_ENDS,
    TERMINAL,
    MigrationPhase,
    Trigger,
    check_transition,
)
from modelshift.store.engine import run_read, run_write
from modelshift.store.store import Store

T = TypeVar("T")


@dataclass(frozen=True)
class StartResult:
    """What :meth:`MigrationStore.start` did: ``created`` a new record, or found the one with the same key."""

    migration: Migration
    created: bool


def _reason_for(new: MigrationPhase) -> audit.Reason:
    if new in TERMINAL:
        return audit.Reason.MIGRATION_FINISHED
    if new is MigrationPhase.PLANNED:
        return audit.Reason.MIGRATION_PLANNED
    if new is MigrationPhase.PREPARED:
        return audit.Reason.MIGRATION_PREPARED
    return audit.Reason.MIGRATION_STARTED


def _subject(app: str) -> str:
    return f"migration:{app}"


class MigrationStore:
    """Migration records in the state store. Every write is one transaction holding the write lock."""

    def __init__(self, store: Store, *, clock: Clock = utcnow) -> None:
        self._store = store
        self._clock = clock

    # -- writes --

    def start(
        self,
        *,
        app: str,
        baseline_digest: str,
        target: str | None,
        trigger: Trigger | str,
        reason: str,
        actor: str,
        parameters: Mapping[str, Any],
        dry_run: bool = False,
        flow_run_id: str | None = None,
        evidence: Mapping[str, Any] | None = None,
    ) -> StartResult:
        """Create a pending migration, or return the record already holding the same idempotency key.

        Raises MigrationConflictError when the app has another active migration (a different key)."""
        if not actor:
            raise StateError(f"migration of {app}: no actor given; say who or what started it")
        key = idempotency_key(app, baseline_digest, target)
        kind = Trigger(trigger)

        def work(session: Session) -> StartResult:
            if not dry_run:
                same = session.scalars(
                    select(MigrationRow).where(
                        MigrationRow.idempotency_key == key,
                        MigrationRow.dry_run.is_(False),
                        MigrationRow.phase.in_([p.value for p in KEY_HOLDING]),
                    )
                ).first()
                if same is not None:
                    return StartResult(Migration.from_row(same), created=False)
                other = self._active_row(session, app)
                if other is not None:
                    raise MigrationConflictError(
                        f"app {app} already has active migration {other.id} (phase {other.phase}, target "
                        f"{other.target or 'auto'}); wait for it to finish or cancel it with "
                        f"`modelshift migrate {app} --cancel`",
                        app=app,
                        migration_id=other.id,
                    )
            now = self._clock()
            row = MigrationRow(
                id=str(uuid.uuid4()),
                app=app,
                baseline_digest=baseline_digest,
                target=target,
                idempotency_key=key,
                phase=MigrationPhase.PENDING.value,
                dry_run=dry_run,
                trigger=kind.value,
                reason=reason,
                actor=actor,
                parameters=audit.canonical_data(parameters, subject=_subject(app)),
                plan=None,
                created_at=now,
                updated_at=now,
                flow_run_id=flow_run_id,
            )
            try:
                with session.begin_nested():
                    session.add(row)
            except IntegrityError as exc:  # only reachable if a writer bypassed the write lock
                raise MigrationConflictError(
                    f"app {app}: the database refused a second active migration or a repeated key "
                    f"({exc.orig}); retry, and check that every writer goes through MigrationStore",
                    app=app,
                ) from None
            audit.append(
                session,
                occurred_at=now,
                actor=actor,
                reason=audit.Reason.MIGRATION_STARTED,
                subject=_subject(app),
                data={
                    "to": MigrationPhase.PENDING.value,
                    "baseline_digest": baseline_digest,
                    "target": target,
                    "trigger": kind.value,
                    "reason": reason,
                    "dry_run": dry_run,
                    "idempotency_key": key,
                    "flow_run_id": flow_run_id,
                    **dict(evidence or {}),
                },
                migration_id=row.id,
            )
            return StartResult(Migration.from_row(row), created=True)

        return run_write(self._store.engine, work, url=self._store.engine.url)

    def advance(
        self,
        migration_id: str,
        new: MigrationPhase | str,
        *,
        actor: str,
        evidence: Mapping[str, Any] | None = None,
        plan: Mapping[str, Any] | None = None,
        flow_run_id: str | None = None,
    ) -> Migration:
        """Move a migration to ``new`` along the transition table (audited); illegal moves change nothing."""
        wanted = MigrationPhase(new)

        def work(session: Session) -> Migration:
            row = self._require(session, migration_id)
            current = MigrationPhase(row.phase)
            check_transition(current, wanted, subject=f"migration {migration_id} of {row.app}")
            now = self._clock()
            row.phase = wanted.value
            row.updated_at = now
            if plan is not None:
                row.plan = audit.canonical_data(plan, subject=_subject(row.app))
            if flow_run_id is not None:
                row.flow_run_id = flow_run_id
            session.flush()
            data: dict[str, Any] = {"from": current.value, "to": wanted.value, **dict(evidence or {})}
            if wanted not in TERMINAL and wanted not in (MigrationPhase.PLANNED, MigrationPhase.PREPARED):
                data["stage"] = wanted.value
            audit.append(
                session,
                occurred_at=now,
                actor=actor,
                reason=_reason_for(wanted),
                subject=_subject(row.app),
                data=data,
                migration_id=row.id,
            )
            return Migration.from_row(row)

        return run_write(self._store.engine, work, url=self._store.engine.url)

    # -- reads --

    def get(self, migration_id: str) -> Migration:
        """The migration with this id, or NotFoundError."""
        return self._read(lambda s: Migration.from_row(self._require(s, migration_id)))

    def active_for(self, app: str) -> Migration | None:
        """The app's active (real, not dry-run) migration, if any."""

        def work(session: Session) -> Migration | None:
            row = self._active_row(session, app)
            return None if row is None else Migration.from_row(row)

        return self._read(work)

    def holding_key(self, key: str) -> Migration | None:
        """The real migration holding ``key`` (in flight or succeeded), if any."""
        query = select(MigrationRow).where(
            MigrationRow.idempotency_key == key,
            MigrationRow.dry_run.is_(False),
            MigrationRow.phase.in_([p.value for p in KEY_HOLDING]),
        )
        return self._read(lambda s: next((Migration.from_row(r) for r in s.scalars(query)), None))

    def attempts(self, key: str) -> int:
        """How many real migrations with ``key`` ended in a phase that allows another try."""
        query = select(func.count()).where(
            MigrationRow.idempotency_key == key,
            MigrationRow.dry_run.is_(False),
            MigrationRow.phase.in_([p.value for p in RETRYABLE_ENDS]),
        )
        return self._read(lambda s: int(s.scalar(query) or 0))

    def list(self, app: str | None = None) -> list[Migration]:
        """Migrations, newest first, optionally of one app."""
        query = select(MigrationRow).order_by(MigrationRow.created_at.desc(), MigrationRow.id)
        if app is not None:
            query = query.where(MigrationRow.app == app)
        return self._read(lambda s: [Migration.from_row(r) for r in s.scalars(query)])

    # -- plumbing --

    def _read(self, fn: Callable[[Session], T]) -> T:
        return run_read(self._store.engine, fn, url=self._store.engine.url)

    @staticmethod
    def _active_row(session: Session, app: str) -> MigrationRow | None:
        return session.scalars(
            select(MigrationRow).where(
                MigrationRow.app == app,
                MigrationRow.dry_run.is_(False),
                MigrationRow.phase.in_([p.value for p in ACTIVE]),
            )
        ).first()

    @staticmethod
    def _require(session: Session, migration_id: str) -> MigrationRow:
        row = session.get(MigrationRow, migration_id)
        if row is None:
            raise NotFoundError(
                f"no migration {migration_id!r} in the state store; list them with "
                "`modelshift audit show` or check MODELSHIFT_DATABASE_URL",
                migration_id=migration_id,
            )
        return row
