"""Fine-tuning re-runs (modelshift/finetune/records.py::FineTuneJobRow), one row per idempotency key.

Revision ID: 0004_finetune_jobs
Revises: 0003_migrations
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_finetune_jobs"
down_revision: str | None = "0003_migrations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the finetune_jobs table and its lookup index by migration."""
    op.create_table(
        "finetune_jobs",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("migration_id", sa.String(200), nullable=False),
        sa.Column("app", sa.String(200), nullable=False),
        sa.Column("target_model", sa.String(200), nullable=False),
        sa.Column("training_sha256", sa.String(64), nullable=False),
        sa.Column("validation_sha256", sa.String(64), nullable=True),
        sa.Column("hyperparameters", sa.JSON(), nullable=False),
        sa.Column("suffix", sa.String(40), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=True),
        sa.Column("training_file_id", sa.String(200), nullable=True),
        sa.Column("validation_file_id", sa.String(200), nullable=True),
        sa.Column("job_id", sa.String(200), nullable=True),
        sa.Column("phase", sa.String(32), nullable=False),
        sa.Column("job_status", sa.String(32), nullable=True),
        sa.Column("fine_tuned_model", sa.String(300), nullable=True),
        sa.Column("deployment_name", sa.String(64), nullable=True),
        sa.Column("last_event_id", sa.String(200), nullable=True),
        sa.Column("error_code", sa.String(200), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.Column("finished_at", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("key", name="pk_finetune_jobs"),
    )
    op.create_index("ix_finetune_jobs_migration_id", "finetune_jobs", ["migration_id"])


def downgrade() -> None:
    """Drop the finetune_jobs table."""
    op.drop_index("ix_finetune_jobs_migration_id", table_name="finetune_jobs")
    op.drop_table("finetune_jobs")
