"""Raw SQL for the few hot paths (creating a run, logging its params and metrics, ending it,
recording a dataset version's files).

A Core statement costs tens of microseconds of coercion and compilation on every call, cache or
not, and even ``exec_driver_sql`` builds an execution context and a result per call; run
creation makes several, so they are written here once as text with ``?`` placeholders (``%s``
for psycopg) and run on the driver's own cursor, inside the caller's SQLAlchemy transaction.
Driver errors are raised as SQLAlchemy's (``sa.exc.IntegrityError`` …) as any statement's would.
Column names are quoted (``"user"`` is reserved on PostgreSQL); values are always bound, never
joined into the text. Values go to the driver as they are: only for columns of plain types
(text, integers, floats, booleans).

Example:
    >>> insert_text("params", ("run_id", "key", "value"), rows=2)
    'INSERT INTO params ("run_id", "key", "value") VALUES (?, ?, ?), (?, ?, ?)'
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

__all__ = ["binary", "execute", "fetch", "insert_many", "insert_text", "marks"]


def execute(conn: sa.Connection, statement: str, params: Sequence[Any] = ()) -> int:
    """Run ``statement`` (``?`` placeholders) on ``conn``'s driver; returns the rows it changed."""
    return _run(conn, statement, params, rows=False)[0]


def fetch(conn: sa.Connection, statement: str, params: Sequence[Any] = ()) -> list[Any]:
    """Run ``statement`` and return every row it produced (tuples)."""
    return _run(conn, statement, params, rows=True)[1]


def _run(
    conn: sa.Connection, statement: str, params: Sequence[Any], *, rows: bool
) -> tuple[int, list[Any]]:
    values = tuple(params)
    if conn.dialect.name == "postgresql":
        statement = _for_psycopg(statement, values)
    driver = conn.connection.dbapi_connection
    assert driver is not None  # a connection inside a transaction holds its driver's
    cursor = driver.cursor()
    try:
        cursor.execute(statement, values)
        return cursor.rowcount, list(cursor.fetchall()) if rows else []
    except conn.dialect.loaded_dbapi.Error as exc:
        # As SQLAlchemy's own execution does: wrap the error, invalidate a lost connection.
        conn._handle_dbapi_exception(exc, statement, values, cursor, None)
    finally:
        cursor.close()


def insert_many(
    conn: sa.Connection,
    table: str,
    columns: tuple[str, ...],
    rows: Sequence[Sequence[Any]],
    suffix: str = "",
) -> None:
    """Insert ``rows`` (value tuples in ``columns`` order) with multi-row INSERTs, ``suffix``
    (an ``ON CONFLICT`` clause) after each.

    One statement per chunk rather than ``executemany``: that releases and re-takes the GIL for
    every row, and with a training loop busy on the main thread each re-take waits a whole
    switch interval.
    """
    size = max(1, _max_parameters(conn.dialect.name) // len(columns))
    for start in range(0, len(rows), size):
        chunk = rows[start : start + size]
        statement = insert_text(table, columns, len(chunk), suffix)
        execute(conn, statement, [value for row in chunk for value in row])


def _max_parameters(dialect: str) -> int:
    """Bound parameters per statement, within the driver's limit."""
    if dialect == "postgresql":
        return 30_000  # of the 65,535 allowed
    import sqlite3

    return 12_000 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999


def _for_psycopg(statement: str, values: Sequence[Any]) -> str:
    """``statement`` with psycopg's placeholders: ``%b`` (binary) for an array, else ``%s``."""
    if not any(map(binary, values)):
        return _plain_marks(statement)
    pieces = statement.split("?")
    if len(pieces) != len(values) + 1:
        return _plain_marks(statement)  # psycopg names the mismatch
    marked = [pieces[0]]
    for value, piece in zip(values, pieces[1:], strict=True):
        marked.append(("%b" if binary(value) else "%s") + piece)
    return "".join(marked)


@functools.lru_cache(maxsize=512)
def _plain_marks(statement: str) -> str:
    return statement.replace("?", "%s")


def binary(value: Any) -> bool:
    """Whether ``value`` goes to PostgreSQL in binary: an array (a Python list). psycopg's text
    dumper of arrays quotes every element through a regular expression: a 1,000-point
    log-batch's six arrays cost ~7.1 ms of CPU to dump as text, ~1.8 ms in binary."""
    return type(value) is list


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
