"""Traces, spans and assessments in MLflow 3's JSON shapes (``service.proto``,
``assessments.proto``; spans as OpenTelemetry's ``Span`` message), and back.

MLflow names a trace ``tr-<32 hex>`` (the OTel trace id), an assessment ``a-<32 hex>``; times are
RFC 3339 strings, durations ``"1.5s"``, bytes base64. Spans recorded by our SDK or by OTLP
producers get MLflow's attributes (``mlflow.spanType``, ``mlflow.spanInputs``...) added from
ours, so MLflow's client shows their kind, inputs and outputs.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from ...errors import InvalidInput
from ...tracing.entities import (
    INPUT_TOKENS_KEY,
    INPUTS_KEY,
    OUTPUT_TOKENS_KEY,
    OUTPUTS_KEY,
    Assessment,
    Span,
    Trace,
)

__all__ = [
    "assessment_id_in",
    "assessment_out",
    "duration_ms_in",
    "mlflow_attributes",
    "span_dict_out",
    "span_out",
    "time_ms_in",
    "trace_id_in",
    "trace_info_out",
    "trace_out",
]

Json = dict[str, Any]
# OTel's 32 hex digits, or an id an MLflow client chose for a trace it starts without spans.
_TRACE_ID = re.compile(r"[0-9a-f]{32}|[A-Za-z0-9_.-]{1,32}")
_STATUS = {"OK": "STATUS_CODE_OK", "ERROR": "STATUS_CODE_ERROR", "UNSET": "STATUS_CODE_UNSET"}
SPANS_LOCATION_TAG = "mlflow.trace.spansLocation"


def trace_id_in(trace_id: str) -> str:
    bare = trace_id.removeprefix("tr-")
    if not _TRACE_ID.fullmatch(bare):
        raise InvalidInput(
            f"trace id {trace_id[:80]!r}: expected tr-<32 lowercase hex digits> "
            "(or up to 32 letters, digits, '.', '_', '-')"
        )
    return bare


def assessment_id_in(assessment_id: str) -> str:
    return assessment_id.removeprefix("a-")


def time_ms_in(value: Any) -> int:
    """A protobuf Timestamp as JSON (RFC 3339 string) or a number of ms, in ms."""
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return int(value)
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"request_time {value!r}: expected an RFC 3339 time")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput(f"request_time {value!r}: expected an RFC 3339 time") from exc
    return int(parsed.timestamp() * 1000)


def duration_ms_in(value: Any) -> int | None:
    """A protobuf Duration as JSON (``"1.5s"``) in ms."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not value.endswith("s"):
        raise InvalidInput(f"execution_duration {value!r}: expected a duration such as '1.5s'")
    try:
        return round(float(value[:-1]) * 1000)
    except ValueError as exc:
        raise InvalidInput(f"execution_duration {value!r}: expected a number of seconds") from exc


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _time_out(ms: int) -> str:
    stamp = _EPOCH + timedelta(milliseconds=ms)  # exact, and any stored time (0..9999-12-31)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def trace_info_out(
    trace: Trace, assessments: list[Assessment] | None = None, *, default_experiment: str = "0"
) -> Json:
    tags = dict(trace.tags)
    tags.setdefault(SPANS_LOCATION_TAG, "TRACKING_STORE")
    if trace.links.prompt_versions and "mlflow.linkedPrompts" not in tags:
        prompts = [
            {"name": name, "version": version}
            for name, _, version in (p.rpartition("/") for p in trace.links.prompt_versions)
        ]
        tags["mlflow.linkedPrompts"] = json.dumps(prompts)
    # Our own bookkeeping keys (lw.previews) are not MLflow's to see.
    metadata = {k: v for k, v in trace.metadata.items() if not k.startswith("lw.")}
    metadata.setdefault("mlflow.trace_schema.version", "3")
    if trace.token_usage is not None and "mlflow.trace.tokenUsage" not in metadata:
        usage = trace.token_usage
        metadata["mlflow.trace.tokenUsage"] = json.dumps(
            {
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                "total_tokens": usage.total_tokens,
            }
        )
    if trace.links.run_id and "mlflow.sourceRun" not in metadata:
        metadata["mlflow.sourceRun"] = trace.links.run_id
    info: Json = {
        "trace_id": f"tr-{trace.trace_id}",
        "trace_location": {
            "type": "MLFLOW_EXPERIMENT",
            "mlflow_experiment": {"experiment_id": trace.experiment_id or default_experiment},
        },
        "request_preview": trace.request_preview,
        "response_preview": trace.response_preview,
        "request_time": _time_out(trace.request_time),
        "state": trace.state,
        "trace_metadata": metadata,
        "tags": tags,
        "assessments": [assessment_out(a) for a in assessments or ()],
    }
    if trace.duration_ms is not None:
        info["execution_duration"] = f"{trace.duration_ms / 1000:.3f}s"
    return info


def trace_out(trace: Trace, assessments: list[Assessment] | None = None) -> Json:
    return {
        "trace_info": trace_info_out(trace, assessments),
        "spans": [span_out(span) for span in trace.spans],
    }


def _b64(hex_id: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_id)).decode()


