"""model versions: source kind (package | external) and the run id given for a run not stored here

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 23:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every existing version was registered from a verified package: the default says so.
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("source_kind", sa.String(length=20), server_default="package", nullable=False)
        )
        batch_op.add_column(sa.Column("run_ref", sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.drop_column("run_ref")
        batch_op.drop_column("source_kind")
