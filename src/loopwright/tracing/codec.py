"""The JSON form of spans, traces and assessments (the native REST API and ``traces export``).

Example:
    >>> span = Span("a" * 32, "b" * 16, None, "answer", "CHAIN", 1, 2)
    >>> span_from_json(span_json(span)) == span
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from ..errors import InvalidInput
from .entities import Assessment, Span, SpanEvent, TokenUsage, Trace, TraceLinks

__all__ = [
    "assessment_from_json",
    "assessment_json",
    "links_from_json",
    "links_json",
    "span_from_json",
    "span_json",
    "trace_from_json",
    "trace_json",
]

Json = dict[str, Any]


def span_json(span: Span) -> Json:
    return {
        "trace_id": span.trace_id,
        "span_id": span.span_id,
        "parent_id": span.parent_id,
        "name": span.name,
        "kind": span.kind,
        "start_ns": span.start_ns,
        "end_ns": span.end_ns,
        "status": span.status,
        "status_message": span.status_message,
        "attributes": dict(span.attributes),
        "events": [
            {"name": e.name, "time_ns": e.time_ns, "attributes": dict(e.attributes)}
            for e in span.events
        ],
    }


def span_from_json(data: Mapping[str, Any]) -> Span:
    try:
        return Span(
            trace_id=data["trace_id"],
            span_id=data["span_id"],
            parent_id=data.get("parent_id"),
            name=str(data["name"]),
            kind=data.get("kind", "UNKNOWN"),
            start_ns=data["start_ns"],
            end_ns=data.get("end_ns"),
            status=data.get("status", "OK"),
            status_message=data.get("status_message", ""),
            attributes=dict(data.get("attributes") or {}),
            events=tuple(
                SpanEvent(str(e["name"]), int(e["time_ns"]), dict(e.get("attributes") or {}))
                for e in data.get("events") or ()
            ),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidInput(
            f"a span needs trace_id, span_id, name and start_ns (and well-formed events): {exc!r}"
        ) from exc


def links_json(links: TraceLinks) -> Json:
    data = asdict(links)
    data["prompt_versions"] = list(links.prompt_versions)
    return data


def links_from_json(data: Mapping[str, Any] | None) -> TraceLinks | None:
    if data is None:
        return None
    return TraceLinks(
        prompt_versions=tuple(data.get("prompt_versions") or ()),
        run_id=data.get("run_id"),
        model_version=data.get("model_version"),
        gateway_route=data.get("gateway_route"),
        deployment=data.get("deployment"),
    )


def trace_json(trace: Trace) -> Json:
    usage = trace.token_usage
    return {
        "trace_id": trace.trace_id,
        "experiment_id": trace.experiment_id,
        "request_time": trace.request_time,
        "duration_ms": trace.duration_ms,
        "state": trace.state,
        "request_preview": trace.request_preview,
        "response_preview": trace.response_preview,
        "tags": dict(trace.tags),
        "metadata": dict(trace.metadata),
        "token_usage": None
        if usage is None
        else {
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "total_tokens": usage.total_tokens,
        },
        "cost_usd": trace.cost_usd,
        "links": links_json(trace.links),
        "span_count": trace.span_count,
        "spans": [span_json(span) for span in trace.spans],
    }


def trace_from_json(data: Mapping[str, Any]) -> Trace:
    usage = data.get("token_usage")
    return Trace(
        trace_id=data["trace_id"],
        experiment_id=data.get("experiment_id"),
        request_time=int(data["request_time"]),
        duration_ms=data.get("duration_ms"),
        state=data["state"],
        request_preview=data.get("request_preview", ""),
        response_preview=data.get("response_preview", ""),
        tags=dict(data.get("tags") or {}),
        token_usage=None
        if usage is None
        else TokenUsage(int(usage["input_tokens"]), int(usage["output_tokens"])),
        cost_usd=data.get("cost_usd"),
        links=links_from_json(data.get("links")) or TraceLinks(),
        spans=tuple(span_from_json(span) for span in data.get("spans") or ()),
        metadata=dict(data.get("metadata") or {}),
        span_count=int(data.get("span_count", 0)),
    )


def assessment_json(assessment: Assessment) -> Json:
    data = asdict(assessment)
    data["metadata"] = dict(assessment.metadata)
    data["error"] = None if assessment.error is None else dict(assessment.error)
    return data


def assessment_from_json(data: Mapping[str, Any]) -> Assessment:
    return Assessment(**{**data, "metadata": dict(data.get("metadata") or {})})
