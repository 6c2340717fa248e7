"""traces, trace_tags, trace_metadata, spans, trace_links, assessments (issue 19, builder T)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 18:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def _trace_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["trace_id"],
        ["traces.trace_id"],
        name=op.f(f"fk_{table}_trace_id_traces"),
        ondelete="CASCADE",
    )


def _trace_id() -> sa.Column[str]:
    return sa.Column("trace_id", sa.String(length=32), nullable=False)


def upgrade() -> None:
    op.create_table(
        "traces",
        sa.Column("trace_id", sa.String(length=32), nullable=False),
        sa.Column("experiment_id", sa.String(length=32), nullable=True),
        sa.Column("request_time", sa.BigInteger(), nullable=False),
        sa.Column("duration_ms", sa.BigInteger(), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("request_preview", sa.Text(), nullable=False),
        sa.Column("response_preview", sa.Text(), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=True),
        sa.Column("output_tokens", sa.BigInteger(), nullable=True),
        sa.Column("cost_usd", sa.Float(), nullable=True),
        sa.Column("span_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_traces_experiment_id_experiments"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("trace_id", name=op.f("pk_traces")),
    )
    op.create_index(
        op.f("ix_traces_experiment_id_request_time"), "traces", ["experiment_id", "request_time"]
    )
    op.create_index(op.f("ix_traces_request_time"), "traces", ["request_time"])
    for name in ("trace_tags", "trace_metadata"):
        op.create_table(
            name,
            _trace_id(),
            sa.Column("key", sa.String(length=250), nullable=False),
            sa.Column("value", sa.Text(), nullable=False),
            _trace_fk(name),
            sa.PrimaryKeyConstraint("trace_id", "key", name=op.f(f"pk_{name}")),
        )
    op.create_table(
        "spans",
        _trace_id(),
        sa.Column("span_id", sa.String(length=16), nullable=False),
        sa.Column("parent_id", sa.String(length=16), nullable=True),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("start_ns", sa.BigInteger(), nullable=False),
        sa.Column("end_ns", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("status_message", sa.Text(), nullable=False),
        sa.Column("attributes_json", sa.Text(), nullable=False),
        sa.Column("events_json", sa.Text(), nullable=False),
        _trace_fk("spans"),
        sa.PrimaryKeyConstraint("trace_id", "span_id", name=op.f("pk_spans")),
    )
    op.create_table(
        "trace_links",
        _trace_id(),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("target", sa.String(length=300), nullable=False),
        _trace_fk("trace_links"),
        sa.PrimaryKeyConstraint("trace_id", "kind", "target", name=op.f("pk_trace_links")),
    )
    op.create_index(op.f("ix_trace_links_kind_target"), "trace_links", ["kind", "target"])
    op.create_table(
        "assessments",
        sa.Column("id", sa.String(length=32), nullable=False),
        _trace_id(),
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("source_type", sa.String(length=20), nullable=False),
        sa.Column("source_id", sa.String(length=250), nullable=False),
        sa.Column("value_json", sa.Text(), nullable=True),
        sa.Column("rationale", sa.Text(), nullable=True),
        sa.Column("error_json", sa.Text(), nullable=True),
        sa.Column("span_id", sa.String(length=16), nullable=True),
        sa.Column("valid", sa.Boolean(), nullable=False),
        sa.Column("overrides", sa.String(length=32), nullable=True),
        sa.Column("metadata_json", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        _trace_fk("assessments"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assessments")),
    )
    op.create_index(op.f("ix_assessments_trace_id"), "assessments", ["trace_id"])


def downgrade() -> None:
    op.drop_table("assessments")
    op.drop_table("trace_links")
    op.drop_table("spans")
    op.drop_table("trace_metadata")
    op.drop_table("trace_tags")
    op.drop_table("traces")
