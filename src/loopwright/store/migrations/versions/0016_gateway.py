"""LLM gateway routes, secrets, usage (issue 19, builder G)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 18:00:00.000000
"""

from __future__ import annotations

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Filled by its builder this session (tables, indexes)."""


def downgrade() -> None:
    """Filled by its builder this session (tables, indexes)."""