def span_out(span: Span) -> Json:
    """A span as OTel's ``Span`` message in JSON, with MLflow's attributes added."""
    attributes = mlflow_attributes(span)
    out: Json = {
        "trace_id": _b64(span.trace_id),
        "span_id": _b64(span.span_id),
        "name": span.name,
        "kind": "SPAN_KIND_INTERNAL",
        "start_time_unix_nano": str(span.start_ns),
        "attributes": _key_values(attributes),
        "events": [
            {
                "time_unix_nano": str(event.time_ns),
                "name": event.name,
                "attributes": _key_values(event.attributes),
            }
            for event in span.events
        ],
        "status": {"code": _STATUS.get(span.status, "STATUS_CODE_UNSET")},
    }
    if span.status_message:
        out["status"]["message"] = span.status_message
    if span.parent_id:
        out["parent_span_id"] = _b64(span.parent_id)
    if span.end_ns is not None:
        out["end_time_unix_nano"] = str(span.end_ns)
    return out


def span_dict_out(span: Span) -> Json:
    """A span as MLflow's ``Span.to_dict()`` (its trace-data artifact): attribute values as
    JSON text."""
    return {
        "trace_id": _b64(span.trace_id),
        "span_id": _b64(span.span_id),
        "parent_span_id": _b64(span.parent_id) if span.parent_id else None,
        "name": span.name,
        "kind": "SPAN_KIND_INTERNAL",
        "start_time_unix_nano": span.start_ns,
        "end_time_unix_nano": span.end_ns,
        "events": [
            {"name": e.name, "time_unix_nano": e.time_ns, "attributes": dict(e.attributes)}
            for e in span.events
        ],
        "status": {
            "code": _STATUS.get(span.status, "STATUS_CODE_UNSET"),
            "message": span.status_message,
        },
        "attributes": {
            key: json.dumps(value, ensure_ascii=False)
            for key, value in mlflow_attributes(span).items()
        },
        "links": [],
    }


def mlflow_attributes(span: Span) -> dict[str, Any]:
    """The span's attributes with MLflow's own added from ours (kind, inputs, outputs, usage)."""
    attributes = dict(span.attributes)
    attributes.setdefault("mlflow.spanType", span.kind)
    if INPUTS_KEY in attributes:
        attributes.setdefault("mlflow.spanInputs", attributes.pop(INPUTS_KEY))
    if OUTPUTS_KEY in attributes:
        attributes.setdefault("mlflow.spanOutputs", attributes.pop(OUTPUTS_KEY))
    if INPUT_TOKENS_KEY in attributes or OUTPUT_TOKENS_KEY in attributes:
        tokens_in = int(attributes.get(INPUT_TOKENS_KEY) or 0)
        tokens_out = int(attributes.get(OUTPUT_TOKENS_KEY) or 0)
        attributes.setdefault(
            "mlflow.chat.tokenUsage",
            {
                "input_tokens": tokens_in,
                "output_tokens": tokens_out,
                "total_tokens": tokens_in + tokens_out,
            },
        )
    return attributes


def _key_values(attributes: Mapping[str, Any]) -> list[Json]:
    return [{"key": key, "value": _any_value(value)} for key, value in attributes.items()]


def _any_value(value: Any) -> Json:
    if value is None:
        return {}
    if isinstance(value, bool):
        return {"bool_value": value}
    if isinstance(value, int):
        return {"int_value": str(value)}
    if isinstance(value, float):
        return {"double_value": value}
    if isinstance(value, str):
        return {"string_value": value}
    if isinstance(value, list | tuple):
        return {"array_value": {"values": [_any_value(item) for item in value]}}
    if isinstance(value, dict):
        return {"kvlist_value": {"values": _key_values({str(k): v for k, v in value.items()})}}
    return {"string_value": str(value)}


def assessment_out(assessment: Assessment) -> Json:
    out: Json = {
        "assessment_id": f"a-{assessment.assessment_id}",
        "assessment_name": assessment.name,
        "trace_id": f"tr-{assessment.trace_id}",
        "source": {"source_type": assessment.source_type, "source_id": assessment.source_id},
        "create_time": _time_out(assessment.created_at),
        "last_update_time": _time_out(assessment.updated_at),
        "metadata": dict(assessment.metadata),
        "valid": assessment.valid,
    }
    if assessment.kind == "expectation":
        value = assessment.value
        if value is None or isinstance(value, int | float | bool | str):
            out["expectation"] = {"value": value}
        else:  # lists and objects travel as JSON text, as MLflow writes them
            serialized = {"serialization_format": "JSON_FORMAT", "value": json.dumps(value)}
            out["expectation"] = {"serialized_value": serialized}
    else:
        feedback: Json = {"value": assessment.value}
        if assessment.error:
            feedback["error"] = dict(assessment.error)
        out["feedback"] = feedback
    if assessment.span_id:
        out["span_id"] = assessment.span_id
    if assessment.rationale is not None:
        out["rationale"] = assessment.rationale
    if assessment.overrides:
        out["overrides"] = f"a-{assessment.overrides}"
    return out


def assessment_value_in(data: Mapping[str, Any]) -> tuple[str, Any, Json | None]:
    """(kind, value, error) of an MLflow assessment message."""
    if "expectation" in data:
        expectation = data["expectation"] or {}
        if "serialized_value" in expectation:
            serialized = expectation["serialized_value"] or {}
            try:
                return "expectation", json.loads(serialized.get("value", "null")), None
            except ValueError as exc:
                raise InvalidInput(f"expectation's serialized value is not JSON: {exc}") from exc
        return "expectation", expectation.get("value"), None
    feedback = data.get("feedback")
    if feedback is None:
        raise InvalidInput("an assessment needs a feedback or an expectation")
    error = feedback.get("error") or data.get("error")
    return "feedback", feedback.get("value"), None if error is None else dict(error)
