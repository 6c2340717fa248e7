"""Span builders for the tracing tests: small integers become OTel ids."""

from __future__ import annotations

from typing import Any

from loopwright.tracing.entities import Span


def trace_id(n: int) -> str:
    return f"{n + 1:032x}"


def span_id(n: int) -> str:
    return f"{n + 1:016x}"


def span(
    trace: int,
    n: int,
    parent: int | None = None,
    *,
    kind: str = "CHAIN",
    start_ms: int = 1_000,
    end_ms: int | None = 1_010,
    **attributes: Any,
) -> Span:
    """Span ``n`` of trace ``trace`` (small ints become OTel ids), attributes as keywords
    with dots written as double underscores."""
    return Span(
        trace_id=trace_id(trace),
        span_id=span_id(n),
        parent_id=None if parent is None else span_id(parent),
        name=f"step-{n}",
        kind=kind,
        start_ns=start_ms * 1_000_000,
        end_ns=None if end_ms is None else end_ms * 1_000_000,
        attributes={key.replace("__", "."): value for key, value in attributes.items()},
    )
