"""registry: approval policy, model card text, package hash, request rule

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 02:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("registered_models", schema=None) as batch_op:
        batch_op.add_column(sa.Column("approval_policy_json", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("card_json", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("created_by", sa.String(length=200), nullable=True))
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("package_hash", sa.String(length=64), nullable=True))
    with op.batch_alter_table("approval_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rule_json", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("approval_requests", schema=None) as batch_op:
        batch_op.drop_column("rule_json")
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.drop_column("package_hash")
    with op.batch_alter_table("registered_models", schema=None) as batch_op:
        batch_op.drop_column("created_by")
        batch_op.drop_column("card_json")
        batch_op.drop_column("approval_policy_json")
