"""LLM gateway routes, secrets, usage (issue 19, builder G)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 18:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def _owned() -> list[sa.Column[object]]:
    return [
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
    ]


def _stamps() -> list[sa.Column[object]]:
    return [
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "gateway_routes",
        *_owned(),
        sa.Column("config_json", sa.Text(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_routes")),
        sa.UniqueConstraint("name", name=op.f("uq_gateway_routes_name")),
    )
    op.create_table(
        "gateway_secrets",
        *_owned(),
        sa.Column("ciphertext", sa.Text(), nullable=False),
        sa.Column("mask", sa.String(length=40), nullable=False),
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_secrets")),
        sa.UniqueConstraint("name", name=op.f("uq_gateway_secrets_name")),
    )
    op.create_table(
        "gateway_usage",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("route", sa.String(length=100), nullable=False),
        sa.Column("target", sa.String(length=64), nullable=False),
        sa.Column("user_name", sa.String(length=200), nullable=False),
        sa.Column("endpoint", sa.String(length=20), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=False),
        sa.Column("estimated", sa.Boolean(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("stream", sa.Boolean(), nullable=False),
        sa.Column("trace_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_usage")),
    )
    op.create_index(
        op.f("ix_gateway_usage_route_created_at"), "gateway_usage", ["route", "created_at"]
    )
    op.create_index(
        op.f("ix_gateway_usage_user_name_created_at"), "gateway_usage", ["user_name", "created_at"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_gateway_usage_user_name_created_at"), table_name="gateway_usage")
    op.drop_index(op.f("ix_gateway_usage_route_created_at"), table_name="gateway_usage")
    op.drop_table("gateway_usage")
    op.drop_table("gateway_secrets")
    op.drop_table("gateway_routes")
