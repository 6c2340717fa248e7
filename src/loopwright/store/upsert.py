"""Portable ``INSERT … ON CONFLICT`` for SQLite and PostgreSQL (both speak the same clause)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

__all__ = ["insert_ignore", "upsert"]


def _insert(conn: sa.Connection, table: sa.Table) -> Any:
    # Imported here: loading the PostgreSQL dialect costs ~25 ms that SQLite users need not pay.
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)


def insert_ignore(conn: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows``, silently skipping any that collide with an existing primary key."""
    if rows:
        conn.execute(_insert(conn, table).on_conflict_do_nothing(), list(rows))


def upsert(
    conn: sa.Connection,
    table: sa.Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    update: Sequence[str],
    where: Any = None,
) -> None:
    """Insert ``rows``; on a primary-key collision overwrite the ``update`` columns.

    ``where`` may compare the stored row (``table.c.x``) with the new one (``excluded.x``, given as
    ``sa.literal_column("excluded.x")``) to update only when the new row wins.
    """
    if not rows:
        return
    statement = _insert(conn, table)
    keys = [column.name for column in table.primary_key.columns]
    statement = statement.on_conflict_do_update(
        index_elements=keys,
        set_={name: statement.excluded[name] for name in update},
        where=where,
    )
    conn.execute(statement, list(rows))
