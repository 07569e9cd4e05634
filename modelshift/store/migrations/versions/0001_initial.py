"""Initial state store: blobs, bundles, router, evaluation records, audit chain.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_initial"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NOW = sa.DateTime(timezone=True)
_DIGEST = sa.String(100)


def upgrade() -> None:
    """Create every table of the state store."""
    op.create_table(
        "blobs",
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name="pk_blobs"),
    )
    op.create_table(
        "bundles",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("app", sa.String(200), nullable=False),
        sa.Column("version", sa.String(200), nullable=False),
        sa.Column("digest", _DIGEST, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("manifest", sa.JSON(), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("registered_at", _NOW, nullable=False),
        sa.Column("status_changed_at", _NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_bundles"),
        sa.UniqueConstraint("app", "version", name="uq_bundles_app_version"),
        sa.UniqueConstraint("digest", name="uq_bundles_digest"),
    )
    op.create_index("ix_bundles_app_status", "bundles", ["app", "status"])
    op.create_index(
        "uq_bundles_one_production",
        "bundles",
        ["app"],
        unique=True,
        sqlite_where=sa.text("status = 'production'"),
        postgresql_where=sa.text("status = 'production'"),
    )
    op.create_table(
        "router_state",
        sa.Column("app", sa.String(200), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("updated_at", _NOW, nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.Column("lease_expires_at", _NOW, nullable=True),
        sa.PrimaryKeyConstraint("app", name="pk_router_state"),
    )
    op.create_table(
        "router_weights",
        sa.Column("app", sa.String(200), nullable=False),
        sa.Column("digest", _DIGEST, nullable=False),
        sa.Column("weight", sa.Integer(), nullable=False),
        sa.CheckConstraint("weight >= 0 AND weight <= 100", name="ck_router_weights_weight_percent"),
        sa.ForeignKeyConstraint(["app"], ["router_state.app"], name="fk_router_weights_app_router_state"),
        sa.ForeignKeyConstraint(["digest"], ["bundles.digest"], name="fk_router_weights_digest_bundles"),
        sa.PrimaryKeyConstraint("app", "digest", name="pk_router_weights"),
    )
    op.create_table(
        "evaluation_records",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("bundle_digest", _DIGEST, nullable=False),
        sa.Column("dataset_digest", _DIGEST, nullable=False),
        sa.Column("baseline_digest", _DIGEST, nullable=True),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("verdict", sa.String(64), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("migration_id", sa.String(200), nullable=True),
        sa.Column("created_at", _NOW, nullable=False),
        sa.ForeignKeyConstraint(
            ["bundle_digest"], ["bundles.digest"], name="fk_evaluation_records_bundle_digest_bundles"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_evaluation_records"),
    )
    op.create_index("ix_evaluation_records_bundle_digest", "evaluation_records", ["bundle_digest"])
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("occurred_at", _NOW, nullable=False),
        sa.Column("migration_id", sa.String(200), nullable=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_events"),
        sa.UniqueConstraint("prev_hash", name="uq_audit_events_prev_hash"),
        sa.UniqueConstraint("hash", name="uq_audit_events_hash"),
    )
    op.create_index("ix_audit_events_migration_id", "audit_events", ["migration_id"])


def downgrade() -> None:
    """Drop every table (loses all state; for development only)."""
    op.drop_index("ix_audit_events_migration_id", table_name="audit_events")
    op.drop_table("audit_events")
    op.drop_index("ix_evaluation_records_bundle_digest", table_name="evaluation_records")
    op.drop_table("evaluation_records")
    op.drop_table("router_weights")
    op.drop_table("router_state")
    op.drop_index("uq_bundles_one_production", table_name="bundles")
    op.drop_index("ix_bundles_app_status", table_name="bundles")
    op.drop_table("bundles")
    op.drop_table("blobs")
