"""evaluation datasets, scorers, evaluations (issue 19, builder E)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 18:00:00.000000
"""

from __future__ import annotations

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Filled by its builder this session (tables, indexes)."""


def downgrade() -> None:
    """Filled by its builder this session (tables, indexes)."""
