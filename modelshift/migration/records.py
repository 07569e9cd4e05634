"""The ``migrations`` table, the typed record read from it, and the idempotency key.

The table is created by the Alembic migration ``0003_migrations``; the row class registers on the store's
declarative ``Base`` so both describe the same columns. Two rules live in the database itself, as partial
unique indexes, so that no code path (a second worker, a racing scan, a hand-written INSERT) can break them:

* ``uq_migrations_one_active``: at most one real (not dry-run) migration per app in an ACTIVE phase;
* ``uq_migrations_idempotency``: at most one real migration per idempotency key that is in flight or
  finished successfully; after failed / rolled_back / cancelled the same key may be tried again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

# The store package must initialise before anything that imports modelshift.audit (import cycle otherwise).
from modelshift.store.store import Store  # noqa: F401

# isort: split
from modelshift.migration.phases import ACTIVE, KEY_HOLDING, MigrationPhase, Trigger, sql_in
from modelshift.store.models import DIGEST_LEN, Base

#: length of an idempotency key: a hex sha256
KEY_LEN = 64
ONE_ACTIVE_WHERE = f"NOT dry_run AND phase IN ({sql_in(ACTIVE)})"
IDEMPOTENCY_WHERE = f"NOT dry_run AND phase IN ({sql_in(KEY_HOLDING)})"


def idempotency_key(app: str, baseline_digest: str, target: str | None) -> str:
    """sha256 (hex) of (app, baseline digest, target): the same three start one migration, not two."""
    canonical = json.dumps([app, baseline_digest, target or ""], separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class MigrationRow(Base):
    """One migration of one app from its baseline bundle towards a target model."""

    __tablename__ = "migrations"
    __table_args__ = (
        Index(
            "uq_migrations_one_active",
            "app",
            unique=True,
            sqlite_where=text(ONE_ACTIVE_WHERE),
            postgresql_where=text(ONE_ACTIVE_WHERE),
        ),
        Index(
            "uq_migrations_idempotency",
            "idempotency_key",
            unique=True,
            sqlite_where=text(IDEMPOTENCY_WHERE),
            postgresql_where=text(IDEMPOTENCY_WHERE),
        ),
        Index("ix_migrations_app_created_at", "app", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    app: Mapped[str] = mapped_column(String(200))
    baseline_digest: Mapped[str] = mapped_column(String(DIGEST_LEN))
    target: Mapped[str | None] = mapped_column(String(200))
    idempotency_key: Mapped[str] = mapped_column(String(KEY_LEN))
    phase: Mapped[str] = mapped_column(String(32))
    dry_run: Mapped[bool] = mapped_column(Boolean)
    trigger: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(200))
    parameters: Mapped[dict[str, Any]]
    plan: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    flow_run_id: Mapped[str | None] = mapped_column(String(36))


@dataclass(frozen=True)
class Migration:
    """A migration record, copied out of its session."""

    id: str
    app: str
    baseline_digest: str
    target: str | None
    idempotency_key: str
    phase: MigrationPhase
    dry_run: bool
    trigger: Trigger
    reason: str
    actor: str
    parameters: dict[str, Any]
    plan: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    flow_run_id: str | None

    @property
    def active(self) -> bool:
        """True while the migration is in flight."""
        return self.phase in ACTIVE

    @classmethod
    def from_row(cls, row: MigrationRow) -> Migration:
        """Copy a row out of its session."""
        return cls(
            id=row.id,
            app=row.app,
            baseline_digest=row.baseline_digest,
            target=row.target,
            idempotency_key=row.idempotency_key,
            phase=MigrationPhase(row.phase),
            dry_run=bool(row.dry_run),
            trigger=Trigger(row.trigger),
            reason=row.reason,
            actor=row.actor,
            parameters=dict(row.parameters),
            plan=None if row.plan is None else dict(row.plan),
            created_at=row.created_at,
            updated_at=row.updated_at,
            flow_run_id=row.flow_run_id,
        )
