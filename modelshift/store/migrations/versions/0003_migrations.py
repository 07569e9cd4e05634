"""Migration records (modelshift/migration/records.py::MigrationRow) with their two database-enforced rules.

Revision ID: 0003_migrations
Revises: 0002_notices
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_migrations"
down_revision: str | None = "0002_notices"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)
# Frozen copies of the phase sets at this revision (a later phase needs a new migration that recreates them).
_ACTIVE = (
    "'assessing', 'canary', 'evaluating', 'pending', 'planned', 'preparing', 'promoting', 'rolling_back'"
)
ONE_ACTIVE_WHERE = f"NOT dry_run AND phase IN ({_ACTIVE})"
IDEMPOTENCY_WHERE = f"NOT dry_run AND phase IN ({_ACTIVE}, 'succeeded')"


def upgrade() -> None:
    """Create the migrations table, the one-active-per-app and the idempotency-key partial unique indexes."""
    op.create_table(
        "migrations",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("app", sa.String(200), nullable=False),
        sa.Column("baseline_digest", sa.String(100), nullable=False),
        sa.Column("target", sa.String(200), nullable=True),
        sa.Column("idempotency_key", sa.String(64), nullable=False),
        sa.Column("phase", sa.String(32), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("plan", sa.JSON(), nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.Column("flow_run_id", sa.String(36), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_migrations"),
    )
    op.create_index(
        "uq_migrations_one_active",
        "migrations",
        ["app"],
        unique=True,
        sqlite_where=sa.text(ONE_ACTIVE_WHERE),
        postgresql_where=sa.text(ONE_ACTIVE_WHERE),
    )
    op.create_index(
        "uq_migrations_idempotency",
        "migrations",
        ["idempotency_key"],
        unique=True,
        sqlite_where=sa.text(IDEMPOTENCY_WHERE),
        postgresql_where=sa.text(IDEMPOTENCY_WHERE),
    )
    op.create_index("ix_migrations_app_created_at", "migrations", ["app", "created_at"])


def downgrade() -> None:
    """Drop the migrations table and its indexes."""
    op.drop_index("ix_migrations_app_created_at", table_name="migrations")
    op.drop_index("uq_migrations_idempotency", table_name="migrations")
    op.drop_index("uq_migrations_one_active", table_name="migrations")
    op.drop_table("migrations")
