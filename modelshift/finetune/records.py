"""The ``finetune_jobs`` table: one row per fine-tuning idempotency key, and the store API over it.

The table is created by the Alembic migration ``0004_finetune_jobs``; the row class registers on the store's
declarative ``Base`` so both describe the same columns. Each step of a re-run (files uploaded, job
submitted or recovered, job finished, model deployed) changes the row and appends its audit event in ONE
transaction under the store's write lock, so the table and the audit chain never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

# The store package must initialise before anything that imports modelshift.audit (import cycle otherwise).
from modelshift.store.store import Store

# isort: split
from modelshift import audit
from modelshift.errors import StateError
from modelshift.store.engine import run_read, run_write
from modelshift.store.models import Base

#: length of an idempotency key: a hex sha256
KEY_LEN = 64


class FineTunePhase(StrEnum):
    """How far a re-run got. ``deployed`` and ``failed`` are final; a re-run resumes from any other."""

    UPLOADED = "uploaded"
    SUBMITTED = "submitted"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DEPLOYED = "deployed"


class FineTuneJobRow(Base):
    """One fine-tuning re-run of one app's training data on one target base model, in one migration."""

    __tablename__ = "finetune_jobs"

    key: Mapped[str] = mapped_column(String(KEY_LEN), primary_key=True)
    migration_id: Mapped[str] = mapped_column(String(200), index=True)
    app: Mapped[str] = mapped_column(String(200))
    target_model: Mapped[str] = mapped_column(String(200))
    training_sha256: Mapped[str] = mapped_column(String(64))
    validation_sha256: Mapped[str | None] = mapped_column(String(64))
    hyperparameters: Mapped[dict[str, Any]]
    suffix: Mapped[str] = mapped_column(String(40))
    seed: Mapped[int | None] = mapped_column(Integer)
    training_file_id: Mapped[str | None] = mapped_column(String(200))
    validation_file_id: Mapped[str | None] = mapped_column(String(200))
    job_id: Mapped[str | None] = mapped_column(String(200))
    phase: Mapped[str] = mapped_column(String(32))
    job_status: Mapped[str | None] = mapped_column(String(32))
    fine_tuned_model: Mapped[str | None] = mapped_column(String(300))
    deployment_name: Mapped[str | None] = mapped_column(String(64))
    last_event_id: Mapped[str | None] = mapped_column(String(200))
    error_code: Mapped[str | None] = mapped_column(String(200))
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


@dataclass(frozen=True)
class FineTuneRecord:
    """A ``finetune_jobs`` row, copied out of its session."""

    key: str
    migration_id: str
    app: str
    target_model: str
    training_sha256: str
    validation_sha256: str | None
    hyperparameters: dict[str, Any]
    suffix: str
    seed: int | None
    training_file_id: str | None
    validation_file_id: str | None
    job_id: str | None
    phase: FineTunePhase
    job_status: str | None
    fine_tuned_model: str | None
    deployment_name: str | None
    last_event_id: str | None
    error_code: str | None
    error_message: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None

    @classmethod
    def from_row(cls, row: FineTuneJobRow) -> FineTuneRecord:
        """Copy a row out of its session."""
        return cls(
            key=row.key,
            migration_id=row.migration_id,
            app=row.app,
            target_model=row.target_model,
            training_sha256=row.training_sha256,
            validation_sha256=row.validation_sha256,
            hyperparameters=dict(row.hyperparameters),
            suffix=row.suffix,
            seed=row.seed,
            training_file_id=row.training_file_id,
            validation_file_id=row.validation_file_id,
            job_id=row.job_id,
            phase=FineTunePhase(row.phase),
            job_status=row.job_status,
            fine_tuned_model=row.fine_tuned_model,
            deployment_name=row.deployment_name,
            last_event_id=row.last_event_id,
            error_code=row.error_code,
            error_message=row.error_message,
            created_at=row.created_at,
            updated_at=row.updated_at,
            finished_at=row.finished_at,
        )


