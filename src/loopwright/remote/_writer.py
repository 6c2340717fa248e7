"""The remote metric writer: logging a point costs an append; a thread POSTs batches.

It keeps the embedded writer's contract (``add``, ``add_many``, ``track``, ``untrack``,
``flush``, ``close``): points are sent every ``interval`` seconds, when ``max_points`` are
waiting, on ``flush()`` and at exit. A batch the server could not take because it was
unreachable is kept and retried; one it refused (the run was deleted …) is dropped. Either
error is raised at the next ``flush()``. Open runs get a heartbeat every 15 seconds.
"""

from __future__ import annotations

import atexit
import math
import threading
import time
import weakref
from collections import defaultdict
from collections.abc import Iterable

from .._logging import get_logger
from ..errors import LoopwrightError, StoreError, TrackingError
from ..tracking._writer import HEARTBEAT_INTERVAL_S, Point
from ._http import Http

__all__ = ["RemoteMetricWriter"]

_log = get_logger(__name__)
_writers: weakref.WeakSet[RemoteMetricWriter] = weakref.WeakSet()
_POINTS_PER_REQUEST = 10_000


class RemoteMetricWriter:
    """Buffers metric points and sends them to the server from a daemon thread."""

    def __init__(self, http: Http, *, interval: float = 1.0, max_points: int = 20_000) -> None:
        self._http = http
        self.interval = interval
        self.max_points = max_points
        self._buffer: list[Point] = []
        self._lock = threading.Lock()  # guards _buffer and _live_runs
        self._send_lock = threading.Lock()  # one batch on the wire at a time, in order
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._live_runs: set[str] = set()
        self._last_heartbeat = time.monotonic()
        self._thread: threading.Thread | None = None
        _writers.add(self)

    # --- the caller's side ---------------------------------------------------------------

    def add(self, row: Point) -> None:
        self.add_many((row,))

    def add_many(self, rows: Iterable[Point]) -> None:
        with self._lock:
            self._buffer.extend(rows)
            size = len(self._buffer)
        if self._thread is None:
            self._start()
        if size >= self.max_points:
            self._wake.set()

    def track(self, run_id: str) -> None:
        """Send heartbeats for the run while it is open."""
        with self._lock:
            self._live_runs.add(run_id)
        if self._thread is None:
            self._start()

    def untrack(self, run_id: str) -> None:
        with self._lock:
            self._live_runs.discard(run_id)

    def flush(self) -> None:
        """Send everything buffered so far, now; raise any error a background send met."""
        self._send_pending()
        error, self._error = self._error, None
        if error is not None:
            raise TrackingError(f"metrics could not be sent to the server: {error}") from error

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
                target=self._loop, name="loopwright-remote-metrics", daemon=True
            )
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            try:
                self._send_pending()
                self._beat()
            except BaseException as exc:  # kept for the caller's next flush()
                _log.warning("sending metrics failed: %s", exc)
                self._error = exc

    def _beat(self) -> None:
        if time.monotonic() - self._last_heartbeat < HEARTBEAT_INTERVAL_S:
            return
        self._last_heartbeat = time.monotonic()
        with self._lock:
            live = sorted(self._live_runs)
        for run_id in live:
            self._http.post(f"/runs/{run_id}/heartbeat")

    def _send_pending(self) -> None:
        with self._send_lock:
            with self._lock:
                rows, self._buffer = self._buffer, []
            by_run: dict[str, list[dict[str, object]]] = defaultdict(list)
            for run_id, key, step, timestamp, value, is_nan in rows:
                by_run[run_id].append(
                    {
                        "key": key,
                        "value": math.nan if is_nan else value,
                        "step": step,
                        "timestamp": timestamp,
                    }
                )
            failed: list[Point] = []
            first_error: LoopwrightError | None = None
            for run_id, points in by_run.items():
                try:
                    for start in range(0, len(points), _POINTS_PER_REQUEST):
                        chunk = points[start : start + _POINTS_PER_REQUEST]
                        self._http.post(f"/runs/{run_id}/metrics", {"metrics": chunk})
                except StoreError as exc:  # unreachable or failing server: retry later
                    failed.extend(r for r in rows if r[0] == run_id)
                    first_error = first_error or exc
                except LoopwrightError as exc:  # refused: retrying cannot help
                    first_error = first_error or TrackingError(
                        f"{len(points)} metric point(s) of run {run_id} were dropped: {exc.message}"
                    )
            if failed:
                with self._lock:
                    self._buffer[:0] = failed
            if first_error is not None:
                raise first_error


@atexit.register
def _flush_all_at_exit() -> None:
    for writer in list(_writers):
        try:
            writer.close()
        except BaseException as exc:  # at exit there is nobody left to raise to
            _log.error("metrics lost at exit: %s", exc)
