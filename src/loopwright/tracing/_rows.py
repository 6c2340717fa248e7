"""Spans, traces and assessments to and from their database rows."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .entities import Assessment, Span, SpanEvent, TokenUsage, Trace, TraceLinks

__all__ = ["SPAN_COLUMNS", "assessment_of", "span_of", "span_row", "trace_of"]

SPAN_COLUMNS = (
    "trace_id",
    "span_id",
    "parent_id",
    "name",
    "kind",
    "start_ns",
    "end_ns",
    "status",
    "status_message",
    "attributes_json",
    "events_json",
)


def span_row(span: Span) -> tuple[Any, ...]:
    events = [
        {"name": e.name, "time_ns": e.time_ns, "attributes": dict(e.attributes)}
        for e in span.events
    ]
    return (
        span.trace_id,
        span.span_id,
        span.parent_id,
        span.name,
        span.kind,
        span.start_ns,
        span.end_ns,
        span.status,
        span.status_message,
        json.dumps(dict(span.attributes), ensure_ascii=False),
        json.dumps(events, ensure_ascii=False),
    )


def span_of(row: Any) -> Span:
    events = tuple(
        SpanEvent(e["name"], int(e["time_ns"]), e.get("attributes", {}))
        for e in json.loads(row.events_json)
    )
    return Span(
        trace_id=row.trace_id,
        span_id=row.span_id,
        parent_id=row.parent_id,
        name=row.name,
        kind=row.kind,
        start_ns=int(row.start_ns),
        end_ns=None if row.end_ns is None else int(row.end_ns),
        status=row.status,
        status_message=row.status_message,
        attributes=json.loads(row.attributes_json),
        events=events,
    )


def trace_of(
    row: Any,
    *,
    tags: Mapping[str, str],
    metadata: Mapping[str, str],
    links: list[tuple[str, str]],
    spans: tuple[Span, ...] = (),
) -> Trace:
    usage = None
    if row.input_tokens is not None or row.output_tokens is not None:
        usage = TokenUsage(int(row.input_tokens or 0), int(row.output_tokens or 0))
    return Trace(
        trace_id=row.trace_id,
        experiment_id=row.experiment_id,
        request_time=int(row.request_time),
        duration_ms=None if row.duration_ms is None else int(row.duration_ms),
        state=row.state,
        request_preview=row.request_preview,
        response_preview=row.response_preview,
        tags=dict(tags),
        token_usage=usage,
        cost_usd=row.cost_usd,
        links=TraceLinks.from_pairs(links),
        spans=spans,
        metadata=dict(metadata),
        span_count=int(row.span_count),
    )


def assessment_of(row: Any) -> Assessment:
    return Assessment(
        assessment_id=row.id,
        trace_id=row.trace_id,
        name=row.name,
        kind=row.kind,
        value=None if row.value_json is None else json.loads(row.value_json),
        source_type=row.source_type,
        source_id=row.source_id,
        rationale=row.rationale,
        error=None if row.error_json is None else json.loads(row.error_json),
        span_id=row.span_id,
        valid=bool(row.valid),
        overrides=row.overrides,
        metadata=json.loads(row.metadata_json),
        created_at=int(row.created_at),
        updated_at=int(row.updated_at),
        created_by=row.created_by,
    )
