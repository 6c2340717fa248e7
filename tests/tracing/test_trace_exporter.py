"""The exporter loses nothing silently: a slow sink and a tiny queue still deliver every trace
(producers wait), a refusal after the bounded wait is counted and logged, a sink's failure is
counted, and traces flushed before a ``kill -9`` are in the store."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from _trace_spans import span, trace_id

from loopwright.client import Client
from loopwright.config import resolve_settings
from loopwright.errors import InvalidInput
from loopwright.tracing import exporter as exporter_module
from loopwright.tracing.entities import Span
from loopwright.tracing.exporter import ExporterStats, TraceExporter


def _trace(n: int, spans: int = 5) -> list[Span]:
    return [span(n, 0)] + [span(n, i, 0) for i in range(1, spans)]


class SlowSink:
    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.traces: set[str] = set()
        self.calls = 0
        self.gate = threading.Event()
        self.gate.set()
        self.lock = threading.Lock()

    def __call__(self, spans: list[Span], **_: Any) -> list[str]:
        self.gate.wait()
        time.sleep(self.delay)
        with self.lock:
            self.calls += 1
            self.traces.update(s.trace_id for s in spans)
        return []


def test_a_slow_sink_and_a_tiny_queue_lose_nothing() -> None:
    sink = SlowSink(delay=0.002)
    exporter = TraceExporter(sink, max_queue_spans=10, max_batch_spans=10, block_timeout=30)

    def produce(start: int) -> None:
        for n in range(start, start + 100):
            assert exporter.submit(_trace(n))

    producers = [threading.Thread(target=produce, args=(k * 100,)) for k in range(4)]
    for thread in producers:
        thread.start()
    for thread in producers:
        thread.join()
    assert exporter.flush(30)
    assert exporter.close() == ExporterStats(queued=0, exported=400, dropped=0, failed=0)
    assert sink.traces == {trace_id(n) for n in range(400)}
    assert sink.calls < 400  # batched: several traces per record call when the queue backs up


def test_a_refusal_after_the_bounded_wait_is_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = SlowSink()
    sink.gate.clear()  # the sink hangs until released
    exporter = TraceExporter(sink, max_queue_spans=5, block_timeout=0.05, flush_interval=0.01)
    assert exporter.submit(_trace(1))  # taken by the thread, stuck in the sink
    deadline = time.monotonic() + 5
    while exporter.stats.queued != 1 or exporter._queue:  # wait until it is in flight
        assert time.monotonic() < deadline
        time.sleep(0.005)
    assert exporter.submit(_trace(2))  # fills the queue
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="loopwright.tracing"):
        assert not exporter.submit(_trace(3))
    assert time.monotonic() - started >= 0.04  # the producer waited before giving up
    assert exporter.stats == ExporterStats(queued=2, exported=0, dropped=1, failed=0)
    assert "1 trace(s) dropped" in caplog.text
    sink.gate.set()
    assert exporter.flush(5)
    stats = exporter.close()
    assert (stats.exported, stats.dropped) == (2, 1)
    assert sink.traces == {trace_id(1), trace_id(2)}
    assert not exporter.submit(_trace(4))  # closed: refused, and counted
    assert exporter.stats.dropped == 2


def test_failures_are_retried_then_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exporter_module, "_RETRY_BACKOFF_S", 0.001)
    attempts = []

    def flaky(spans: list[Span], **_: Any) -> list[str]:
        attempts.append(len(spans))
        if len(attempts) < 3:
            raise OSError("database went away")
        return []

    exporter = TraceExporter(flaky, flush_interval=0.01)
    exporter.submit(_trace(1))
    assert exporter.flush(5)
    assert exporter.stats.exported == 1 and len(attempts) == 3

    def broken(spans: list[Span], **_: Any) -> list[str]:
        raise OSError("down for good")

    failing = TraceExporter(broken, flush_interval=0.01)
    failing.submit(_trace(2))
    assert failing.flush(5)
    assert failing.close().failed == 1
    exporter.close()


def test_one_refused_submission_does_not_take_its_batch_down() -> None:
    stored: set[str] = set()
    release = threading.Event()

    def picky(spans: list[Span], **_: Any) -> list[str]:
        release.wait(5)
        if any(s.name == "bad" for s in spans):
            raise InvalidInput("span 'bad' is malformed")
        stored.update(s.trace_id for s in spans)
        return []

    exporter = TraceExporter(picky, flush_interval=0.01)
    exporter.submit(_trace(1))  # taken at once; the others queue up behind it
    bad = Span(trace_id(2), "a" * 16, None, "bad", "CHAIN", 1, 2)
    exporter.submit([bad])
    exporter.submit(_trace(3))
    release.set()
    assert exporter.flush(5)
    assert exporter.close() == ExporterStats(queued=0, exported=2, dropped=0, failed=1)
    assert stored == {trace_id(1), trace_id(3)}


def test_bad_settings_are_refused() -> None:
    with pytest.raises(InvalidInput, match="at least 1"):
        TraceExporter(lambda spans, **kw: [], max_queue_spans=0)


def test_traces_flushed_before_kill_9_are_in_the_store(tmp_path: Path, db_uri: str) -> None:
    home = tmp_path / "home"
    script = textwrap.dedent(
        f"""
        import os, signal
        import loopwright as lw
        from loopwright.tracing import sdk

        from loopwright._active import default_client
        default_client({str(home)!r})

        @lw.trace(kind="CHAIN")
        def handle(n):
            with lw.span("retrieve", kind="RETRIEVER"):
                pass
            return n

        for n in range(300):
            handle(n)
        assert sdk.flush(60)
        print(sdk.exporter_stats(), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    env = {**os.environ, "LOOPWRIGHT_DB_URI": db_uri}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == -9, done.stderr
    assert "exported=300" in done.stdout and "dropped=0" in done.stdout
    settings = resolve_settings(home=home, db_uri=db_uri)
    with Client(settings) as client:
        page = client.tracing.search(max_results=1000)
    assert len(page.traces) == 300
    assert {t.span_count for t in page.traces} == {2}
