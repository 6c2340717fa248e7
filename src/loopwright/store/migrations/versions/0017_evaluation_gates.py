"""gate results of evaluation gates: on a prompt version (prompt_version_id) or a model version
(model_version_id now nullable), with the evaluation run and its evidence (issue 19, builder L)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 18:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with _iteration_links_kept(), op.batch_alter_table("gate_results", schema=None) as batch_op:
        batch_op.alter_column("model_version_id", existing_type=sa.String(length=32), nullable=True)
        batch_op.add_column(sa.Column("prompt_version_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("evaluation_run_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("evidence_json", sa.Text(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_gate_results_prompt_version_id_prompt_versions"),
            "prompt_versions",
            ["prompt_version_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_gate_results_evaluation_run_id_runs"),
            "runs",
            ["evaluation_run_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_index(
            batch_op.f("ix_gate_results_prompt_version_id_created_at"),
            ["prompt_version_id", "created_at"],
            unique=False,
        )


def downgrade() -> None:
    op.execute("DELETE FROM gate_results WHERE model_version_id IS NULL")
    with _iteration_links_kept(), op.batch_alter_table("gate_results", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gate_results_prompt_version_id_created_at"))
        batch_op.drop_constraint(
            batch_op.f("fk_gate_results_evaluation_run_id_runs"), type_="foreignkey"
        )
        batch_op.drop_constraint(
            batch_op.f("fk_gate_results_prompt_version_id_prompt_versions"),
            type_="foreignkey",
        )
        batch_op.drop_column("evidence_json")
        batch_op.drop_column("evaluation_run_id")
        batch_op.drop_column("prompt_version_id")
        batch_op.alter_column(
            "model_version_id", existing_type=sa.String(length=32), nullable=False
        )


class _iteration_links_kept:
    """Keep loop_iterations.gate_result_id through a SQLite table rebuild of gate_results.

    SQLite rebuilds the table to change a column (copy, DROP, rename); with foreign keys on,
    the DROP sets every iteration's gate_result_id to NULL (ON DELETE SET NULL). The links are
    copied aside and put back, as 0013 does for approval decisions. PostgreSQL alters in place.
    """

    def __enter__(self) -> None:
        self.sqlite = op.get_bind().dialect.name == "sqlite"
        if self.sqlite:
            op.execute(
                "CREATE TEMP TABLE kept_gate_links AS SELECT id, gate_result_id "
                "FROM loop_iterations WHERE gate_result_id IS NOT NULL"
            )

    def __exit__(self, *exc: object) -> None:
        if self.sqlite and exc[0] is None:
            op.execute(
                "UPDATE loop_iterations SET gate_result_id = (SELECT k.gate_result_id FROM "
                "kept_gate_links k WHERE k.id = loop_iterations.id) "
                "WHERE id IN (SELECT id FROM kept_gate_links)"
            )
            op.execute("DROP TABLE kept_gate_links")
