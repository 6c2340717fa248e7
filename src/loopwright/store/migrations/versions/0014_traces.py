"""traces, spans, assessments (issue 19, builder T)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 18:00:00.000000
"""

from __future__ import annotations

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Filled by its builder this session (tables, indexes)."""


def downgrade() -> None:
    """Filled by its builder this session (tables, indexes)."""
