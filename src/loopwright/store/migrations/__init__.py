"""Alembic migrations of the metadata store (``loopwright db upgrade`` applies them)."""
