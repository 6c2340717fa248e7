"""The SQL metadata store: one engine, SQLite or PostgreSQL, opened through the same code.

SQLite runs in WAL mode with a busy timeout, and every write transaction starts with
``BEGIN IMMEDIATE``: the write lock is taken up front, so concurrent writers queue on the busy
timeout instead of failing with "database is locked" when a read transaction tries to upgrade.
``synchronous=NORMAL`` keeps every committed transaction across a killed process (the WAL is in the
OS page cache); only a power loss can drop the last commits, never corrupt the file.

A PostgreSQL connection taken from the pool is pinged only if it sat idle for a second or more:
a server handing its connections from request to request skips that round trip, and one left
idle across a database restart is still replaced before it is used.

A server runs its hottest requests on the event loop inside :meth:`Database.nonblocking`. On
SQLite their transactions go to one connection kept for the loop, with a busy timeout of 0, so a
write lock held elsewhere (another request in the thread pool, a CLI, another process) fails at
``BEGIN`` at once with :class:`WouldBlock` instead of stalling the loop; nothing was written then,
and the caller runs the request again in the thread pool, where waiting is harmless. Once a
block has committed a write, running it again would repeat that write: its later transactions
wait for a lock as others do, but for at most a second (the lock was free a moment before).
On PostgreSQL the block runs in a greenlet (``greenlet_spawn``) and its round trips
(``tracking._round_trip``) are awaited on the loop's own async connections
(:mod:`._loop_postgres`); a transaction of the ordinary kind there would block the loop, so it
raises :class:`WouldBlock` instead, with the same rule after a write.

Example:
    >>> db = Database.open("sqlite:///:memory:")
    >>> with db.write() as conn:
    ...     _ = conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import os
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.util.concurrency import await_only, in_greenlet

from ..errors import ConfigError, StoreError

if TYPE_CHECKING:
    from ._loop_postgres import LoopPool

__all__ = ["Database", "WouldBlock", "in_nonblocking_block", "normalize_db_uri", "sqlite_file"]

_BUSY_TIMEOUT_MS = 60_000
_PING_AFTER_IDLE_S = 1.0
_AFTER_WRITE_WAIT_MS = 1_000


class WouldBlock(StoreError):
    """A :meth:`Database.nonblocking` block needed to wait (a lock, a second write): nothing of
    it was committed; run it again where waiting is allowed."""


# Set inside any Database's nonblocking block: code holding locks of its own (the metric writer)
# must not wait on them there either.
_NONBLOCKING: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "loopwright_nonblocking", default=False
)


def in_nonblocking_block() -> bool:
    """Whether the caller runs inside a :meth:`Database.nonblocking` block: wait on nothing."""
    return _NONBLOCKING.get()


def normalize_db_uri(uri: str) -> str:
    """Pick Loopwright's drivers: psycopg 3 for PostgreSQL, the stdlib module for SQLite."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        raise ConfigError(f"db_uri: {uri!r} is not a database URL (sqlite:///… or postgresql://…)")
    if scheme in ("postgresql", "postgres"):
        return f"postgresql+psycopg://{rest}"
    return uri


def sqlite_file(uri: str) -> Path | None:
    """The file a SQLite URL names; None for other databases and in-memory or ``file:`` URLs."""
    url = sa.make_url(normalize_db_uri(uri))
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return None
    return None if database.startswith("file:") else Path(database).expanduser()


