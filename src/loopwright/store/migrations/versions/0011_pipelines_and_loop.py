"""pipeline_runs, step_runs, gate_results, schedules, schedule_fires, loops, loop_iterations,
loop_transitions

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 08:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "loops",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("deployment", sa.String(length=100), nullable=False),
        sa.Column("model", sa.String(length=256), nullable=False),
        sa.Column("pipeline", sa.String(length=300), nullable=False),
        sa.Column("spec_json", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loops")),
        sa.UniqueConstraint("name", name=op.f("uq_loops_name")),
    )
    op.create_table(
        "schedules",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=150), nullable=False),
        sa.Column("target_kind", sa.String(length=20), nullable=False),
        sa.Column("target", sa.String(length=300), nullable=False),
        sa.Column("trigger", sa.String(length=600), nullable=False),
        sa.Column("params_json", sa.Text(), nullable=False),
        sa.Column("cwd", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("next_fire_at", sa.BigInteger(), nullable=True),
        sa.Column("last_fired_at", sa.BigInteger(), nullable=True),
        sa.Column("cursor", sa.String(length=200), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedules")),
        sa.UniqueConstraint("name", name=op.f("uq_schedules_name")),
    )
    op.create_table(
        "pipeline_runs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("pipeline", sa.String(length=300), nullable=False),
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=True),
        sa.Column("params_json", sa.Text(), nullable=False),
        sa.Column("executor", sa.String(length=50), nullable=False),
        sa.Column("resumed_from", sa.String(length=32), nullable=True),
        sa.Column("code_digest", sa.String(length=64), nullable=False),
        sa.Column("result_json", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("heartbeat_at", sa.BigInteger(), nullable=False),
        sa.Column("finished_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["resumed_from"],
            ["pipeline_runs.id"],
            name=op.f("fk_pipeline_runs_resumed_from_pipeline_runs"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_pipeline_runs_run_id_runs"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipeline_runs")),
    )
    op.create_index(
        op.f("ix_pipeline_runs_pipeline_started_at"),
        "pipeline_runs",
        ["pipeline", "started_at"],
        unique=False,
    )
    op.create_index(op.f("ix_pipeline_runs_status"), "pipeline_runs", ["status"], unique=False)
    op.create_table(
        "gate_results",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("gate", sa.String(length=100), nullable=False),
        sa.Column("model_version_id", sa.String(length=32), nullable=False),
        sa.Column("dataset_version_id", sa.String(length=32), nullable=True),
        sa.Column("dataset", sa.String(length=600), nullable=False),
        sa.Column("champion_version", sa.Integer(), nullable=True),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("outcomes_json", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("spec_json", sa.Text(), nullable=False),
        sa.Column("pipeline_run_id", sa.String(length=32), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_version_id"],
            ["dataset_versions.id"],
            name=op.f("fk_gate_results_dataset_version_id_dataset_versions"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
            name=op.f("fk_gate_results_model_version_id_model_versions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["pipeline_run_id"],
            ["pipeline_runs.id"],
            name=op.f("fk_gate_results_pipeline_run_id_pipeline_runs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gate_results")),
    )
    op.create_index(
        op.f("ix_gate_results_model_version_id_created_at"),
        "gate_results",
        ["model_version_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "schedule_fires",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("schedule_id", sa.String(length=32), nullable=False),
        sa.Column("event_key", sa.String(length=200), nullable=False),
        sa.Column("due_at", sa.BigInteger(), nullable=False),
        sa.Column("fired_at", sa.BigInteger(), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("pipeline_run_id", sa.String(length=32), nullable=True),
        sa.Column("iteration_id", sa.String(length=32), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("finished_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["pipeline_run_id"],
            ["pipeline_runs.id"],
            name=op.f("fk_schedule_fires_pipeline_run_id_pipeline_runs"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["schedules.id"],
            name=op.f("fk_schedule_fires_schedule_id_schedules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedule_fires")),
        sa.UniqueConstraint(
            "schedule_id", "event_key", name=op.f("uq_schedule_fires_schedule_id_event_key")
        ),
    )
    op.create_index(
        op.f("ix_schedule_fires_schedule_id_fired_at"),
        "schedule_fires",
        ["schedule_id", "fired_at"],
        unique=False,
    )
    op.create_table(
        "step_runs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("pipeline_run_id", sa.String(length=32), nullable=False),
        sa.Column("invocation", sa.String(length=250), nullable=False),
        sa.Column("step", sa.String(length=250), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("cache_key", sa.String(length=64), nullable=False),
        sa.Column("cache_reason", sa.Text(), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=True),
        sa.Column("cached_from", sa.String(length=32), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("inputs_json", sa.Text(), nullable=False),
        sa.Column("outputs_json", sa.Text(), nullable=False),
        sa.Column("key_parts_json", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("finished_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["cached_from"],
            ["step_runs.id"],
            name=op.f("fk_step_runs_cached_from_step_runs"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["pipeline_run_id"],
            ["pipeline_runs.id"],
            name=op.f("fk_step_runs_pipeline_run_id_pipeline_runs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_step_runs_run_id_runs"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_step_runs")),
    )
    op.create_index(
        op.f("ix_step_runs_cache_key_status"), "step_runs", ["cache_key", "status"], unique=False
    )
    op.create_index(
        op.f("ix_step_runs_pipeline_run_id_started_at"),
        "step_runs",
        ["pipeline_run_id", "started_at"],
        unique=False,
    )
    op.create_table(
        "loop_iterations",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("loop_id", sa.String(length=32), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=30), nullable=False),
        sa.Column("in_flight", sa.String(length=32), nullable=True),
        sa.Column("trigger", sa.String(length=600), nullable=False),
        sa.Column("trigger_detail", sa.Text(), nullable=True),
        sa.Column("pipeline_run_id", sa.String(length=32), nullable=True),
        sa.Column("model_version_id", sa.String(length=32), nullable=True),
        sa.Column("model_version", sa.Integer(), nullable=True),
        sa.Column("gate_result_id", sa.String(length=32), nullable=True),
        sa.Column("approval_request_id", sa.String(length=32), nullable=True),
        sa.Column("canary_revision", sa.Integer(), nullable=True),
        sa.Column("canary_started_at", sa.BigInteger(), nullable=True),
        sa.Column("comparison_json", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("lease_owner", sa.String(length=200), nullable=True),
        sa.Column("lease_until", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("finished_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["gate_result_id"],
            ["gate_results.id"],
            name=op.f("fk_loop_iterations_gate_result_id_gate_results"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["loop_id"],
            ["loops.id"],
            name=op.f("fk_loop_iterations_loop_id_loops"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
            name=op.f("fk_loop_iterations_model_version_id_model_versions"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["pipeline_run_id"],
            ["pipeline_runs.id"],
            name=op.f("fk_loop_iterations_pipeline_run_id_pipeline_runs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loop_iterations")),
        sa.UniqueConstraint("in_flight", name=op.f("uq_loop_iterations_in_flight")),
        sa.UniqueConstraint("loop_id", "number", name=op.f("uq_loop_iterations_loop_id_number")),
    )
    op.create_index(
        op.f("ix_loop_iterations_model_version_id"),
        "loop_iterations",
        ["model_version_id"],
        unique=False,
    )
    op.create_table(
        "loop_transitions",
        sa.Column("iteration_id", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("from_state", sa.String(length=30), nullable=True),
        sa.Column("to_state", sa.String(length=30), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["iteration_id"],
            ["loop_iterations.id"],
            name=op.f("fk_loop_transitions_iteration_id_loop_iterations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("iteration_id", "seq", name=op.f("pk_loop_transitions")),
    )


def downgrade() -> None:
    op.drop_table("loop_transitions")
    op.drop_index(op.f("ix_loop_iterations_model_version_id"), table_name="loop_iterations")
    op.drop_table("loop_iterations")
    op.drop_index(op.f("ix_step_runs_pipeline_run_id_started_at"), table_name="step_runs")
    op.drop_index(op.f("ix_step_runs_cache_key_status"), table_name="step_runs")
    op.drop_table("step_runs")
    op.drop_index(op.f("ix_schedule_fires_schedule_id_fired_at"), table_name="schedule_fires")
    op.drop_table("schedule_fires")
    op.drop_index(op.f("ix_gate_results_model_version_id_created_at"), table_name="gate_results")
    op.drop_table("gate_results")
    op.drop_index(op.f("ix_pipeline_runs_status"), table_name="pipeline_runs")
    op.drop_index(op.f("ix_pipeline_runs_pipeline_started_at"), table_name="pipeline_runs")
    op.drop_table("pipeline_runs")
    op.drop_table("schedules")
    op.drop_table("loops")
