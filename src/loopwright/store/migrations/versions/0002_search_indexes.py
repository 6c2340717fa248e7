"""covering indexes for run search

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 00:00:00.000000

Run search compares (key, value) and needs only run_id back, so these indexes answer its
subqueries without touching the tables. On PostgreSQL the params and run_tags indexes are partial:
a B-tree entry must stay under ~2.7 kB, and a long param or tag value must never make a write fail.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_TEXT_TABLES = ("params", "run_tags")


def upgrade() -> None:
    for table in _TEXT_TABLES:
        op.create_index(
            op.f(f"ix_{table}_key_value_run_id"),
            table,
            ["key", "value", "run_id"],
            unique=False,
            postgresql_where=sa.text("octet_length(value) <= 1000"),
        )
    op.create_index(
        op.f("ix_latest_metrics_key_value_is_nan_run_id"),
        "latest_metrics",
        ["key", "value", "is_nan", "run_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_latest_metrics_key_value_is_nan_run_id"), table_name="latest_metrics")
    for table in _TEXT_TABLES:
        op.drop_index(op.f(f"ix_{table}_key_value_run_id"), table_name=table)