def _ensure_wal(cursor: Any) -> None:
    """Switch the file to WAL once. The switch needs an exclusive lock and SQLite does not call
    the busy handler for it, so processes opening a new store together retry here themselves."""
    import sqlite3

    deadline = time.monotonic() + _BUSY_TIMEOUT_MS / 1000
    delay = 0.005
    while True:
        try:
            mode = cursor.execute("PRAGMA journal_mode").fetchone()[0]
            if mode in ("wal", "memory"):
                return
            if cursor.execute("PRAGMA journal_mode = WAL").fetchone()[0] == "wal":
                return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
        if time.monotonic() > deadline:
            raise StoreError(
                "cannot switch the SQLite database to WAL mode (another process keeps it locked, "
                "or its filesystem lacks shared memory); use a local disk for the home"
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.25)


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control from the sqlite3 module so BEGIN is ours to write.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        _ensure_wal(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _on_sqlite_begin(conn: sa.Connection) -> None:
    from .statements import execute  # on the driver's cursor: this runs for every transaction

    mode = "DEFERRED" if conn.get_execution_options().get("loopwright_read_only") else "IMMEDIATE"
    execute(conn, f"BEGIN {mode}")


def _ping_when_idle(engine: sa.Engine) -> None:
    """Ping a pooled connection on checkout when it was idle ``_PING_AFTER_IDLE_S`` or longer
    (``pool_pre_ping`` would ping on every checkout: a round trip per transaction)."""
    dialect = engine.dialect

    def checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["loopwright_idle_since"] = time.monotonic()

    def checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("loopwright_idle_since")
        if idle_since is None or time.monotonic() - idle_since < _PING_AFTER_IDLE_S:
            return  # fresh, or just handed back by another request
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            # The pool replaces the connection and checks out again.
            raise sa.exc.DisconnectionError(f"a pooled connection is gone: {exc}") from exc

    sa.event.listen(engine, "checkin", checkin)
    sa.event.listen(engine, "checkout", checkout)


class _LoopConnection:
    """The connection a :meth:`Database.nonblocking` block works on: one, kept open, used by the
    event loop's thread only (blocks on the loop never interleave: they do not await)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.conn = engine.connect()
        self.thread = threading.get_ident()
        driver = self.conn.connection.dbapi_connection
        assert driver is not None
        driver.execute("PRAGMA busy_timeout = 0")  # a held lock fails BEGIN at once
        self.depth = 0  # open transactions of the current block (a read inside a write shares it)
        self.writing = False
        self.committed = False  # a write of the current block committed

    @contextlib.contextmanager
    def transaction(self, *, write: bool) -> Iterator[sa.Connection]:
        if self.depth:  # nested: the outer transaction's, unless it cannot write
            if write and not self.writing:
                raise WouldBlock("a write inside a read transaction")
            self.depth += 1
            try:
                yield self.conn
            finally:
                self.depth -= 1
            return
        self.conn.execution_options(loopwright_read_only=not write)
        transaction = self._begin(write)
        self.depth, self.writing = 1, write
        try:
            yield self.conn
        except BaseException:
            transaction.rollback()
            raise
        else:
            try:
                transaction.commit()
            except sa.exc.OperationalError as exc:
                transaction.rollback()
                raise WouldBlock(f"the database is busy: {exc.orig}") from exc
            self.committed = self.committed or write
        finally:
            self.depth, self.writing = 0, False

    def _begin(self, write: bool) -> sa.RootTransaction:
        if not self.committed:
            try:
                return self.conn.begin()
            except sa.exc.OperationalError as exc:
                raise WouldBlock(f"the database is busy: {exc.orig}") from exc
        # After the block's first write, running the block again would write twice: this
        # transaction waits for the lock, boundedly (the lock was free a moment ago).
        driver = self.conn.connection.dbapi_connection
        assert driver is not None
        driver.execute(f"PRAGMA busy_timeout = {_AFTER_WRITE_WAIT_MS}")
        try:
            return self.conn.begin()
        except sa.exc.OperationalError as exc:
            raise StoreError(
                f"the database was busy after a write of this request: {exc.orig}"
            ) from exc
        finally:
            driver.execute("PRAGMA busy_timeout = 0")


@functools.cache
def _has_greenlet() -> bool:
    """Whether greenlet (which SQLAlchemy's ``greenlet_spawn`` needs) is installed."""
    try:
        import greenlet  # noqa: F401
    except ImportError:
        return False
    return True


class _LoopTrips:
    """What a PostgreSQL :meth:`Database.nonblocking` block works with: round trips awaited on
    the loop's pool. A transaction of the ordinary kind would block the loop: it is refused."""

    def __init__(self, pool: LoopPool) -> None:
        self.pool = pool
        self.committed = False  # a write of the block committed

    @contextlib.contextmanager
    def transaction(self, *, write: bool) -> Iterator[sa.Connection]:
        raise WouldBlock("a transaction of its own would wait on the event loop")
        yield  # pragma: no cover  (a generator, as the context manager needs)

    def run(self, queries: Sequence[tuple[str, Sequence[Any]]], *, rows: bool, write: bool) -> Any:
        """``queries`` in one round trip, awaited from the block's greenlet."""
        result = await_only(self.pool.run(queries, rows=rows))
        # A write that changed no row (an update of a missing run, say) may run again.
        self.committed = self.committed or (write and any(result))
        return result


class Database:
    """A SQLAlchemy engine with Loopwright's connection settings and transaction helpers."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        # The read transaction a ``one_read`` block shares with the reads inside it.
        self._shared: contextvars.ContextVar[sa.Connection | None] = contextvars.ContextVar(
            f"loopwright_shared_read_{id(self)}", default=None
        )
        # Set inside a ``nonblocking`` block: the loop's connection (SQLite), or its round
        # trips (PostgreSQL).
        self._loop: contextvars.ContextVar[_LoopConnection | _LoopTrips | None] = (
            contextvars.ContextVar(f"loopwright_loop_connection_{id(self)}", default=None)
        )
        self._loop_connection: _LoopConnection | None = None
        self._loop_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopPool] = (
            weakref.WeakKeyDictionary()
        )
        self._loop_pools_lock = threading.Lock()

    @classmethod
    def open(cls, uri: str, *, echo: bool = False) -> Database:
        """Create the engine for ``uri`` (the SQLite file's folder is created if missing).

        This does not touch the schema; ``loopwright.store.migrate.ensure_schema`` does.
        """
        url = sa.make_url(normalize_db_uri(uri))
        kwargs: dict[str, Any] = {"echo": echo}
        if url.get_backend_name() == "sqlite":
            database = sqlite_file(uri)
            if database is not None:
                try:
                    database.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise StoreError(
                        f"cannot create the folder for the SQLite database {str(database)!r}: "
                        f"{exc.strerror}; check db_uri or the folder's permissions"
                    ) from exc
            kwargs["connect_args"] = {
                "timeout": _BUSY_TIMEOUT_MS / 1000,
                "check_same_thread": False,
            }
        engine = sa.create_engine(url, **kwargs)
        if engine.dialect.name == "sqlite":
            sa.event.listen(engine, "connect", _on_sqlite_connect)
            sa.event.listen(engine, "begin", _on_sqlite_begin)
        else:
            _ping_when_idle(engine)
        return cls(engine)

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.engine.dialect.name

    @property
    def url(self) -> str:
        """The database URL with any password hidden."""
        return self.engine.url.render_as_string(hide_password=True)

    @property
    def nonblocking_awaits(self) -> bool:
        """Whether :meth:`nonblocking` blocks await the database (PostgreSQL, with greenlet
        installed): run them in ``greenlet_spawn`` on the event loop. SQLite's run in place."""
        return self.dialect == "postgresql" and _has_greenlet()

    @contextlib.contextmanager
    def nonblocking(self) -> Iterator[None]:
        """Run the block's transactions without waiting (see the module docstring): a lock held
        elsewhere raises :class:`WouldBlock` before anything is committed. Not reentrant; from
        one thread only (the event loop's); on PostgreSQL, in ``greenlet_spawn`` only."""
        if self._loop.get() is not None:
            raise RuntimeError("nonblocking blocks do not nest")
        loop: _LoopConnection | _LoopTrips
        if self.dialect == "postgresql":
            loop = _LoopTrips(self._loop_pool())
        else:
            loop = self._sqlite_loop_connection()
        loop.committed = False
        token, flag = self._loop.set(loop), _NONBLOCKING.set(True)
        try:
            yield
        except WouldBlock as exc:
            if loop.committed:  # running the block again would repeat its write: fail instead
                raise StoreError(
                    f"the database was busy after a write of this request: {exc}"
                ) from exc
            raise
        finally:
            _NONBLOCKING.reset(flag)
            self._loop.reset(token)

    def loop_round_trips(self) -> _LoopTrips | None:
        """The round trips of the PostgreSQL nonblocking block the caller runs in, if any."""
        loop = self._loop.get()
        return loop if isinstance(loop, _LoopTrips) else None

    def _sqlite_loop_connection(self) -> _LoopConnection:
        loop = self._loop_connection
        if loop is None:
            try:
                loop = self._loop_connection = _LoopConnection(self.engine)
            except sa.exc.OperationalError as exc:
                raise WouldBlock(f"the database is busy: {exc.orig}") from exc
        if loop.thread != threading.get_ident():  # a second event loop: it waits its turn
            raise WouldBlock("the nonblocking connection belongs to another thread")
        return loop

    def _loop_pool(self) -> LoopPool:
        if not in_greenlet():
            raise RuntimeError("a PostgreSQL nonblocking block runs in greenlet_spawn")
        loop = asyncio.get_running_loop()
        pool = self._loop_pools.get(loop)
        if pool is None or pool.closed or pool.pid != os.getpid():
            from ._loop_postgres import LoopPool

            with self._loop_pools_lock:  # event loops in other threads may make theirs
                for other, its_pool in list(self._loop_pools.items()):
                    if other.is_closed():  # a loop gone (a test client's, say): its connections
                        its_pool.close_now()
                        del self._loop_pools[other]
                size = getattr(self.engine.pool, "size", lambda: 5)()
                pool = self._loop_pools[loop] = LoopPool(
                    self.engine, size=size, ping_after_idle_s=_PING_AFTER_IDLE_S
                )
            weakref.finalize(loop, pool.close_now)  # a loop gone closes its connections
        return pool

    @contextlib.contextmanager
    def write(self) -> Iterator[sa.Connection]:
        """A connection in a write transaction, committed on success and rolled back on error."""
        loop = self._loop.get()
        if loop is not None:
            with loop.transaction(write=True) as conn:
                yield conn
            return
        with self.engine.begin() as conn:
            yield conn

    @contextlib.contextmanager
    def read(self) -> Iterator[sa.Connection]:
        """A connection in a read-only transaction (no write lock taken on SQLite); inside a
        :meth:`one_read` block, that block's."""
        shared = self._shared.get()
        if shared is not None:
            yield shared
            return
        loop = self._loop.get()
        if loop is not None:
            with loop.transaction(write=False) as conn:
                yield conn
            return
        with self.engine.connect() as conn:
            conn = conn.execution_options(loopwright_read_only=True)
            with conn.begin():
                yield conn

    @contextlib.contextmanager
    def one_read(self) -> Iterator[sa.Connection]:
        """One read transaction for every :meth:`read` in the block (in this thread or task):
        a request reading in several steps takes one connection and one snapshot, not one per
        step. Writes inside the block still have their own transactions, which the shared
        snapshot may not show: open the block after writing."""
        if self._shared.get() is not None:
            with self.read() as conn:
                yield conn
            return
        with self.read() as conn:
            token = self._shared.set(conn)
            try:
                yield conn
            finally:
                self._shared.reset(token)

    def dispose(self) -> None:
        """Close every pooled connection (call before forking, and at shutdown)."""
        loop, self._loop_connection = self._loop_connection, None
        if loop is not None:
            loop.conn.close()
        with self._loop_pools_lock:
            for pool in list(self._loop_pools.values()):
                pool.close_now()
            self._loop_pools.clear()
        self.engine.dispose()
