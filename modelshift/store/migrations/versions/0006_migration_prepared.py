"""The ``prepared`` migration phase: it is active and holds its idempotency key, so the two partial unique
indexes of 0003 are recreated with it in their WHERE clauses.

Revision ID: 0006_migration_prepared
Revises: 0005_request_metrics
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_migration_prepared"
down_revision: str | None = "0005_request_metrics"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the phase sets at this revision (a later phase needs a new migration that recreates them).
_BEFORE = (
    "'assessing', 'canary', 'evaluating', 'pending', 'planned', 'preparing', 'promoting', 'rolling_back'"
)
_AFTER = (
    "'assessing', 'canary', 'evaluating', 'pending', 'planned', 'prepared', 'preparing', 'promoting', "
    "'rolling_back'"
)


def _recreate(active: str) -> None:
    one_active = f"NOT dry_run AND phase IN ({active})"
    idempotency = f"NOT dry_run AND phase IN ({active}, 'succeeded')"
    op.drop_index("uq_migrations_idempotency", table_name="migrations")
    op.drop_index("uq_migrations_one_active", table_name="migrations")
    op.create_index(
        "uq_migrations_one_active",
        "migrations",
        ["app"],
        unique=True,
        sqlite_where=sa.text(one_active),
        postgresql_where=sa.text(one_active),
    )
    op.create_index(
        "uq_migrations_idempotency",
        "migrations",
        ["idempotency_key"],
        unique=True,
        sqlite_where=sa.text(idempotency),
        postgresql_where=sa.text(idempotency),
    )


def upgrade() -> None:
    """Count ``prepared`` as active (one per app) and as holding its idempotency key."""
    _recreate(_AFTER)


def downgrade() -> None:
    """Back to the phase sets of 0003 (a ``prepared`` row then escapes both rules)."""
    _recreate(_BEFORE)
