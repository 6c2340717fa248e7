"""monitor_references, monitors, monitor_runs, monitor_results, ground_truth, alerts

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 05:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _fk(name: str, column: str, table: str, ondelete: str = "CASCADE") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{table}.id"], name=op.f(f"fk_{name}_{column}_{table}"), ondelete=ondelete
    )


def upgrade() -> None:
    op.create_table(
        "monitor_references",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("source", sa.String(length=600), nullable=False),
        sa.Column("dataset_version_id", sa.String(length=32), nullable=True),
        sa.Column("model_version_id", sa.String(length=32), nullable=True),
        sa.Column("sketch_blob", sa.String(length=64), nullable=False),
        sa.Column("columns_json", sa.Text(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        _fk("monitor_references", "dataset_version_id", "dataset_versions", "SET NULL"),
        _fk("monitor_references", "model_version_id", "model_versions", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_references")),
        sa.UniqueConstraint("name", name=op.f("uq_monitor_references_name")),
    )
    op.create_table(
        "monitors",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("deployment", sa.String(length=100), nullable=False),
        sa.Column("reference_spec", sa.String(length=600), nullable=False),
        sa.Column("reference_id", sa.String(length=32), nullable=True),
        sa.Column("spec_json", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("last_run_at", sa.BigInteger(), nullable=True),
        _fk("monitors", "reference_id", "monitor_references", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitors")),
        sa.UniqueConstraint("name", name=op.f("uq_monitors_name")),
    )
    op.create_index(op.f("ix_monitors_deployment"), "monitors", ["deployment"])
    op.create_table(
        "monitor_runs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("monitor_id", sa.String(length=32), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("finished_at", sa.BigInteger(), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("window_end", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("dataset_drift", sa.Boolean(), nullable=True),
        sa.Column("summary_json", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        _fk("monitor_runs", "monitor_id", "monitors"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_runs")),
    )
    op.create_index(
        op.f("ix_monitor_runs_monitor_id_window_end"), "monitor_runs", ["monitor_id", "window_end"]
    )
    op.create_table(
        "monitor_results",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("monitor_id", sa.String(length=32), nullable=False),
        sa.Column("column_name", sa.String(length=250), nullable=False),
        sa.Column("test", sa.String(length=50), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("statistic", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("p_value", sa.Float(), nullable=True),
        sa.Column("drifted", sa.Boolean(), nullable=False),
        sa.Column("window_end", sa.BigInteger(), nullable=False),
        _fk("monitor_results", "run_id", "monitor_runs"),
        _fk("monitor_results", "monitor_id", "monitors"),
        sa.PrimaryKeyConstraint("run_id", "column_name", "test", name=op.f("pk_monitor_results")),
    )
    op.create_index(
        op.f("ix_monitor_results_monitor_id_column_name_test_window_end"),
        "monitor_results",
        ["monitor_id", "column_name", "test", "window_end"],
    )
    op.create_table(
        "ground_truth",
        sa.Column("deployment", sa.String(length=100), nullable=False),
        sa.Column("request_id", sa.String(length=200), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("label_json", sa.Text(), nullable=False),
        sa.Column("logged_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("deployment", "request_id", "row", name=op.f("pk_ground_truth")),
    )
    op.create_index(
        op.f("ix_ground_truth_deployment_logged_at"), "ground_truth", ["deployment", "logged_at"]
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("monitor_id", sa.String(length=32), nullable=False),
        sa.Column("rule_key", sa.String(length=400), nullable=False),
        sa.Column("open_key", sa.String(length=400), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("occurrences", sa.Integer(), nullable=False),
        sa.Column("first_run_id", sa.String(length=32), nullable=True),
        sa.Column("last_run_id", sa.String(length=32), nullable=True),
        sa.Column("opened_at", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_at", sa.BigInteger(), nullable=False),
        sa.Column("resolved_at", sa.BigInteger(), nullable=True),
        sa.Column("delivery_json", sa.Text(), nullable=True),
        _fk("alerts", "monitor_id", "monitors"),
        _fk("alerts", "first_run_id", "monitor_runs", "SET NULL"),
        _fk("alerts", "last_run_id", "monitor_runs", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("monitor_id", "open_key", name=op.f("uq_alerts_monitor_id_open_key")),
    )
    op.create_index(op.f("ix_alerts_monitor_id_status"), "alerts", ["monitor_id", "status"])


def downgrade() -> None:
    for table in (
        "alerts",
        "ground_truth",
        "monitor_results",
        "monitor_runs",
        "monitors",
        "monitor_references",
    ):
        op.drop_table(table)
