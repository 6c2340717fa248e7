"""The gateway's losses as Prometheus counters (review R2): usage rows dropped (full queue) or
failed (the store refused them), traces dropped (full exporter queue after the bounded wait)
or failed, scraped from a real server's ``/api/v1/monitoring/metrics`` on 127.0.0.1."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from _llm_stub import Stub

from loopwright.config import resolve_settings
from loopwright.errors import InvalidInput
from loopwright.gateway._usage import UsageWriter
from loopwright.gateway.entities import UsageRecord
from loopwright.gateway.proxy import Gateway
from loopwright.gateway.service import GatewayService
from loopwright.monitoring.prometheus import render
from loopwright.server.app import create_app
from loopwright.store.home import open_store
from loopwright.tracing.exporter import TraceExporter

NAMES = (
    "loopwright_gateway_usage_dropped_total",
    "loopwright_gateway_usage_failed_total",
    "loopwright_gateway_traces_dropped_total",
    "loopwright_gateway_traces_failed_total",
)


@contextmanager
def _serve(home: Path, stub: Stub) -> Iterator[tuple[str, Any]]:
    """A real server on 127.0.0.1 and its app (to give it a gateway with tiny queues), with
    route 'chat' to the stub upstream."""
    import uvicorn

    app = create_app(resolve_settings(home=home, user="ops"), auth=False)
    GatewayService(app.state.lw.store).create_route(
        "chat", {"targets": [{"name": "primary", "base_url": stub.base(), "model": "m"}]}
    )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(30)


def _scrape(url: str) -> dict[str, float]:
    text = httpx.get(f"{url}/api/v1/monitoring/metrics").raise_for_status().text
    found = {}
    for name in NAMES:
        assert f"# TYPE {name} counter" in text, text
        match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
        assert match is not None, text
        found[name] = float(match.group(1))
    return found


def _gateway(app: Any, usage: UsageWriter, exporter: TraceExporter) -> Gateway:
    gateway = Gateway(GatewayService(app.state.lw.store), exporter=exporter)
    gateway.usage.close()  # replaced by the test's writer
    gateway.usage = usage
    app.state.lw_gateway = gateway
    return gateway


def _chat(url: str, n: int = 1) -> None:
    for i in range(n):
        answer = httpx.post(
            f"{url}/v1/chat/completions",
            json={"model": "chat", "messages": [{"role": "user", "content": f"hi {i}"}]},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text


def test_drops_are_scraped_as_counters(tmp_path: Path, stub: Stub) -> None:
    with _serve(tmp_path / "home", stub) as (url, app):
        assert _scrape(url) == dict.fromkeys(NAMES, 0.0)  # present before the first request
        _dropping(url, app)


def _dropping(url: str, app: Any) -> None:
    # Sinks that hang: one usage row waits in a queue of 1, one trace is in flight and one
    # queued (a queue of one span); the rest are dropped.
    hold = threading.Event()
    exporting = threading.Event()

    def slow_usage(rows: Sequence[UsageRecord]) -> None:
        hold.wait(10)

    def slow_traces(spans: Sequence[Any], **_: Any) -> list[str]:
        exporting.set()
        hold.wait(10)
        return []

    exporter = TraceExporter(
        slow_traces, max_queue_spans=1, flush_interval=0.01, block_timeout=0.01
    )
    stuck = _gateway(app, UsageWriter(slow_usage, interval=60, max_queue=1), exporter)
    try:
        _chat(url)
        assert exporting.wait(5)  # the first trace is in the sink
        _chat(url, 2)  # its trace queued, then one dropped; both usage rows dropped
        assert _scrape(url) == {
            "loopwright_gateway_usage_dropped_total": 2.0,
            "loopwright_gateway_usage_failed_total": 0.0,
            "loopwright_gateway_traces_dropped_total": 1.0,
            "loopwright_gateway_traces_failed_total": 0.0,
        }
    finally:
        hold.set()
        stuck.close_writers()


def test_failures_are_scraped_as_counters(tmp_path: Path, stub: Stub) -> None:
    # Sinks that refuse: every row and trace counted as failed once retries are spent.
    def broken_usage(rows: Sequence[UsageRecord]) -> None:
        raise OSError("disk full")

    def refused_traces(spans: Sequence[Any], **_: Any) -> list[str]:
        raise InvalidInput("refused by the test")

    with _serve(tmp_path / "home", stub) as (url, app):
        failing = _gateway(
            app,
            UsageWriter(broken_usage, interval=0.01, attempts=1),
            TraceExporter(refused_traces, flush_interval=0.01),
        )
        _chat(url, 3)
        failing.flush(5)
        scraped = _scrape(url)
    assert scraped == {
        "loopwright_gateway_usage_dropped_total": 0.0,
        "loopwright_gateway_usage_failed_total": 3.0,
        "loopwright_gateway_traces_dropped_total": 0.0,
        "loopwright_gateway_traces_failed_total": 3.0,
    }


def test_counters_render_with_and_without_prometheus_client(tmp_path: Path) -> None:
    counters = [("loopwright_gateway_usage_dropped_total", "Rows dropped.", 7.0)]
    with open_store(resolve_settings(home=tmp_path / "home")) as store:
        texts = [render(store, use_client=c, counters=counters) for c in (True, False)]
    for text in texts:
        assert b"# TYPE loopwright_gateway_usage_dropped_total counter" in text
        assert b"\nloopwright_gateway_usage_dropped_total 7.0\n" in text
