"""Azure notices seen by the webhook (dedupe + dispatch status).

Revision ID: 0002_notices
Revises: 0001_initial
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_notices"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the notices table (modelshift/notices/store.py::NoticeRow)."""
    op.create_table(
        "notices",
        sa.Column("key", sa.String(310), nullable=False),
        sa.Column("notice_id", sa.String(36), nullable=False),
        sa.Column("tracking_id", sa.String(100), nullable=True),
        sa.Column("stage", sa.String(100), nullable=True),
        sa.Column("communication_id", sa.String(100), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("received_at", _TIME, nullable=False),
        sa.Column("claimed_at", _TIME, nullable=False),
        sa.Column("dispatched_at", _TIME, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_notices"),
    )


def downgrade() -> None:
    """Drop the notices table."""
    op.drop_table("notices")
