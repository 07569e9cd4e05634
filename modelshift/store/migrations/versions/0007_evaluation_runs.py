"""Evaluation runs (the baseline cache) and per-item results (modelshift/evaluation/records.py).

Revision ID: 0007_evaluation_runs
Revises: 0006_migration_prepared
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_evaluation_runs"
down_revision: str | None = "0006_migration_prepared"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DIGEST = sa.String(100)


def upgrade() -> None:
    """Create evaluation_runs (unique per bundle, dataset and evaluator version) and evaluation_items."""
    op.create_table(
        "evaluation_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("bundle_digest", _DIGEST, nullable=False),
        sa.Column("dataset_digest", _DIGEST, nullable=False),
        sa.Column("evaluator_version", sa.String(64), nullable=False),
        sa.Column("outcomes", sa.JSON(), nullable=False),
        sa.Column("stats", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_evaluation_runs"),
        sa.UniqueConstraint(
            "bundle_digest",
            "dataset_digest",
            "evaluator_version",
            name="uq_evaluation_runs_key",
        ),
    )
    op.create_table(
        "evaluation_items",
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("side", sa.String(16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.String(200), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["evaluation_records.id"],
            name="fk_evaluation_items_record_id_evaluation_records",
        ),
        sa.PrimaryKeyConstraint("record_id", "side", "position", name="pk_evaluation_items"),
    )


def downgrade() -> None:
    """Drop both tables."""
    op.drop_table("evaluation_items")
    op.drop_table("evaluation_runs")
