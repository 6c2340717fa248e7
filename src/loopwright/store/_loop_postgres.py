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

The round trip itself is sent on psycopg's libpq wrapper (``pq``), below its cursors: the
connection stays in pipeline mode; every statement is a named prepared one after its first use
(its ``Parse`` sent in the same round trip); the values are turned into parameters by psycopg's
own adapters (a ``Transformer`` of the connection, C code) before anything is sent, and the rows
loaded by the same adapters; a server error is psycopg's exception class for its SQLSTATE. So
the values sent and the rows and errors returned are the cursors' own, for 0.67-0.75 of the
CPU the cursors take a round trip (their generators and bookkeeping; a statement prepared only
after five uses), measured by ``benchmarks/pg_round_trip.py`` on a quiet machine (asyncpg, a
second driver with other types and errors, took 0.55).
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import Sequence
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg import pq
from psycopg.adapt import PyFormat, Transformer

from . import statements

__all__ = ["LoopPool"]

Query = tuple[str, Sequence[Any]]


class LoopPool:
    """Async psycopg connections for one event loop's nonblocking blocks."""

    def __init__(self, engine: sa.Engine, *, size: int, ping_after_idle_s: float) -> None:
        cargs, cparams = engine.dialect.create_connect_args(engine.url)
        self._connect_args: tuple[list[Any], dict[str, Any]] = (list(cargs), dict(cparams))
        self._idle: list[tuple[_Link, float]] = []  # and when returned
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
            link = await self._take(queries)
            reusable = False
            try:
                result = await link.round_trip(queries, rows=rows)
                reusable = True
                return result
            except psycopg.Error as exc:
                reusable = link.reusable_after(exc)
                text = "; ".join(sql for sql, _ in queries)
                raise sa.exc.DBAPIError.instance(
                    text, None, exc, psycopg.Error, connection_invalidated=link.closed
                ) from exc
            finally:
                self._give_back(link, reusable)

    def close_now(self) -> None:
        """Close the idle connections now (those in use close when handed back). Callable from
        any thread: it waits on nothing."""
        self.closed = True
        idle, self._idle = self._idle, []
        for link, _ in idle:
            link.close()

    async def _take(self, queries: Sequence[Query]) -> _Link:
        while self._idle:
            link, since = self._idle.pop()
            if time.monotonic() - since < self._ping_after_idle_s:
                return link
            try:
                await link.round_trip(_PING, rows=False)  # as the engine's "select one"
            except psycopg.Error:
                link.close()
                continue
            return link
        cargs, cparams = self._connect_args
        try:
            conn = await psycopg.AsyncConnection.connect(*cargs, autocommit=True, **cparams)
        except psycopg.Error as exc:
            text = "; ".join(sql for sql, _ in queries)
            raise sa.exc.DBAPIError.instance(
                text, None, exc, psycopg.Error, connection_invalidated=True
            ) from exc
        return _Link(conn)

    def _give_back(self, link: _Link, reusable: bool) -> None:
        if reusable and not self.closed and self.pid == os.getpid():
            self._idle.append((link, time.monotonic()))
        else:
            link.close()


_PING: list[Query] = [("SELECT 1", ())]
_Key = tuple[bytes, tuple[int, ...]]  # a statement's text and its parameters' types
_Dumped = tuple[bytes, Sequence[Any], tuple[int, ...], list[pq.Format]]  # and the parameters
_PREPARED_MAX = 200  # named statements a connection keeps; past it, statements go unnamed
# Errors after which a connection's prepared statements may be stale or gone: it is closed.
# 0A000: "cached plan must not change result type" (a table altered since); 26000: no such
# prepared statement.
_STALE_STATES = frozenset({"0A000", "26000"})
_PIPELINE_SYNC = pq.ExecStatus.PIPELINE_SYNC
_TUPLES_OK = pq.ExecStatus.TUPLES_OK
_COMMAND_OK = pq.ExecStatus.COMMAND_OK
_FATAL_ERROR = pq.ExecStatus.FATAL_ERROR
_AUTO, _BINARY = PyFormat.AUTO, PyFormat.BINARY  # as statements marks them: %s, %b


