"""prompts: registry items (issue 19, builder P)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 18:00:00.000000
"""

from __future__ import annotations

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Filled by its builder this session (tables, indexes)."""


def downgrade() -> None:
    """Filled by its builder this session (tables, indexes)."""
