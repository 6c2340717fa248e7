"""Raw SQL for the few hot paths (creating a run, logging its params, ending it).

A Core statement costs tens of microseconds of coercion and compilation on every call, cache or
not; run creation makes several, so they are written here once as text with ``?`` placeholders
(``%s`` for psycopg) and handed to the driver. Column names are quoted (``"user"`` is reserved
on PostgreSQL); values are always bound, never joined into the text.

Example:
    >>> insert_text("params", ("run_id", "key", "value"), rows=2)
    'INSERT INTO params ("run_id", "key", "value") VALUES (?, ?, ?), (?, ?, ?)'
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

__all__ = ["execute", "insert_text", "marks"]


def execute(conn: sa.Connection, statement: str, params: Sequence[Any] = ()) -> Any:
    """Run ``statement`` (``?`` placeholders) on ``conn``'s driver; returns its cursor result."""
    if conn.dialect.name == "postgresql":
        statement = _for_psycopg(statement)
    return conn.exec_driver_sql(statement, tuple(params))


@functools.lru_cache(maxsize=512)
def _for_psycopg(statement: str) -> str:
    return statement.replace("?", "%s")


@functools.lru_cache(maxsize=512)
def marks(count: int) -> str:
    """``?, ?, ?`` for ``count`` values."""
    return ", ".join(["?"] * count)


@functools.lru_cache(maxsize=512)
def insert_text(table: str, columns: tuple[str, ...], rows: int = 1, suffix: str = "") -> str:
    """``INSERT INTO table ("a", "b") VALUES (?, ?), ...`` for ``rows`` rows, then ``suffix``."""
    names = ", ".join(f'"{column}"' for column in columns)
    group = f"({marks(len(columns))})"
    # Only names from this package and placeholders are joined; every value is bound.
    return f"INSERT INTO {table} ({names}) VALUES {', '.join([group] * rows)}{suffix}"  # noqa: S608
