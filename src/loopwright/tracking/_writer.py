"""Background metric writer: logging a point costs an append; a thread writes batches.

Points are validated when logged (a bad key or value raises in the caller), buffered in memory and
written by one daemon thread in a single transaction per flush: when the buffer reaches
``max_points``, every ``interval`` seconds, on ``flush()`` (end of run) and at interpreter exit. A
process that dies loses at most the points of the last interval. A write that fails in the
background is raised at the next ``flush()`` so it cannot go unnoticed.
"""

from __future__ import annotations

import atexit
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import sqlalchemy as sa

from .._ids import now_ms
from .._logging import get_logger
from ..errors import TrackingError
from ..store import schema as t

if TYPE_CHECKING:
    from ..store.database import Database

__all__ = ["HEARTBEAT_INTERVAL_S", "MetricWriter"]

HEARTBEAT_INTERVAL_S = 15.0

_log = get_logger(__name__)
_writers: weakref.WeakSet[MetricWriter] = weakref.WeakSet()

# (run_id, key, step, timestamp, value, is_nan)
Point = tuple[str, str, int, int, float, bool]


def point(run_id: str, key: str, value: float, step: int, timestamp: int) -> Point:
    """One validated row; NaN is stored as 0 with ``is_nan`` (SQLite cannot store NaN)."""
    if value != value:  # NaN, without a function call on the hot path
        return (run_id, key, step, timestamp, 0.0, True)
    return (run_id, key, step, timestamp, value, False)


class MetricWriter:
    """Buffers metric points for one database and writes them from a daemon thread."""

    def __init__(self, db: Database, *, interval: float = 1.0, max_points: int = 20_000) -> None:
        self._db = db
        self.interval = interval
        self.max_points = max_points
        self._buffer: list[Point] = []
        self._lock = threading.Lock()  # guards _buffer and _live_runs
        self._write_lock = threading.Lock()  # one batch written at a time, in order
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._live_runs: set[str] = set()
        self._last_heartbeat = 0.0
        self._thread: threading.Thread | None = None
        _writers.add(self)

    # --- the caller's side ---------------------------------------------------------------

    def add(self, row: Point) -> None:
        with self._lock:
            self._buffer.append(row)
            size = len(self._buffer)
        if size >= self.max_points:
            self._wake.set()
        elif self._thread is None:
            self._start()

    def add_many(self, rows: Iterable[Point]) -> None:
        with self._lock:
            self._buffer.extend(rows)
            size = len(self._buffer)
        if self._thread is None:
            self._start()
        if size >= self.max_points:
            self._wake.set()

    def track(self, run_id: str) -> None:
        """Keep the run's heartbeat fresh while it is open."""
        with self._lock:
            self._live_runs.add(run_id)
        if self._thread is None:
            self._start()

    def untrack(self, run_id: str) -> None:
        with self._lock:
            self._live_runs.discard(run_id)

    def flush(self, then: Callable[[sa.Connection], None] | None = None) -> None:
        """Write everything buffered so far, now; raise any error a background write met.

        ``then`` runs in the same transaction after the points (ending a run costs one commit).
        """
        self._write_pending(then)
        self._raise_pending_error()

    def close(self) -> None:
        """Flush and stop the thread (idempotent)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=60)
        self._thread = None
        self.flush()

    # --- the thread's side ---------------------------------------------------------------

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(
                target=self._loop, name="loopwright-metrics", daemon=True
            )
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            try:
                self._write_pending()
            except BaseException as exc:  # kept for the caller's next flush()
                _log.warning("writing metrics failed: %s", exc)
                self._error = exc

    def _write_pending(self, then: Callable[[sa.Connection], None] | None = None) -> None:
        with self._write_lock:
            with self._lock:
                rows, self._buffer = self._buffer, []
                live = list(self._live_runs)
            now = now_ms()
            beat = bool(live) and (now / 1000 - self._last_heartbeat) >= HEARTBEAT_INTERVAL_S
            if not rows and not beat:
                if then is not None:
                    with self._db.write() as conn:
                        then(conn)
                return
            try:
                with self._db.write() as conn:
                    touched = write_points(conn, rows) if rows else set()
                    if beat:
                        touched.update(live)
                        self._last_heartbeat = now / 1000
                    if touched:
                        conn.execute(
                            t.runs.update()
                            .where(t.runs.c.id.in_(sorted(touched)))
                            .values(heartbeat_at=now)
                        )
                    if then is not None:
                        then(conn)
            except sa.exc.IntegrityError as exc:
                # Points for a run that no longer exists: retrying cannot help.
                raise TrackingError(
                    f"{len(rows)} metric point(s) were dropped: {exc.orig}; was the run deleted?"
                ) from exc
            except BaseException:
                with self._lock:  # put the batch back so a later flush retries it
                    self._buffer[:0] = rows
                raise

    def _raise_pending_error(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise TrackingError(
                f"metrics could not be written in the background: {error}"
            ) from error


_POINT_COLUMNS = "(run_id, key, step, timestamp, value, is_nan)"
_LATEST_UPDATE = (
    " ON CONFLICT (run_id, key) DO UPDATE SET step = excluded.step,"
    " timestamp = excluded.timestamp, value = excluded.value, is_nan = excluded.is_nan"
    " WHERE (excluded.step, excluded.timestamp)"
    " >= (latest_metrics.step, latest_metrics.timestamp)"
)


def _rows_per_statement(dialect: str) -> int:
    """Rows per multi-row INSERT, within the driver's limit on bound parameters."""
    if dialect == "postgresql":
        return 5000  # 30,000 parameters of the 65,535 allowed
    import sqlite3

    return 2000 if sqlite3.sqlite_version_info >= (3, 32, 0) else 150


def _insert_many(conn: sa.Connection, table: str, rows: list[Point], suffix: str) -> None:
    """Multi-row INSERTs: one statement per chunk, so the GIL is released once per chunk.

    ``executemany`` releases and re-takes the GIL for every row; with a training loop busy on the
    main thread each re-take waits a whole switch interval, and the writer would crawl.
    """
    if not rows:
        return
    mark = "%s" if conn.dialect.name == "postgresql" else "?"
    group = "(" + ", ".join([mark] * 6) + ")"
    size = _rows_per_statement(conn.dialect.name)
    for start in range(0, len(rows), size):
        chunk = rows[start : start + size]
        values = ", ".join([group] * len(chunk))
        params = [value for row in chunk for value in row]
        # Only placeholders and module constants are joined here; every value is bound.
        statement = "INSERT INTO " + table + " " + _POINT_COLUMNS + " VALUES " + values + suffix  # noqa: S608
        conn.exec_driver_sql(statement, tuple(params))


def write_points(conn: sa.Connection, rows: list[Point]) -> set[str]:
    """Append points (repeats ignored), move ``latest_metrics`` forward; return the run ids."""
    _insert_many(conn, "metrics", rows, " ON CONFLICT DO NOTHING")
    latest: dict[tuple[str, str], Point] = {}
    for row in rows:
        key = (row[0], row[1])
        best = latest.get(key)
        if best is None or (row[2], row[3]) >= (best[2], best[3]):
            latest[key] = row
    _insert_many(conn, "latest_metrics", list(latest.values()), _LATEST_UPDATE)
    return {row[0] for row in latest.values()}


@atexit.register
def _flush_all_at_exit() -> None:
    for writer in list(_writers):
        try:
            writer.close()
        except BaseException as exc:  # at exit there is nobody left to raise to
            _log.error("metrics lost at exit: %s", exc)