class _Link:
    """One async connection, driven through libpq: its prepared statements, its adapters."""

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.conn = conn
        self.pgconn = conn.pgconn
        self.encoding = conn.info.encoding
        self.adapt = Transformer(conn)  # the connection's dumpers and loaders, as its cursors'
        self.names: dict[_Key, bytes] = {}
        self.pgconn.enter_pipeline_mode()

    @property
    def closed(self) -> bool:
        return self.conn.closed

    def close(self) -> None:
        # The socket closed in place (``await conn.close()`` would only add a wait on the loop).
        if not self.conn.closed:
            self.pgconn.finish()

    def reusable_after(self, exc: psycopg.Error) -> bool:
        """After a round trip that raised ``exc``: idle, and its prepared statements sound."""
        idle = self.conn.info.transaction_status == pq.TransactionStatus.IDLE
        return not self.conn.closed and idle and exc.sqlstate not in _STALE_STATES

    async def round_trip(self, queries: Sequence[Query], *, rows: bool) -> list[Any]:
        """Each statement's rows (or count of changed rows), in one round trip ended by one
        ``Sync``: one implicit transaction, committed when PostgreSQL answers the Sync."""
        # Every value becomes a parameter first: a value the adapters refuse raises before
        # anything is sent, so no Sync can commit the statements before it.
        dumped = [self._dump(sql, values) for sql, values in queries]
        try:
            parses, parsing = self._send(dumped)
            answers = await self._answers()
        except BaseException:
            # Refused part way, cancelled, or the connection lost: what was sent is unknown,
            # and a later Sync must not commit it.
            self.close()
            raise
        error: psycopg.Error | None = None
        results = []
        for parsed, answer in zip(parses, answers, strict=True):
            if parsed is not None and answer.status == _COMMAND_OK:
                self.names[parsed] = parsing[parsed]
            if error is None and answer.status == _FATAL_ERROR:
                error = psycopg.errors.error_from_result(answer, encoding=self.encoding)
            if parsed is None:
                results.append(answer)
        if error is not None:
            raise error
        return [self._load(result) if rows else _count(result) for result in results]

    def _send(self, dumped: list[_Dumped]) -> tuple[list[_Key | None], dict[_Key, bytes]]:
        """Each statement (after its ``Parse``, the first time), then the ``Sync``; per command
        sent, the key of the statement it prepares (``None`` for a statement run); and the
        names given in this round trip."""
        pg = self.pgconn
        parsing: dict[_Key, bytes] = {}
        parses: list[_Key | None] = []
        for text, params, types, formats in dumped:
            key = (text, types)
            name = self.names.get(key) or parsing.get(key)
            if name is None and len(self.names) + len(parsing) < _PREPARED_MAX:
                name = parsing[key] = b"_lw%d" % (len(self.names) + len(parsing))
                pg.send_prepare(name, text, param_types=types)
                parses.append(key)
            if name is None:
                pg.send_query_params(text, params, param_types=types, param_formats=formats)
            else:
                pg.send_query_prepared(name, params, param_formats=formats)
            parses.append(None)
        pg.pipeline_sync()
        return parses, parsing

    def _dump(self, sql: str, values: Sequence[Any]) -> _Dumped:
        text, marks = _numbered(sql, self.encoding)
        if len(values) != marks:
            raise psycopg.ProgrammingError(
                f"the statement has {marks} placeholders but {len(values)} values were passed"
            )
        formats = [_BINARY if statements.binary(value) else _AUTO for value in values]
        params = self.adapt.dump_sequence(values, formats)
        return text, params, tuple(self.adapt.types or ()), list(self.adapt.formats or ())

    async def _answers(self) -> list[pq.abc.PGresult]:
        """Every command's result up to the Sync's, waiting on the loop for the socket."""
        pg = self.pgconn
        loop = asyncio.get_running_loop()
        while pg.flush():  # the output did not all fit in the socket's buffer: wait to send
            # more, and take in what comes meanwhile (libpq's flush reads when a write would
            # block; a server blocked on a full socket of answers stops reading).
            await _ready(loop, pg.socket, write=True)
            pg.consume_input()
        answers: list[pq.abc.PGresult] = []
        last: pq.abc.PGresult | None = None
        while True:
            while pg.is_busy():
                await _ready(loop, pg.socket, write=False)
                pg.consume_input()
            answer = pg.get_result()
            if answer is None:  # the end of one command's results: keep its last
                if last is None:
                    raise psycopg.InternalError("PostgreSQL's answers ended before the Sync's")
                answers.append(last)
                last = None
            elif answer.status == _PIPELINE_SYNC:
                return answers
            else:
                last = answer

    def _load(self, result: pq.abc.PGresult) -> list[Any]:
        if result.status != _TUPLES_OK:
            raise psycopg.ProgrammingError("the statement returned no rows")
        self.adapt.set_pgresult(result)
        rows: list[Any] = self.adapt.load_rows(0, result.ntuples, tuple)
        return rows


def _count(result: pq.abc.PGresult) -> int:
    if result.status == _TUPLES_OK:
        return result.ntuples
    count = result.command_tuples
    return count if count is not None else -1


async def _ready(loop: asyncio.AbstractEventLoop, fd: int, *, write: bool) -> None:
    """Wait until the loop sees ``fd`` readable (or, with ``write``, writable or readable)."""
    ready = loop.create_future()
    loop.add_reader(fd, _settle, ready)
    if write:
        loop.add_writer(fd, _settle, ready)
    try:
        await ready
    finally:
        loop.remove_reader(fd)
        if write:
            loop.remove_writer(fd)


def _settle(ready: asyncio.Future[None]) -> None:
    if not ready.done():
        ready.set_result(None)


@functools.lru_cache(maxsize=1024)
def _numbered(sql: str, encoding: str) -> tuple[bytes, int]:
    """``sql`` with its ``?`` numbered as PostgreSQL's ``$1, $2, ...`` (as ``statements``
    turns them into psycopg's ``%s``, every ``?`` is a placeholder), encoded; and their count."""
    pieces = sql.split("?")
    numbered = [pieces[0]]
    for number, piece in enumerate(pieces[1:], 1):
        numbered.append(f"${number}{piece}")
    return "".join(numbered).encode(encoding), len(pieces) - 1
