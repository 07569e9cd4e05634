"""Gateway request metrics (modelshift/gateway/metrics.py::RequestMetricRow), one row per request.

Revision ID: 0005_request_metrics
Revises: 0004_finetune_jobs
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_request_metrics"
down_revision: str | None = "0004_finetune_jobs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the request_metrics table and its (app, started_at) window index."""
    op.create_table(
        "request_metrics",
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("app", sa.String(200), nullable=False),
        sa.Column("bundle_digest", sa.String(100), nullable=True),
        sa.Column("started_at", _TIME, nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("error_class", sa.String(100), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("user_key_hash", sa.String(32), nullable=True),
        sa.Column("feedback", sa.Float(), nullable=True),
        sa.Column("feedback_at", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("request_id", name="pk_request_metrics"),
    )
    op.create_index("ix_request_metrics_app_started_at", "request_metrics", ["app", "started_at"])


def downgrade() -> None:
    """Drop the request_metrics table."""
    op.drop_index("ix_request_metrics_app_started_at", table_name="request_metrics")
    op.drop_table("request_metrics")
