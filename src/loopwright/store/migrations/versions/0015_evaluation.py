"""eval_datasets, eval_dataset_tags, eval_dataset_experiments, scorer_versions, judge_agreements,
evaluation_runs (issue 19, builder E)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 18:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def _fk(column: str, target: str, name: str, ondelete: str = "CASCADE") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [target], name=op.f(name), ondelete=ondelete)


def upgrade() -> None:
    op.create_table(
        "eval_datasets",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("dataset_id", sa.String(length=32), nullable=False),
        sa.Column("version_id", sa.String(length=32), nullable=True),
        sa.Column("schema_json", sa.Text(), nullable=True),
        sa.Column("profile_json", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=True),
        sa.Column("last_updated_by", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        _fk("dataset_id", "datasets.id", "fk_eval_datasets_dataset_id_datasets"),
        _fk(
            "version_id",
            "dataset_versions.id",
            "fk_eval_datasets_version_id_dataset_versions",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_eval_datasets")),
        sa.UniqueConstraint("name", name=op.f("uq_eval_datasets_name")),
    )
    op.create_table(
        "eval_dataset_tags",
        sa.Column("eval_dataset_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        _fk(
            "eval_dataset_id",
            "eval_datasets.id",
            "fk_eval_dataset_tags_eval_dataset_id_eval_datasets",
        ),
        sa.PrimaryKeyConstraint("eval_dataset_id", "key", name=op.f("pk_eval_dataset_tags")),
    )
    op.create_table(
        "eval_dataset_experiments",
        sa.Column("eval_dataset_id", sa.String(length=32), nullable=False),
        sa.Column("experiment_id", sa.String(length=32), nullable=False),
        _fk(
            "eval_dataset_id",
            "eval_datasets.id",
            "fk_eval_dataset_experiments_eval_dataset_id_eval_datasets",
        ),
        _fk(
            "experiment_id",
            "experiments.id",
            "fk_eval_dataset_experiments_experiment_id_experiments",
        ),
        sa.PrimaryKeyConstraint(
            "eval_dataset_id", "experiment_id", name=op.f("pk_eval_dataset_experiments")
        ),
    )
    op.create_table(
        "scorer_versions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("scope", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("reference", sa.String(length=500), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("config_json", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("approval_requested_by", sa.String(length=200), nullable=True),
        sa.Column("approval_requested_at", sa.BigInteger(), nullable=True),
        sa.Column("approved_by", sa.String(length=200), nullable=True),
        sa.Column("approved_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scorer_versions")),
        sa.UniqueConstraint(
            "scope", "name", "version", name=op.f("uq_scorer_versions_scope_name_version")
        ),
    )
    op.create_index(
        op.f("ix_scorer_versions_scope_name_digest"),
        "scorer_versions",
        ["scope", "name", "digest"],
        unique=False,
    )
    op.create_table(
        "judge_agreements",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("scorer_version_id", sa.String(length=32), nullable=False),
        sa.Column("dataset_version_id", sa.String(length=32), nullable=False),
        sa.Column("label", sa.String(length=250), nullable=False),
        sa.Column("metrics_json", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        _fk(
            "scorer_version_id",
            "scorer_versions.id",
            "fk_judge_agreements_scorer_version_id_scorer_versions",
        ),
        _fk(
            "dataset_version_id",
            "dataset_versions.id",
            "fk_judge_agreements_dataset_version_id_dataset_versions",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_judge_agreements")),
    )
    op.create_index(
        op.f("ix_judge_agreements_scorer_version_id_created_at"),
        "judge_agreements",
        ["scorer_version_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "evaluation_runs",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("dataset_version_id", sa.String(length=32), nullable=True),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("target", sa.String(length=500), nullable=False),
        sa.Column("scorers_json", sa.Text(), nullable=False),
        sa.Column("aggregates_json", sa.Text(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("failed_rows", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        _fk("run_id", "runs.id", "fk_evaluation_runs_run_id_runs"),
        _fk(
            "dataset_version_id",
            "dataset_versions.id",
            "fk_evaluation_runs_dataset_version_id_dataset_versions",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_evaluation_runs")),
    )
    op.create_index(
        op.f("ix_evaluation_runs_dataset_version_id"),
        "evaluation_runs",
        ["dataset_version_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_evaluation_runs_dataset_version_id"), table_name="evaluation_runs")
    op.drop_table("evaluation_runs")
    op.drop_index(
        op.f("ix_judge_agreements_scorer_version_id_created_at"), table_name="judge_agreements"
    )
    op.drop_table("judge_agreements")
    op.drop_index(op.f("ix_scorer_versions_scope_name_digest"), table_name="scorer_versions")
    op.drop_table("scorer_versions")
    op.drop_table("eval_dataset_experiments")
    op.drop_table("eval_dataset_tags")
    op.drop_table("eval_datasets")
