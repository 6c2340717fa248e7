"""MLflow compatibility: logged models, run model links, external datasets, MLflow versions

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _fk(table: str, column: str, target: str, ondelete: str = "CASCADE") -> sa.ForeignKeyConstraint:
    referred = target.partition(".")[0]
    return sa.ForeignKeyConstraint(
        [column], [target], name=op.f(f"fk_{table}_{column}_{referred}"), ondelete=ondelete
    )


def upgrade() -> None:
    op.create_table(
        "logged_models",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("experiment_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("source_run_id", sa.String(length=32), nullable=True),
        sa.Column("model_type", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("status_message", sa.Text(), nullable=True),
        sa.Column("lifecycle_stage", sa.String(length=20), server_default="active", nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        _fk("logged_models", "experiment_id", "experiments.id"),
        _fk("logged_models", "source_run_id", "runs.id", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_logged_models")),
    )
    with op.batch_alter_table("logged_models", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_logged_models_experiment_id_created_at"),
            ["experiment_id", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_logged_models_source_run_id"), ["source_run_id"], unique=False
        )

    op.create_table(
        "logged_model_tags",
        sa.Column("model_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        _fk("logged_model_tags", "model_id", "logged_models.id"),
        sa.PrimaryKeyConstraint("model_id", "key", name=op.f("pk_logged_model_tags")),
    )
    op.create_table(
        "logged_model_params",
        sa.Column("model_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        _fk("logged_model_params", "model_id", "logged_models.id"),
        sa.PrimaryKeyConstraint("model_id", "key", name=op.f("pk_logged_model_params")),
    )
    op.create_table(
        "logged_model_metrics",
        sa.Column("model_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("is_nan", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=True),
        sa.Column("dataset_name", sa.String(length=500), nullable=True),
        sa.Column("dataset_digest", sa.String(length=36), nullable=True),
        _fk("logged_model_metrics", "model_id", "logged_models.id"),
        _fk("logged_model_metrics", "run_id", "runs.id", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint(
            "model_id",
            "key",
            "step",
            "timestamp",
            "value",
            "is_nan",
            name=op.f("pk_logged_model_metrics"),
        ),
    )
    op.create_table(
        "run_logged_models",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("model_id", sa.String(length=32), nullable=False),
        sa.Column("direction", sa.String(length=10), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        _fk("run_logged_models", "run_id", "runs.id"),
        _fk("run_logged_models", "model_id", "logged_models.id"),
        sa.PrimaryKeyConstraint(
            "run_id", "model_id", "direction", name=op.f("pk_run_logged_models")
        ),
    )
    with op.batch_alter_table("run_logged_models", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_run_logged_models_model_id"), ["model_id"], unique=False
        )

    op.create_table(
        "run_external_datasets",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("digest", sa.String(length=36), nullable=False),
        sa.Column("source_type", sa.String(length=100), nullable=True),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("schema_json", sa.Text(), nullable=True),
        sa.Column("profile_json", sa.Text(), nullable=True),
        sa.Column("tags_json", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        _fk("run_external_datasets", "run_id", "runs.id"),
        sa.PrimaryKeyConstraint("run_id", "name", "digest", name=op.f("pk_run_external_datasets")),
    )
    op.create_table(
        "mlflow_model_versions",
        sa.Column("version_id", sa.String(length=32), nullable=False),
        sa.Column("logged_model_id", sa.String(length=32), nullable=True),
        sa.Column("source_uri", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        _fk("mlflow_model_versions", "version_id", "model_versions.id"),
        _fk("mlflow_model_versions", "logged_model_id", "logged_models.id", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("version_id", name=op.f("pk_mlflow_model_versions")),
    )
    with op.batch_alter_table("mlflow_model_versions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_mlflow_model_versions_logged_model_id"),
            ["logged_model_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("mlflow_model_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mlflow_model_versions_logged_model_id"))
    op.drop_table("mlflow_model_versions")
    op.drop_table("run_external_datasets")
    with op.batch_alter_table("run_logged_models", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_run_logged_models_model_id"))
    op.drop_table("run_logged_models")
    op.drop_table("logged_model_metrics")
    op.drop_table("logged_model_params")
    op.drop_table("logged_model_tags")
    with op.batch_alter_table("logged_models", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_logged_models_source_run_id"))
        batch_op.drop_index(batch_op.f("ix_logged_models_experiment_id_created_at"))
    op.drop_table("logged_models")
