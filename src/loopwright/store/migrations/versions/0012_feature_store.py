"""feature_definitions, feature_materializations

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 11:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feature_definitions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("spec_json", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feature_definitions")),
        sa.UniqueConstraint(
            "kind", "name", "version", name=op.f("uq_feature_definitions_kind_name_version")
        ),
    )
    op.create_index(
        op.f("ix_feature_definitions_kind_name_digest"),
        "feature_definitions",
        ["kind", "name", "digest"],
        unique=False,
    )
    op.create_table(
        "feature_materializations",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("view", sa.String(length=200), nullable=False),
        sa.Column("view_version", sa.Integer(), nullable=False),
        sa.Column("store", sa.String(length=300), nullable=False),
        sa.Column("mode", sa.String(length=20), nullable=False),
        sa.Column("start_at", sa.BigInteger(), nullable=True),
        sa.Column("end_at", sa.BigInteger(), nullable=True),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("newest_event_at", sa.BigInteger(), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feature_materializations")),
    )
    op.create_index(
        op.f("ix_feature_materializations_view_store_created_at"),
        "feature_materializations",
        ["view", "store", "created_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_feature_materializations_view_store_created_at"),
        table_name="feature_materializations",
    )
    op.drop_table("feature_materializations")
    op.drop_index(op.f("ix_feature_definitions_kind_name_digest"), table_name="feature_definitions")
    op.drop_table("feature_definitions")
