"""experiments: artifact_location (a local folder the server allows; NULL: served by the server)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 23:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing experiments keep their artifacts in the blob store: NULL says so.
    with op.batch_alter_table("experiments") as batch:
        batch.add_column(sa.Column("artifact_location", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.drop_column("artifact_location")
