"""The bounds on what one trace may store, and the checks spans pass before they are stored.

Spans come from our SDK, from OTLP and from MLflow clients; :func:`prepare` checks their ids and
kinds (naming the span and the fix), runs the redactor, and caps sizes: an attribute value whose
JSON passes ``MAX_ATTRIBUTE_CHARS`` is cut to a string ending in a ``[truncated N chars]`` marker,
events past ``MAX_EVENTS_PER_SPAN`` are dropped, and spans past ``MAX_SPANS_PER_TRACE`` are left
out with their count kept in the trace's ``lw.truncated_spans`` tag — never silently.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..errors import InvalidInput
from ..store import limits
from .entities import SPAN_KINDS, SPAN_STATUSES, Span, SpanEvent
from .redaction import Redactor, get_redactor

__all__ = [
    "MAX_ATTRIBUTE_CHARS",
    "MAX_EVENTS_PER_SPAN",
    "MAX_NAME_CHARS",
    "MAX_SPANS_PER_TRACE",
    "PREVIEW_CHARS",
    "TRUNCATED_SPANS_TAG",
    "Prepared",
    "cap_text",
    "prepare",
]

MAX_ATTRIBUTE_CHARS = 32_768
MAX_EVENTS_PER_SPAN = 128
MAX_SPANS_PER_TRACE = 2_000
MAX_NAME_CHARS = 500
MAX_TIME_NS = limits.INT64_MAX  # span times are BIGINT nanoseconds since 1970 (OTLP's unsigned)
MAX_TIME_MS = limits.LAST_MS  # a trace's request time: up to 9999-12-31, as a Timestamp
PREVIEW_CHARS = 1_000
TRUNCATED_SPANS_TAG = "lw.truncated_spans"

_TRACE_ID = re.compile(r"[0-9a-f]{32}")
_SPAN_ID = re.compile(r"[0-9a-f]{16}")


class Prepared:
    """Spans grouped by trace (first-seen order), checked, redacted and capped."""

    def __init__(self) -> None:
        self.by_trace: dict[str, list[Span]] = {}
        self.truncated: dict[str, int] = {}  # trace id -> spans left out past the cap


def prepare(spans: Sequence[Span], *, redact: bool = True) -> Prepared:
    """``spans`` ready to store (see the module's docstring); ``InvalidInput`` on a bad id,
    kind or status. ``redact=False``: the sender already ran the redactor."""
    redactor = get_redactor() if redact else None
    out = Prepared()
    for span in spans:
        _check(span)
        group = out.by_trace.setdefault(span.trace_id, [])
        if len(group) >= MAX_SPANS_PER_TRACE:
            out.truncated[span.trace_id] = out.truncated.get(span.trace_id, 0) + 1
            continue
        group.append(_capped(span, redactor))
    return out


def _check(span: Span) -> None:
    if not isinstance(span.trace_id, str) or not _TRACE_ID.fullmatch(span.trace_id):
        raise InvalidInput(
            f"span {span.name!r} has trace id {span.trace_id!r}: "
            "expected 32 lowercase hex digits (an OTel trace id)"
        )
    for what, value in (("span id", span.span_id), ("parent id", span.parent_id)):
        if value is not None and (not isinstance(value, str) or not _SPAN_ID.fullmatch(value)):
            raise InvalidInput(
                f"span {span.name!r} has {what} {value!r}: expected 16 lowercase hex digits"
            )
    if span.span_id is None:
        raise InvalidInput(f"span {span.name!r} has no span id")
    if span.kind not in SPAN_KINDS:
        raise InvalidInput(
            f"span {span.name!r} has kind {span.kind!r}; kinds: {', '.join(sorted(SPAN_KINDS))}"
        )
    if span.status not in SPAN_STATUSES:
        raise InvalidInput(
            f"span {span.name!r} has status {span.status!r}; statuses: OK, ERROR, UNSET"
        )
    if not isinstance(span.start_ns, int) or (
        span.end_ns is not None and not isinstance(span.end_ns, int)
    ):
        raise InvalidInput(f"span {span.name!r}: start_ns and end_ns must be integers (ns)")
    for what, ns in (("start_ns", span.start_ns), ("end_ns", span.end_ns)):
        if ns is not None and not 0 <= ns <= MAX_TIME_NS:
            raise InvalidInput(
                f"span {span.name!r}: {what} {ns} is not a time; give nanoseconds since "
                f"1970 (0..{MAX_TIME_NS})"
            )


def check_request_time(trace_id: str, request_time: object) -> None:
    """``InvalidInput`` unless a trace can start at ``request_time`` (ms since 1970)."""
    if not isinstance(request_time, int) or not 0 <= request_time <= MAX_TIME_MS:
        raise InvalidInput(
            f"trace {trace_id}: request_time {request_time!r} is not a time; give milliseconds "
            f"since 1970 (0..{MAX_TIME_MS}, up to 9999-12-31)"
        )


def _capped(span: Span, redact: Redactor | None) -> Span:
    events = tuple(
        SpanEvent(event.name[:MAX_NAME_CHARS], event.time_ns, _attributes(event.attributes, redact))
        for event in span.events[:MAX_EVENTS_PER_SPAN]
    )
    return replace(
        span,
        name=span.name[:MAX_NAME_CHARS],
        attributes=_attributes(span.attributes, redact),
        events=events,
        status_message=cap_text(span.status_message, MAX_ATTRIBUTE_CHARS),
    )


def _attributes(attributes: Mapping[str, Any], redact: Redactor | None) -> dict[str, Any]:
    out = {}
    for key, value in attributes.items():
        key = str(key)
        if redact is not None:
            value = redact(key, value)
        out[key] = _capped_value(value)
    return out


def _capped_value(value: Any) -> Any:
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, str):
        return cap_text(value, MAX_ATTRIBUTE_CHARS)
    text = json.dumps(value, default=str, ensure_ascii=False)
    if len(text) <= MAX_ATTRIBUTE_CHARS:
        return json.loads(text)  # JSON-able from here on (tuples -> lists, objects -> str)
    return cap_text(text, MAX_ATTRIBUTE_CHARS)


def cap_text(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, the cut stated at its end."""
    if len(text) <= limit:
        return text
    keep = max(0, limit - 40)  # room for the marker
    return f"{text[:keep]}...[truncated {len(text) - keep} chars]"
