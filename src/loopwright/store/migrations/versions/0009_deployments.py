"""deployments, deployment_revisions, deployment_instances; existing models keep their policy

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 01:30:00.000000
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# The default approval policy before this revision. A NULL policy reads as the current default,
# which now also protects live traffic; models created before keep the rules they were created
# under, so their NULL is written out as the old default.
_OLD_DEFAULT = json.dumps(
    {
        "rules": [
            {"target": "stage:Production", "approvals": 1, "role": "approver"},
            {"target": "alias:champion", "approvals": 1, "role": "approver"},
        ],
        "expires_after_s": 7 * 24 * 3600,
    }
)


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("strategy", sa.String(length=20), nullable=False),
        sa.Column("policy_json", sa.Text(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployments")),
        sa.UniqueConstraint("name", name=op.f("uq_deployments_name")),
    )
    op.create_table(
        "deployment_revisions",
        sa.Column("deployment_id", sa.String(length=32), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("strategy", sa.String(length=20), nullable=False),
        sa.Column("policy_json", sa.Text(), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name=op.f("fk_deployment_revisions_deployment_id_deployments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("deployment_id", "revision", name=op.f("pk_deployment_revisions")),
    )
    op.create_table(
        "deployment_instances",
        sa.Column("deployment_id", sa.String(length=32), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("seen_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name=op.f("fk_deployment_instances_deployment_id_deployments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("deployment_id", "url", name=op.f("pk_deployment_instances")),
    )
    models = sa.table("registered_models", sa.column("approval_policy_json", sa.Text()))
    op.execute(
        models.update()
        .where(models.c.approval_policy_json.is_(None))
        .values(approval_policy_json=_OLD_DEFAULT)
    )


def downgrade() -> None:
    op.drop_table("deployment_instances")
    op.drop_table("deployment_revisions")
    op.drop_table("deployments")
