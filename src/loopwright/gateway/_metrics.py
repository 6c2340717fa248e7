"""The gateway's losses as Prometheus counters: usage rows and traces it could not store.

Both writers run off the request path and count what they lose (``UsageWriter.stats``,
``TraceExporter.stats``) in memory; the server's metrics exposition
(``GET /api/v1/monitoring/metrics``) renders these counts so an operator can alert on them.
They count since this server process's gateway started (a counter reset on restart, as
Prometheus expects of ``_total`` series).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .proxy import Gateway

__all__ = ["COUNTERS", "loss_counters"]

COUNTERS = {
    "loopwright_gateway_usage_dropped_total": (
        "Usage rows the gateway dropped because its write queue was full."
    ),
    "loopwright_gateway_usage_failed_total": (
        "Usage rows the gateway could not write to the store after its retries."
    ),
    "loopwright_gateway_traces_dropped_total": (
        "Gateway traces refused after the bounded wait because the trace queue was full."
    ),
    "loopwright_gateway_traces_failed_total": (
        "Gateway traces the trace store refused after the exporter's retries."
    ),
}


def loss_counters(gateway: Gateway | None) -> list[tuple[str, str, float]]:
    """``(name, help, value)`` for each of :data:`COUNTERS`; zeros before the gateway's first
    request (the series exist from the first scrape)."""
    usage = None if gateway is None else gateway.usage_stats
    traces = None if gateway is None else gateway.trace_stats
    values = {
        "loopwright_gateway_usage_dropped_total": 0 if usage is None else usage.dropped,
        "loopwright_gateway_usage_failed_total": 0 if usage is None else usage.failed,
        "loopwright_gateway_traces_dropped_total": 0 if traces is None else traces.dropped,
        "loopwright_gateway_traces_failed_total": 0 if traces is None else traces.failed,
    }
    return [(name, text, float(values[name])) for name, text in COUNTERS.items()]
