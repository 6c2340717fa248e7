"""data validation and version source

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 01:02:16.734142
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "validation_suites",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("definition_json", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_validation_suites")),
        sa.UniqueConstraint(
            "name", "content_hash", name=op.f("uq_validation_suites_name_content_hash")
        ),
        sa.UniqueConstraint("name", "version", name=op.f("uq_validation_suites_name_version")),
    )
    op.create_table(
        "validation_results",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("dataset_version_id", sa.String(length=32), nullable=False),
        sa.Column("suite_id", sa.String(length=32), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("result_json", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_version_id"],
            ["dataset_versions.id"],
            name=op.f("fk_validation_results_dataset_version_id_dataset_versions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["suite_id"],
            ["validation_suites.id"],
            name=op.f("fk_validation_results_suite_id_validation_suites"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_validation_results")),
    )
    with op.batch_alter_table("validation_results", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_validation_results_dataset_version_id_created_at"),
            ["dataset_version_id", "created_at"],
            unique=False,
        )

    with op.batch_alter_table("dataset_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dataset_versions", schema=None) as batch_op:
        batch_op.drop_column("source")

    with op.batch_alter_table("validation_results", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_validation_results_dataset_version_id_created_at"))

    op.drop_table("validation_results")
    op.drop_table("validation_suites")
