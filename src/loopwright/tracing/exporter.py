"""The non-blocking path from a traced call to the store: a bounded queue and a batching thread.

Callers (``@lw.trace``, the gateway) :meth:`TraceExporter.submit` finished traces and go on;
a background thread hands many traces at a time to ``record`` (the embedded service's one
transaction, or one POST to a server). Nothing is dropped silently: a full queue makes the
caller wait (backpressure) up to ``block_timeout`` seconds, and only then refuses the trace and
counts it in ``stats.dropped``; a batch the sink keeps refusing after its retries is counted in
``stats.failed``. Both are logged. ``flush()`` waits until every accepted trace is durable.

Example:
    >>> stored = []
    >>> exporter = TraceExporter(lambda spans, **kw: stored.extend(spans) or [])
    >>> span = Span("a" * 32, "b" * 16, None, "answer", "CHAIN", 1, 2)
    >>> exporter.submit([span])
    True
    >>> exporter.flush(5.0), len(stored), exporter.stats.exported
    (True, 1, 1)
    >>> _ = exporter.close()
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInput
from .entities import Span, TraceLinks

__all__ = ["ExporterStats", "TraceExporter"]

log = logging.getLogger("loopwright.tracing")

Record = Callable[..., Any]  # record(spans, *, experiment_id=, tags=, links=) -> ids

_RETRIES = 3
_RETRY_BACKOFF_S = 0.2
_LOG_EVERY_S = 10.0  # at most one drop warning per interval (each says how many so far)


@dataclass(frozen=True)
class ExporterStats:
    """Traces, not spans: ``queued`` waiting, ``exported`` durable, ``dropped`` refused after
    the bounded wait, ``failed`` the sink refused after retries."""

    queued: int
    exported: int
    dropped: int
    failed: int


@dataclass(frozen=True)
class _Item:
    spans: tuple[Span, ...]
    traces: int
    experiment_id: str | None
    tags: tuple[tuple[str, str], ...]
    links: TraceLinks | None

    @property
    def key(self) -> tuple[object, ...]:
        return (self.experiment_id, self.tags, self.links)


class TraceExporter:
    """Batches submitted traces to ``record`` on one background thread."""

    def __init__(
        self,
        record: Record,
        *,
        max_queue_spans: int = 20_000,
        max_batch_spans: int = 5_000,
        flush_interval: float = 0.2,
        block_timeout: float = 10.0,
        name: str = "loopwright-trace-exporter",
    ) -> None:
        if max_queue_spans < 1 or max_batch_spans < 1:
            raise InvalidInput("max_queue_spans and max_batch_spans must be at least 1")
        self._record = record
        self._max_queue = max_queue_spans
        self._max_batch = max_batch_spans
        self._interval = flush_interval
        self._block_timeout = block_timeout
        self._queue: deque[_Item] = deque()
        self._queued_spans = 0
        self._queued_traces = 0
        self._in_flight = 0  # traces taken by the thread, not yet settled
        self._exported = 0
        self._dropped = 0
        self._failed = 0
        self._closed = False
        self._last_warning = -_LOG_EVERY_S
        self._lock = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def stats(self) -> ExporterStats:
        with self._lock:
            return ExporterStats(
                self._queued_traces + self._in_flight, self._exported, self._dropped, self._failed
            )

    def submit(
        self,
        spans: Sequence[Span],
        *,
        experiment_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        links: TraceLinks | None = None,
    ) -> bool:
        """Queue the spans of one or more finished traces; False when refused (counted)."""
        if not spans:
            return True
        traces = len({span.trace_id for span in spans})
        item = _Item(
            tuple(spans), traces, experiment_id, tuple(sorted((tags or {}).items())), links
        )
        size = min(len(item.spans), self._max_queue)  # a huge trace fits an empty queue
        deadline = time.monotonic() + self._block_timeout
        with self._lock:
            while not self._closed and self._queued_spans + size > self._max_queue:
                left = deadline - time.monotonic()
                if left <= 0:
                    self._dropped += traces
                    self._warn_dropped()
                    return False
                self._lock.wait(left)
            if self._closed:
                self._dropped += traces
                log.warning("trace exporter is closed: %d trace(s) refused", traces)
                return False
            self._queue.append(item)
            self._queued_spans += len(item.spans)
            self._queued_traces += traces
            if self._queued_spans >= self._max_batch:
                self._lock.notify_all()
        return True

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every accepted trace is exported or failed; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            self._lock.notify_all()
            while self._queue or self._in_flight:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._lock.wait(left if left is None else min(left, 0.05))
                self._lock.notify_all()
        return True

    def close(self, timeout: float | None = 30.0) -> ExporterStats:
        """Flush, stop the thread, and log the totals; later submissions are refused."""
        self.flush(timeout)
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        self._thread.join(timeout)
        stats = self.stats
        if stats.dropped or stats.failed or stats.queued:
            log.warning("trace exporter closed: %s", stats)
        else:
            log.info("trace exporter closed: %s", stats)
        return stats

    def _warn_dropped(self) -> None:
        now = time.monotonic()
        if now - self._last_warning >= _LOG_EVERY_S:
            self._last_warning = now
            log.warning(
                "trace queue full for %.1f s (%d spans): %d trace(s) dropped so far; raise "
                "max_queue_spans or speed up the sink",
                self._block_timeout,
                self._max_queue,
                self._dropped,
            )

    # --- the thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    if self._closed:
                        return
                    self._lock.wait(self._interval)
                batch = self._take()
            if batch:
                self._export(batch)

    def _take(self) -> list[_Item]:
        batch: list[_Item] = []
        spans = 0
        while self._queue and (not batch or spans + len(self._queue[0].spans) <= self._max_batch):
            item = self._queue.popleft()
            batch.append(item)
            spans += len(item.spans)
        self._queued_spans -= spans
        traces = sum(item.traces for item in batch)
        self._queued_traces -= traces
        self._in_flight += traces
        self._lock.notify_all()  # producers waiting for room
        return batch

    def _export(self, batch: list[_Item]) -> None:
        groups: dict[tuple[object, ...], list[_Item]] = {}
        for item in batch:
            groups.setdefault(item.key, []).append(item)
        for items in groups.values():
            self._export_group(items)

    def _export_group(self, items: list[_Item]) -> None:
        traces = sum(item.traces for item in items)
        try:
            self._send(items)
            self._settle(exported=traces)
        except InvalidInput as exc:
            if len(items) > 1:  # find the bad submission, keep the others
                for item in items:
                    self._export_group([item])
                return
            log.error("trace refused by the store (%d trace(s) counted as failed): %s", traces, exc)
            self._settle(failed=traces)
        except Exception as exc:  # any sink error: counted and logged, never raised here
            log.error("trace export failed after %d tries (%d trace(s)): %s", _RETRIES, traces, exc)
            self._settle(failed=traces)

    def _send(self, items: list[_Item]) -> None:
        first = items[0]
        spans = [span for item in items for span in item.spans]
        for attempt in range(_RETRIES):
            try:
                self._record(
                    spans,
                    experiment_id=first.experiment_id,
                    tags=dict(first.tags) or None,
                    links=first.links,
                )
                return
            except InvalidInput:
                raise
            except Exception:
                if attempt == _RETRIES - 1:
                    raise
                time.sleep(_RETRY_BACKOFF_S * (attempt + 1))

    def _settle(self, *, exported: int = 0, failed: int = 0) -> None:
        with self._lock:
            self._exported += exported
            self._failed += failed
            self._in_flight -= exported + failed
            self._lock.notify_all()
