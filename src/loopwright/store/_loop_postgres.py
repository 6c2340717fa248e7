"""PostgreSQL round trips awaited on the event loop: a nonblocking block's database work.

A server's hot request on PostgreSQL used to run in the thread pool, because every statement
waits on the network and the commit on the server's log flush; the hop to a thread and back
cost ~0.1 ms a request, as much as a round trip itself. Here the request's work runs in a
greenlet on the event loop (SQLAlchemy's ``greenlet_spawn``), and its round trips (all its
database work: ``tracking._round_trip``) are awaited on an async psycopg connection: while one
request waits on PostgreSQL, the loop serves others.

Each event loop has its own :class:`LoopPool` (async connections belong to one loop), of at most
as many connections as the engine's pool keeps. The connections are made with the engine's own
connection arguments, in autocommit: one statement, or several sent in pipeline mode and ended by
one ``Sync``, is one implicit transaction, as on the engine's connections. A connection idle a
second or more is pinged before use, as the engine's are; one left in any state but idle (an
error mid-way, a cancelled request) is closed, not reused. A pool belongs to the process that
made it: a forked child makes its own (psycopg does not close a connection inherited from
another process).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg import pq

from . import statements

__all__ = ["LoopPool"]

Query = tuple[str, Sequence[Any]]


class LoopPool:
    """Async psycopg connections for one event loop's nonblocking blocks."""

    def __init__(self, engine: sa.Engine, *, size: int, ping_after_idle_s: float) -> None:
        cargs, cparams = engine.dialect.create_connect_args(engine.url)
        self._connect_args: tuple[list[Any], dict[str, Any]] = (list(cargs), dict(cparams))
        self._idle: list[tuple[psycopg.AsyncConnection[Any], float]] = []  # and when returned
        self._slots = asyncio.Semaphore(size)
        self._ping_after_idle_s = ping_after_idle_s
        self.pid = os.getpid()
        self.closed = False

    async def run(self, queries: Sequence[Query], *, rows: bool) -> list[Any]:
        """Each statement's rows (or count of changed rows), all in one round trip and one
        implicit transaction. psycopg's errors are raised as SQLAlchemy's, as the engine's."""
        if self.closed:
            raise sa.exc.ResourceClosedError("the database was closed")
        async with self._slots:
            conn = await self._take(queries)
            reusable = False
            try:
                result = await _one_trip(conn, queries, rows=rows)
                reusable = True
                return result
            except psycopg.Error as exc:
                reusable = _idle(conn)
                text = "; ".join(sql for sql, _ in queries)
                raise sa.exc.DBAPIError.instance(
                    text, None, exc, psycopg.Error, connection_invalidated=conn.closed
                ) from exc
            finally:
                self._give_back(conn, reusable)

    def close_now(self) -> None:
        """Close the idle connections now (those in use close when handed back). Callable from
        any thread: it waits on nothing."""
        self.closed = True
        idle, self._idle = self._idle, []
        for conn, _ in idle:
            _close(conn)

    async def _take(self, queries: Sequence[Query]) -> psycopg.AsyncConnection[Any]:
        while self._idle:
            conn, since = self._idle.pop()
            if time.monotonic() - since < self._ping_after_idle_s:
                return conn
            try:
                await conn.execute(";")  # as the engine's ping (its dialect's "select one")
            except psycopg.Error:
                _close(conn)
                continue
            return conn
        cargs, cparams = self._connect_args
        try:
            return await psycopg.AsyncConnection.connect(*cargs, autocommit=True, **cparams)
        except psycopg.Error as exc:
            text = "; ".join(sql for sql, _ in queries)
            raise sa.exc.DBAPIError.instance(
                text, None, exc, psycopg.Error, connection_invalidated=True
            ) from exc

    def _give_back(self, conn: psycopg.AsyncConnection[Any], reusable: bool) -> None:
        if reusable and not self.closed and self.pid == os.getpid():
            self._idle.append((conn, time.monotonic()))
        else:
            _close(conn)


def _idle(conn: psycopg.AsyncConnection[Any]) -> bool:
    return not conn.closed and conn.info.transaction_status == pq.TransactionStatus.IDLE


def _close(conn: psycopg.AsyncConnection[Any]) -> None:
    # The socket closed in place (``await conn.close()`` would only add a wait on the loop).
    if not conn.closed:
        conn.pgconn.finish()


async def _one_trip(
    conn: psycopg.AsyncConnection[Any], queries: Sequence[Query], *, rows: bool
) -> list[Any]:
    if len(queries) == 1:
        sql, values = queries[0]
        async with conn.cursor() as cursor:
            await cursor.execute(statements._for_psycopg(sql), tuple(values))
            return [await cursor.fetchall() if rows else cursor.rowcount]
    cursors = []
    try:
        # As tracking._round_trip's pipeline: nothing fetched inside the block, whose end sends
        # the Sync and reads every result.
        async with conn.pipeline():
            try:
                for sql, values in queries:
                    cursors.append(conn.cursor())
                    await cursors[-1].execute(statements._for_psycopg(sql), tuple(values))
            except BaseException:
                # Refused before all were sent, or cancelled: close the connection, so no Sync
                # commits the statements already sent.
                _close(conn)
                raise
        return [await c.fetchall() if rows else c.rowcount for c in cursors]
    finally:
        for cursor in cursors:
            await cursor.close()
