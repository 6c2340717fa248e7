"""OTLP/HTTP trace requests (protobuf or JSON) to spans, with GenAI conventions mapped.

Three attribute dialects arrive: MLflow's (``mlflow.spanType``, JSON-encoded values), the
OpenTelemetry GenAI semantic conventions (``gen_ai.operation.name``, ``gen_ai.usage.*``) and
OpenInference (``openinference.span.kind``, ``llm.token_count.*``, ``input.value``). Each span
keeps its attributes as sent and gains the canonical ones the store
summarises: its kind, ``gen_ai.usage.input_tokens``/``output_tokens`` and ``lw.cost_usd``.
Previews come from whichever input/output attribute is present (``summary.py``), GenAI spans
included.

Example:
    >>> kind_of({"gen_ai.operation.name": "execute_tool"})
    'TOOL'
    >>> kind_of({"openinference.span.kind": "RETRIEVER"})
    'RETRIEVER'
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from ..errors import InvalidInput
from .entities import COST_KEY, INPUT_TOKENS_KEY, OUTPUT_TOKENS_KEY, SPAN_KINDS, Span, SpanEvent

__all__ = ["kind_of", "normalized", "spans_from_json", "spans_from_protobuf"]

_GENAI_OPERATIONS = {
    "chat": "CHAT_MODEL",
    "text_completion": "LLM",
    "generate_content": "LLM",
    "embeddings": "EMBEDDING",
    "retrieval": "RETRIEVER",
    "execute_tool": "TOOL",
    "invoke_agent": "AGENT",
    "create_agent": "AGENT",
    "invoke_workflow": "CHAIN",
    "plan": "AGENT",
}
_OPENINFERENCE = {"PROMPT": "CHAIN", "DECISION": "CHAIN"}
_STATUS = {0: "UNSET", 1: "OK", 2: "ERROR"}
_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


def kind_of(attributes: Mapping[str, Any]) -> str:
    """The span kind the attributes declare, in MLflow's, OpenInference's or GenAI's terms."""
    for key in ("mlflow.spanType", "openinference.span.kind"):
        value = attributes.get(key)
        if isinstance(value, str):
            upper = value.upper()
            upper = _OPENINFERENCE.get(upper, upper)
            if upper in SPAN_KINDS:
                return upper
    operation = attributes.get("gen_ai.operation.name")
    if isinstance(operation, str) and operation in _GENAI_OPERATIONS:
        return _GENAI_OPERATIONS[operation]
    return "UNKNOWN"


def normalized(attributes: dict[str, Any]) -> dict[str, Any]:
    """``attributes`` with the canonical usage and cost keys added where another dialect
    states them (MLflow's client sends its values decoded, as OTLP values, not JSON)."""
    out = dict(attributes)
    usage = out.get("mlflow.chat.tokenUsage")
    pairs = (
        (INPUT_TOKENS_KEY, ("llm.token_count.prompt", "gen_ai.usage.prompt_tokens")),
        (OUTPUT_TOKENS_KEY, ("llm.token_count.completion", "gen_ai.usage.completion_tokens")),
    )
    for canonical, others in pairs:
        if canonical in out:
            continue
        for other in others:
            if _is_int(out.get(other)):
                out[canonical] = int(out[other])
                break
        else:
            key = "input_tokens" if canonical == INPUT_TOKENS_KEY else "output_tokens"
            if isinstance(usage, dict) and _is_int(usage.get(key)):
                out[canonical] = int(usage[key])
    cost = out.get("mlflow.llm.cost")
    if COST_KEY not in out and isinstance(cost, dict) and _is_number(cost.get("total_cost")):
        out[COST_KEY] = float(cost["total_cost"])
    return out


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def spans_from_protobuf(body: bytes) -> list[Span]:
    """The spans of an ``ExportTraceServiceRequest``; ``InvalidInput`` names what is wrong."""
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError as exc:
        raise InvalidInput(
            f"the body is not an OTLP ExportTraceServiceRequest in protobuf ({exc}); "
            "send Content-Type: application/json for OTLP/JSON"
        ) from exc
    return _spans(request)


def spans_from_json(body: bytes) -> list[Span]:
    """The spans of an OTLP/JSON request (ids in hex, as the OTLP/JSON encoding has them)."""
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    try:
        data = json.loads(body)
        for resource in data.get("resourceSpans", ()):
            for scope in resource.get("scopeSpans", ()):
                for span in scope.get("spans", ()):
                    for field in _ID_FIELDS:
                        if span.get(field):
                            span[field] = base64.b64encode(bytes.fromhex(span[field])).decode()
        request = json_format.ParseDict(data, ExportTraceServiceRequest())
    except (ValueError, TypeError, AttributeError, json_format.ParseError) as exc:
        raise InvalidInput(
            f"the body is not an OTLP/JSON ExportTraceServiceRequest: {exc}"
        ) from exc
    return _spans(request)


def _spans(request: Any) -> list[Span]:
    out = []
    for resource in request.resource_spans:
        for scope in resource.scope_spans:
            for span in scope.spans:
                out.append(_span(span))
    return out


def _span(span: Any) -> Span:
    trace_id, span_id = span.trace_id.hex(), span.span_id.hex()
    if len(trace_id) != 32 or len(span_id) != 16:
        raise InvalidInput(
            f"span {span.name!r}: trace id {trace_id!r} / span id {span_id!r} must be 16 and 8 "
            "bytes (OTLP)"
        )
    attributes = normalized({kv.key: _value(kv.value) for kv in span.attributes})
    events = tuple(
        SpanEvent(
            event.name,
            int(event.time_unix_nano),
            {kv.key: _value(kv.value) for kv in event.attributes},
        )
        for event in span.events
    )
    return Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_id=span.parent_span_id.hex() or None,
        name=span.name,
        kind=kind_of(attributes),
        start_ns=int(span.start_time_unix_nano),
        end_ns=int(span.end_time_unix_nano) or None,
        status=_STATUS.get(span.status.code, "UNSET"),
        status_message=span.status.message,
        attributes=attributes,
        events=events,
    )


def _value(value: Any) -> Any:
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [_value(item) for item in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, which)
