"""Usage rows written off the request path: a queue and one writer thread.

``submit`` appends to a deque (no lock, no I/O); the thread writes what is queued every
``interval`` seconds, or sooner once ``batch`` rows wait, in one transaction. A failed write is
retried on the next round (up to ``attempts`` times, then counted as failed and logged); a full
queue (``max_queue``) drops the new row and counts it, never silently. ``close`` writes the rest,
retrying a failing sink without waiting between attempts.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .entities import UsageRecord

__all__ = ["UsageStats", "UsageWriter"]

_logger = logging.getLogger("loopwright.gateway")


@dataclass(frozen=True)
class UsageStats:
    queued: int
    written: int
    dropped: int
    failed: int


class UsageWriter:
    """Batches usage records into ``write`` (``GatewayService._record_usage``)."""

    def __init__(
        self,
        write: Callable[[Sequence[UsageRecord]], None],
        *,
        interval: float = 0.5,
        batch: int = 500,
        max_queue: int = 100_000,
        attempts: int = 5,
    ) -> None:
        self._write = write
        self._interval = interval
        self._batch = batch
        self._max_queue = max_queue
        self._attempts = attempts
        self._queue: deque[UsageRecord] = deque()
        self._wake = threading.Event()
        self._idle = threading.Condition()
        self._closed = False
        self._written = self._dropped = self._failed = 0
        self._thread = threading.Thread(target=self._run, name="lw-gateway-usage", daemon=True)
        self._thread.start()

    def submit(self, record: UsageRecord) -> bool:
        if len(self._queue) >= self._max_queue:
            self._dropped += 1
            return False
        self._queue.append(record)
        if len(self._queue) >= self._batch:
            self._wake.set()
        return True

    @property
    def stats(self) -> UsageStats:
        return UsageStats(len(self._queue), self._written, self._dropped, self._failed)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until what is queued now is written (True) or ``timeout`` passes."""
        with self._idle:
            self._wake.set()
            return self._idle.wait_for(lambda: not self._queue, timeout)

    def close(self, timeout: float = 10.0) -> None:
        self._closed = True
        self._wake.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        failures = 0
        while True:
            if not self._closed:  # once closing, retries do not wait a round
                self._wake.wait(self._interval)
            self._wake.clear()
            while self._queue:
                rows = [self._queue[i] for i in range(min(self._batch, len(self._queue)))]
                written = True
                try:
                    self._write(rows)
                except Exception:
                    failures += 1
                    _logger.exception("gateway usage: writing %d rows failed", len(rows))
                    if failures < self._attempts:
                        break  # try again next round
                    written = False
                failures = 0
                for _ in rows:
                    self._queue.popleft()
                if written:
                    self._written += len(rows)
                else:
                    self._failed += len(rows)
            with self._idle:
                if not self._queue:
                    self._idle.notify_all()
            if self._closed and not self._queue:
                return
