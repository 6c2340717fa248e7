"""The embedded online store: one SQLite file beside the metadata database.

One table, ``online_rows``, keyed by (view, entity key) WITHOUT ROWID, so a lookup is one
b-tree probe per key and a row is stored in key order. ``online_views`` keeps each view's newest
event time (freshness without scanning the rows). Raw ``sqlite3``: this is the lookup's hot path
and SQLAlchemy's per-statement overhead would be most of it.

WAL with ``synchronous=NORMAL``: a commit is not fsynced, only checkpoints are. A process crash
loses nothing committed; a power loss may lose the last commits, never corrupts the file. That
is enough for a cache the offline store can rebuild, and a materialization is recorded in the
metadata database only after its rows commit here, so a lost commit means a lost record too
only when the power fails in between (rerun the window with ``materialize --start``).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...errors import InvalidInput
from .base import OnlineRow, encode_key, pack_values, unpack_values

__all__ = ["SQLiteOnlineStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS online_rows (
    view TEXT NOT NULL,
    key TEXT NOT NULL,
    event_ms INTEGER NOT NULL,
    created_ms INTEGER,
    view_version INTEGER NOT NULL,
    packed TEXT NOT NULL,
    PRIMARY KEY (view, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS online_views (
    view TEXT PRIMARY KEY,
    newest_event_ms INTEGER NOT NULL
) WITHOUT ROWID;
"""
# A stored row is replaced only by one at least as new: (event, created) compared as a pair,
# a missing created time sorting first. Equal times rewrite the row (a re-run of the same
# window is idempotent and picks up a new view version).
_UPSERT = """
INSERT INTO online_rows (view, key, event_ms, created_ms, view_version, packed)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (view, key) DO UPDATE SET
    event_ms = excluded.event_ms, created_ms = excluded.created_ms,
    view_version = excluded.view_version, packed = excluded.packed
WHERE (excluded.event_ms, coalesce(excluded.created_ms, -9223372036854775808))
    >= (online_rows.event_ms, coalesce(online_rows.created_ms, -9223372036854775808))
"""
_NEWEST = """
INSERT INTO online_views (view, newest_event_ms) VALUES (?, ?)
ON CONFLICT (view) DO UPDATE SET newest_event_ms = max(newest_event_ms, excluded.newest_event_ms)
"""
# Keys per SELECT: well under SQLite's variable limit; the statement texts (one per count up to
# this) stay in each connection's statement cache.
_CHUNK = 256


class SQLiteOnlineStore:
    """An :class:`~loopwright.features.online.base.OnlineStore` in a SQLite file.

    One connection per thread (sqlite3 connections are not shared across threads), each with
    its prepared statements cached by ``sqlite3``; a forked process (a server's workers) opens
    its own, as a SQLite connection must not cross a fork.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.name = f"sqlite:///{self.path}"
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._selects: dict[int, str] = {}
        self._pid = os.getpid()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._connection().executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise InvalidInput(
                f"online store {self.name} cannot be opened ({exc}); check the path and its "
                "permissions, or set online_store to another sqlite:///path"
            ) from exc

    def _connection(self) -> sqlite3.Connection:
        if self._pid != os.getpid():
            # Forked: the parent's connections are left alone (closing them here could drop
            # the parent's file locks), and never used again in this process.
            self._pid, self._local, self._connections = os.getpid(), threading.local(), []
            self._lock = threading.Lock()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, cached_statements=512
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def write(
        self,
        view: str,
        keys: list[tuple[Any, ...]],
        event_ms: list[int],
        created_ms: list[int | None],
        values: list[dict[str, Any]],
        view_version: int,
    ) -> int:
        if not keys:
            return 0
        rows = [
            (view, encode_key(key), event, created, view_version, pack_values(value))
            for key, event, created, value in zip(keys, event_ms, created_ms, values, strict=True)
        ]
        conn = self._connection()
        with _transaction(conn):
            before = conn.total_changes
            conn.executemany(_UPSERT, rows)
            written = conn.total_changes - before
            conn.execute(_NEWEST, (view, max(event_ms)))
        return written

    def read(self, view: str, keys: Sequence[tuple[Any, ...]]) -> list[OnlineRow | None]:
        encoded = [encode_key(key) for key in keys]
        conn = self._connection()
        found: dict[str, OnlineRow] = {}
        for start in range(0, len(encoded), _CHUNK):
            chunk = encoded[start : start + _CHUNK]
            for key, event, version, packed in conn.execute(
                self._select(len(chunk)), (view, *chunk)
            ):
                found[key] = OnlineRow(event, unpack_values(packed), version)
        return [found.get(key) for key in encoded]

    def _select(self, count: int) -> str:
        sql = self._selects.get(count)
        if sql is None:
            marks = ",".join("?" * count)
            # Only placeholders are formatted in; the values are bound.
            select = "SELECT key, event_ms, view_version, packed FROM online_rows "
            sql = select + f"WHERE view = ? AND key IN ({marks})"
            self._selects[count] = sql
        return sql

    def newest_event_ms(self, view: str) -> int | None:
        row = (
            self._connection()
            .execute("SELECT newest_event_ms FROM online_views WHERE view = ?", (view,))
            .fetchone()
        )
        return None if row is None else int(row[0])

    def close(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        self._local = threading.local()


class _transaction:
    """BEGIN IMMEDIATE .. COMMIT (ROLLBACK on error) on an autocommit connection: the write
    lock is taken up front, so two writers queue on busy_timeout instead of deadlocking."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.conn.execute("ROLLBACK" if exc_type is not None else "COMMIT")
