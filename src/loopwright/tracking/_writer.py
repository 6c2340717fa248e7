"""The buffered metric writer: logging a point costs an append; a thread hands batches to a sink.

One writer serves both backends; only the sink differs (``_sql_sink.SqlSink`` writes to the
database, ``remote._metric_sink.HttpSink`` posts to a server). Points are validated before they
reach :meth:`MetricWriter.add` (``_validate.metric_point``), buffered in memory and handed over
by one daemon thread: when ``max_points`` are waiting, every ``interval`` seconds, on
``flush()`` (reads and the end of a run) and at interpreter exit. A process that dies loses at
most the points of the last interval. Open runs get a heartbeat every 15 seconds.

A batch the sink cannot take *now* (database locked, server unreachable) is kept and retried. A
batch it refuses is not dropped whole: the writer retries it run by run, then halves by halves,
so only the points at fault (or the points of a run that no longer exists) are dropped. Why
they were dropped is kept per run and raised to that run's caller (``raise_dropped``), never to
another run's reader: on a server, one user's bad data cannot fail another user's request.
"""

from __future__ import annotations

import atexit
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Generic, Protocol, TypeVar

from .._logging import get_logger
from ..errors import TrackingError
from ..store.database import WouldBlock, in_nonblocking_block

__all__ = [
    "HEARTBEAT_INTERVAL_S",
    "MetricSink",
    "MetricWriter",
    "Point",
    "PointsRefused",
    "RunRefused",
]

HEARTBEAT_INTERVAL_S = 15.0

_log = get_logger(__name__)
_writers: weakref.WeakSet[MetricWriter[object]] = weakref.WeakSet()
_MAX_KEPT_ERRORS = 1000  # runs whose dropped points await their caller

# (run_id, key, step, timestamp, value, is_nan); NaN is stored as 0 with is_nan.
Point = tuple[str, str, int, int, float, bool]

C_co = TypeVar("C_co", covariant=True)
C = TypeVar("C")


class PointsRefused(Exception):
    """The sink refused these points for what they hold: retrying them as they are cannot help."""


class RunRefused(PointsRefused):
    """The sink refused the points because of their run (deleted, missing): drop all of them."""


class MetricSink(Protocol[C_co]):
    """Where a writer's batches go. ``then`` is the caller's extra work for the same commit."""

    def write(
        self,
        rows: list[Point],
        heartbeats: Sequence[str],
        then: Callable[[C_co], None] | None,
    ) -> None:
        """Store ``rows`` and mark the runs ``heartbeats`` alive; raise :class:`PointsRefused`
        for rows that can never be stored and anything else for a failure worth retrying."""


class MetricWriter(Generic[C]):
    """Buffers metric points and hands them to ``sink`` from a daemon thread."""

    def __init__(
        self, sink: MetricSink[C], *, interval: float = 1.0, max_points: int = 20_000
    ) -> None:
        self._sink = sink
        self.interval = interval
        self.max_points = max_points
        self._buffer: list[Point] = []
        self._lock = threading.Lock()  # guards _buffer, _live_runs and _dropped
        self._write_lock = threading.Lock()  # one batch handed over at a time, in order
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._live_runs: set[str] = set()
        self._dropped: dict[str, list[str]] = {}
        self._last_heartbeat = time.monotonic()
        self._thread: threading.Thread | None = None
        _writers.add(self)  # type: ignore[arg-type]  # the set only ever calls close()

    # --- the caller's side ---------------------------------------------------------------

    def add(self, row: Point) -> None:
        """Buffer one validated point (the run handle's fast path)."""
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

    def flush(self, then: Callable[[C], None] | None = None) -> None:
        """Hand everything buffered so far to the sink, now (``then`` joins the same commit).

        Points the sink refuses are dropped and kept for :meth:`raise_dropped`; a failure worth
        retrying keeps the points buffered and is raised here.
        """
        # On a server's event loop (a nonblocking block) another flush is no reason to wait.
        if not self._write_lock.acquire(blocking=not in_nonblocking_block()):
            raise WouldBlock("another flush of the metric writer is under way")
        try:
            with self._lock:
                rows, self._buffer = self._buffer, []
                live = sorted(self._live_runs)
            beat = bool(live) and time.monotonic() - self._last_heartbeat >= HEARTBEAT_INTERVAL_S
            heartbeats = live if beat else []
            if rows or heartbeats or then is not None:
                self._hand_over(rows, heartbeats, then)
            if beat:
                self._last_heartbeat = time.monotonic()
        finally:
            self._write_lock.release()

    def raise_dropped(self, run_id: str | None = None) -> None:
        """Raise ``TrackingError`` if points of ``run_id`` (of any run, without one) were dropped;
        each drop is reported once."""
        with self._lock:
            if run_id is None:
                dropped, self._dropped = self._dropped, {}
            else:
                found = self._dropped.pop(run_id, None)
                dropped = {} if found is None else {run_id: found}
        if dropped:
            raise TrackingError("; ".join(m for messages in dropped.values() for m in messages))

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
                self.flush()
            except BaseException as exc:  # the points stay buffered; the next flush retries
                _log.warning("writing metrics failed, will retry: %s", exc)

    def _hand_over(
        self, rows: list[Point], heartbeats: Sequence[str], then: Callable[[C], None] | None
    ) -> None:
        try:
            self._sink.write(rows, heartbeats, then)
            return
        except PointsRefused as exc:
            if in_nonblocking_block():  # isolating takes several commits: not on the event loop
                self._requeue(rows)
                raise WouldBlock(
                    "points were refused; isolating them takes several writes"
                ) from exc
            _log.warning("%d metric point(s) refused, isolating the bad ones: %s", len(rows), exc)
        except BaseException:
            self._requeue(rows)
            raise
        by_run: dict[str, list[Point]] = {}
        for row in rows:
            by_run.setdefault(row[0], []).append(row)
        groups = list(by_run.values())
        while groups:
            group = groups.pop()
            try:
                self._sink.write(group, (), None)
            except RunRefused as exc:
                self._drop(group, exc)
            except PointsRefused as exc:
                if len(group) == 1:
                    self._drop(group, exc)
                else:
                    groups += (group[: len(group) // 2], group[len(group) // 2 :])
            except BaseException:
                self._requeue([row for g in (*groups, group) for row in g])
                raise
        self._sink.write([], heartbeats, then)

    def _requeue(self, rows: list[Point]) -> None:
        with self._lock:  # put the points back in front so a later flush retries them in order
            self._buffer[:0] = rows

    def _drop(self, rows: list[Point], reason: PointsRefused) -> None:
        run_id = rows[0][0]
        shown = ", ".join(f"{r[1]}@step {r[2]}" for r in rows[:3]) + (", ..." if rows[3:] else "")
        message = f"{len(rows)} metric point(s) of run {run_id} ({shown}) were dropped: {reason}"
        _log.error("%s", message)
        with self._lock:
            if run_id in self._dropped or len(self._dropped) < _MAX_KEPT_ERRORS:
                self._dropped.setdefault(run_id, []).append(message)


@atexit.register
def _flush_all_at_exit() -> None:
    for writer in list(_writers):
        try:
            writer.close()
        except BaseException as exc:  # at exit there is nobody left to raise to
            _log.error("metrics lost at exit: %s", exc)
