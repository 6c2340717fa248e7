"""Several statements sent to PostgreSQL at once: one network round trip instead of one each.

A server request on PostgreSQL spent most of its database time waiting on the network: a run
read was ``BEGIN``, six ``SELECT``\\ s and ``COMMIT``, eight round trips, each ~40 µs on loopback
and far more to a remote database. Here the statements go out in psycopg's pipeline mode on a
connection in autocommit, followed by one ``Sync``: PostgreSQL runs every statement before the
``Sync`` in one implicit transaction, committed at the ``Sync`` (all of them, or none when one
fails), and answers them all together.

What this keeps of a ``BEGIN`` … ``COMMIT`` block: writes are atomic and durable once this
returns (the commit's acknowledgement is what ends the round trip). Reads see what they would
in one: PostgreSQL's default isolation, read committed, gives each statement its own snapshot
either way. On SQLite (no network) the statements run in one transaction of the ordinary kind.

A single statement goes as it is, on the connection in autocommit (one round trip either way;
the pipeline's bookkeeping would only add ~25-40 µs of this process's CPU to it).

Inside a PostgreSQL :meth:`~loopwright.store.database.Database.nonblocking` block (a server's
hot request, in a greenlet on the event loop) the same round trip is awaited on the loop's own
async connection (``store._loop_postgres``), in the same way.

Tried and left: sending several statements as one simple query (``a; b; c``) with the values
quoted client-side. It halves this process's CPU for runs/get's five reads, but PostgreSQL then
parses and plans each statement every time (no prepared statements), and on a machine where the
database shares the cores the request took as long or longer (benchmarks/server_profile.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..store import statements

if TYPE_CHECKING:
    import sqlalchemy as sa

    from ..store.database import Database

__all__ = ["read_all", "write_all", "write_returning"]

Query = tuple[str, Sequence[Any]]  # SQL with ``?`` placeholders, and its values


def read_all(db: Database, queries: Sequence[Query]) -> list[list[Any]]:
    """Each query's rows, in order; on PostgreSQL in one round trip."""
    if db.dialect != "postgresql" or db._shared.get() is not None:
        with db.read() as conn:  # inside ``one_read``: that block's transaction
            return [statements.fetch(conn, sql, values) for sql, values in queries]
    return _on_postgres(db, queries, rows=True, write=False)


def write_all(db: Database, queries: Sequence[Query], *, together: bool = False) -> list[int]:
    """Run the statements in one transaction (on PostgreSQL, one round trip); each one's count
    of changed rows. Durable once this returns; on an error none of them took effect.

    ``together``: on PostgreSQL, several statements go as one (:func:`_together`), which costs
    this process about a quarter less CPU than a pipeline of two (~230 vs ~305 µs). Only for
    writes (``INSERT``, ``UPDATE``, ``DELETE`` without ``RETURNING``) that touch different rows
    and need none of each other's effects, but through foreign keys (checked when the whole
    statement ends)."""
    if db.dialect != "postgresql":
        with db.write() as conn:
            return [statements.execute(conn, sql, values) for sql, values in queries]
    if together and len(queries) > 1:
        return list(write_returning(db, [_together(queries)])[0][0])
    return _on_postgres(db, queries, rows=False, write=True)


def write_returning(db: Database, queries: Sequence[Query]) -> list[list[Any]]:
    """As :func:`write_all`, with each statement's rows (``UPDATE ... RETURNING``)."""
    if db.dialect != "postgresql":
        with db.write() as conn:
            return [statements.fetch(conn, sql, values) for sql, values in queries]
    return _on_postgres(db, queries, rows=True, write=True)


def _on_postgres(db: Database, queries: Sequence[Query], *, rows: bool, write: bool) -> list[Any]:
    """The round trip: awaited on the event loop inside a nonblocking block, else on one of
    the engine's connections."""
    on_loop = db.loop_round_trips()
    if on_loop is not None:
        found: list[Any] = on_loop.run(queries, rows=rows, write=write)
        return found
    with db.engine.connect() as conn:
        return _one_trip(conn, queries, rows=rows)


def _together(queries: Sequence[Query]) -> Query:
    """One statement doing what ``queries`` do, each a data-modifying ``WITH`` query, and
    answering one row of their counts of changed rows. All run on one snapshot: none sees
    another's rows (so ``write_all`` allows it only for writes that need not)."""
    parts: list[str] = []
    values: list[Any] = []
    for i, (sql, given) in enumerate(queries):
        if "RETURNING" in sql.upper():
            raise ValueError(f"write_all(together=True) takes no RETURNING: {sql!r}")
        parts.append(f"q{i} AS ({sql} RETURNING 1)")
        values.extend(given)
    # Only this package's statements and names are joined; every value is bound.
    counts = ", ".join(f"(SELECT count(*) FROM q{i})" for i in range(len(queries)))  # noqa: S608
    return f"WITH {', '.join(parts)} SELECT {counts}", values


def _one_trip(conn: sa.Connection, queries: Sequence[Query], *, rows: bool) -> list[Any]:
    driver: Any = conn.connection.dbapi_connection
    assert driver is not None  # a fresh checkout holds its driver's connection
    error = conn.dialect.loaded_dbapi.Error
    cursors: list[Any] = []
    driver.autocommit = True  # no BEGIN: the statement, or the Sync, ends the transaction
    try:
        if len(queries) == 1:
            sql, values = queries[0]
            cursors.append(driver.cursor())
            cursors[0].execute(statements._for_psycopg(sql, values), tuple(values))
            return [cursors[0].fetchall() if rows else cursors[0].rowcount]
        return _pipelined(driver, conn, cursors, queries, rows=rows)
    except error as exc:
        # As statements does: SQLAlchemy's exception classes, a lost connection invalidated.
        text = "; ".join(sql for sql, _ in queries)
        conn._handle_dbapi_exception(exc, text, (), cursors[-1] if cursors else None, None)
        raise  # not reached: the call above raises
    finally:
        for cursor in cursors:
            cursor.close()
        # As the pool hands connections out; a broken one (which refuses) is discarded anyway.
        with contextlib.suppress(error):
            driver.autocommit = False


def _pipelined(
    driver: Any, conn: sa.Connection, cursors: list[Any], queries: Sequence[Query], *, rows: bool
) -> list[Any]:
    # Nothing is fetched inside the block: leaving it sends the Sync and reads every result,
    # the one round trip (a fetch inside would be a round trip of its own).
    with driver.pipeline():
        try:
            for sql, values in queries:
                cursors.append(driver.cursor())
                cursors[-1].execute(statements._for_psycopg(sql, values), tuple(values))
        except BaseException as exc:
            # Refused before all were sent (a value the driver cannot adapt, say): close the
            # connection, so no Sync commits the statements already sent.
            conn.invalidate(exc)
            raise
    return [c.fetchall() if rows else c.rowcount for c in cursors]
