"""The ``evaluated`` migration phase: it is active and holds its idempotency key, so the two partial unique
indexes are recreated with it in their WHERE clauses (as 0006 did for ``prepared``).

Revision ID: 0008_migration_evaluated
Revises: 0007_evaluation_runs
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_migration_evaluated"
down_revision: str | None = "0007_evaluation_runs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the phase sets at this revision (a later phase needs a new migration that recreates them).
_BEFORE = (
    "'assessing', 'canary', 'evaluating', 'pending', 'planned', 'prepared', 'preparing', 'promoting', "
    "'rolling_back'"
)
_AFTER = (
    "'assessing', 'canary', 'evaluated', 'evaluating', 'pending', 'planned', 'prepared', 'preparing', "
    "'promoting', 'rolling_back'"
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
    """Count ``evaluated`` as active (one per app) and as holding its idempotency key."""
    _recreate(_AFTER)


def downgrade() -> None:
    """Back to the phase sets of 0007 (an ``evaluated`` row then escapes both rules)."""
    _recreate(_BEFORE)
