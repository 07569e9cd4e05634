"""The state store's tables as typed SQLAlchemy 2 declarative models.

The initial Alembic migration (``migrations/versions/0001_initial.py``) creates exactly these tables; a test
compares the two so they cannot drift apart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from modelshift.clock import ensure_utc

#: constraint names are fixed so migrations and error messages can refer to them
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: digests are opaque strings (a hex sha256, maybe with an algorithm prefix)
DIGEST_LEN = 100


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite stores it naive, we read it back as UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Store UTC so naive SQLite values mean the same instant as PostgreSQL's timestamptz."""
        return None if value is None else ensure_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Give back an aware UTC datetime whatever the backend returned."""
        return None if value is None else ensure_utc(value)


class Base(DeclarativeBase):
    """Declarative base of every state-store table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, datetime: UtcDateTime}


class BlobRow(Base):
    """Content-addressed file bytes, shared by every bundle that references the same content."""

    __tablename__ = "blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class BundleRow(Base):
    """One registered bundle: its manifest, its files (logical key to blob sha256) and its status."""

    __tablename__ = "bundles"
    __table_args__ = (
        UniqueConstraint("app", "version"),
        # Partial unique index: the database itself refuses a second production bundle for an app.
        Index(
            "uq_bundles_one_production",
            "app",
            unique=True,
            sqlite_where=text("status = 'production'"),
            postgresql_where=text("status = 'production'"),
        ),
        Index("ix_bundles_app_status", "app", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    app: Mapped[str] = mapped_column(String(200))
    version: Mapped[str] = mapped_column(String(200))
    digest: Mapped[str] = mapped_column(String(DIGEST_LEN), unique=True)
    status: Mapped[str] = mapped_column(String(32))
    manifest: Mapped[dict[str, Any]]
    files: Mapped[dict[str, Any]]
    registered_at: Mapped[datetime]
    status_changed_at: Mapped[datetime]


class RouterStateRow(Base):
    """The router of one app: a revision for compare-and-set, who changed it last and an optional lease."""

    __tablename__ = "router_state"

    app: Mapped[str] = mapped_column(String(200), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None]


class RouterWeightRow(Base):
    """One bundle's share of an app's traffic, in whole percent."""

    __tablename__ = "router_weights"
    __table_args__ = (CheckConstraint("weight >= 0 AND weight <= 100", name="weight_percent"),)

    app: Mapped[str] = mapped_column(String(200), ForeignKey("router_state.app"), primary_key=True)
    digest: Mapped[str] = mapped_column(String(DIGEST_LEN), ForeignKey("bundles.digest"), primary_key=True)
    weight: Mapped[int] = mapped_column(Integer)


class EvaluationRecordRow(Base):
    """The outcome of one evaluation of a bundle on a dataset (optionally against a baseline bundle)."""

    __tablename__ = "evaluation_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    bundle_digest: Mapped[str] = mapped_column(String(DIGEST_LEN), ForeignKey("bundles.digest"), index=True)
    dataset_digest: Mapped[str] = mapped_column(String(DIGEST_LEN))
    baseline_digest: Mapped[str | None] = mapped_column(String(DIGEST_LEN))
    passed: Mapped[bool] = mapped_column(Boolean)
    verdict: Mapped[str] = mapped_column(String(64))
    report: Mapped[dict[str, Any]]
    actor: Mapped[str] = mapped_column(String(200))
    migration_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]


class AuditEventRow(Base):
    """One link of the append-only, hash-chained audit log (see :mod:`modelshift.audit`)."""

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    occurred_at: Mapped[datetime]
    migration_id: Mapped[str | None] = mapped_column(String(200), index=True)
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]]
    # UNIQUE(prev_hash): two events can never claim the same predecessor, so the chain cannot fork.
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)