#: columns a step may change after the row exists (the identity columns never change)
_MUTABLE = frozenset(
    {
        "training_file_id",
        "validation_file_id",
        "job_id",
        "phase",
        "job_status",
        "fine_tuned_model",
        "deployment_name",
        "last_event_id",
        "error_code",
        "error_message",
        "finished_at",
    }
)


def _subject(key: str) -> str:
    return f"finetune:{key[:12]}"


class FineTuneJobStore:
    """The ``finetune_jobs`` rows of a state store; each audited step is one transaction."""

    def __init__(self, store: Store, *, actor: str) -> None:
        if not actor:
            raise StateError("fine-tuning re-run: no actor given; say who or what runs it (MODELSHIFT_ACTOR)")
        self._store = store
        self._actor = actor

    def get(self, key: str) -> FineTuneRecord | None:
        """The row for ``key``, or None when this key never got as far as uploading its files."""

        def work(session: Session) -> FineTuneRecord | None:
            row = session.get(FineTuneJobRow, key)
            return None if row is None else FineTuneRecord.from_row(row)

        return run_read(self._store.engine, work, url=self._store.engine.url)

    def for_migration(self, migration_id: str) -> list[FineTuneRecord]:
        """Every re-run of a migration, oldest first."""

        def work(session: Session) -> list[FineTuneRecord]:
            query = (
                select(FineTuneJobRow)
                .where(FineTuneJobRow.migration_id == migration_id)
                .order_by(FineTuneJobRow.created_at, FineTuneJobRow.key)
            )
            return [FineTuneRecord.from_row(r) for r in session.scalars(query)]

        return run_read(self._store.engine, work, url=self._store.engine.url)

    def create(
        self,
        *,
        now: datetime,
        identity: Mapping[str, Any],
        changes: Mapping[str, Any],
        data: Mapping[str, Any],
    ) -> FineTuneRecord:
        """Insert the row (identity columns + ``changes``) and audit ``finetune.files_uploaded``; a row that
        another worker inserted first for the same key is returned as it is."""

        def work(session: Session) -> FineTuneRecord:
            existing = session.get(FineTuneJobRow, identity["key"])
            if existing is not None:
                return FineTuneRecord.from_row(existing)
            row = FineTuneJobRow(**identity, **changes, created_at=now, updated_at=now)
            session.add(row)
            session.flush()
            record = FineTuneRecord.from_row(row)
            self._audit(session, record, now, audit.Reason.FINETUNE_FILES_UPLOADED, data)
            return record

        return run_write(self._store.engine, work, url=self._store.engine.url)

    def update(
        self,
        key: str,
        *,
        now: datetime,
        changes: Mapping[str, Any],
        reason: audit.Reason | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> FineTuneRecord:
        """Change the row and, when ``reason`` is given, append its audit event in the same transaction.

        Progress that is not a step (a new job status on the way, the event cursor) passes no reason."""
        unknown = set(changes) - _MUTABLE
        if unknown:
            raise StateError(
                f"finetune_jobs {key[:12]}: columns {sorted(unknown)} cannot change after insert"
            )

        def work(session: Session) -> FineTuneRecord:
            row = session.get(FineTuneJobRow, key)
            if row is None:
                raise StateError(
                    f"finetune_jobs has no row {key[:12]}; it was deleted while the re-run was going, "
                    "re-run the migration to start over"
                )
            for column, value in changes.items():
                setattr(row, column, value)
            row.updated_at = now
            session.flush()
            record = FineTuneRecord.from_row(row)
            if reason is not None:
                self._audit(session, record, now, reason, data or {})
            return record

        return run_write(self._store.engine, work, url=self._store.engine.url)

    def _audit(
        self,
        session: Session,
        record: FineTuneRecord,
        now: datetime,
        reason: audit.Reason,
        data: Mapping[str, Any],
    ) -> None:
        audit.append(
            session,
            occurred_at=now,
            actor=self._actor,
            reason=reason,
            subject=_subject(record.key),
            migration_id=record.migration_id,
            data={
                "key": record.key,
                "app": record.app,
                "target_model": record.target_model,
                "phase": record.phase.value,
                "job_id": record.job_id,
                **data,
            },
        )
