"""``POST /v1/traces``: OpenTelemetry's OTLP/HTTP trace export, protobuf or JSON.

Any OTel SDK (``OTLPSpanExporter(endpoint="http://HOST/v1/traces")``), OpenInference or
OpenLLMetry instrumentation, and MLflow's own client (which sends its spans here) record into
the store; ``x-mlflow-experiment-id`` files the traces under an experiment. The body is bounded
by the request guard (``max_request_bytes``), gzip included: the inflated body is capped too.
A body that does not decode is a 400 naming the problem. Recording needs an editor.
"""

from __future__ import annotations

import zlib
from typing import Any

import anyio
from fastapi import APIRouter, Request, Response

from ..errors import InvalidInput, RequestTooLarge
from ..store.home import acting_as
from .api._deps import Editor, State

__all__ = ["router"]

router = APIRouter(tags=["traces"])

_PROTOBUF = "application/x-protobuf"
_EXPERIMENT_HEADER = "x-mlflow-experiment-id"


@router.post("/v1/traces")
async def export(request: Request, state: State, caller: Editor) -> Response:
    """Store the spans of an ``ExportTraceServiceRequest`` in one transaction."""
    content_type = request.headers.get("content-type", _PROTOBUF).split(";")[0].strip().lower()
    if content_type not in (_PROTOBUF, "application/json", "application/protobuf"):
        raise InvalidInput(
            f"OTLP/HTTP takes application/x-protobuf or application/json, not {content_type!r}"
        )
    body = await request.body()
    encoding = request.headers.get("content-encoding", "").lower()
    if encoding == "gzip":
        body = _gunzip(body, state.settings.max_request_bytes)
    elif encoding not in ("", "identity"):
        raise InvalidInput(f"content-encoding {encoding!r} is not supported (gzip is)")
    experiment = request.headers.get(_EXPERIMENT_HEADER) or None
    json_body = content_type == "application/json"
    await anyio.to_thread.run_sync(_record, state, caller.user, body, json_body, experiment)
    if json_body:
        return Response(b"{}", media_type="application/json")
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceResponse,
    )

    return Response(ExportTraceServiceResponse().SerializeToString(), media_type=_PROTOBUF)


def _record(state: Any, user: str, body: bytes, json_body: bool, experiment: str | None) -> None:
    from ..tracing.otlp import spans_from_json, spans_from_protobuf
    from ..tracing.service import TracingService
    from .mlflow._uris import experiment_id_in

    try:
        spans = spans_from_json(body) if json_body else spans_from_protobuf(body)
    except RecursionError:
        raise InvalidInput(
            "the OTLP body nests values too deeply to decode; flatten the span attributes"
        ) from None
    with acting_as(user):
        experiment_id = None if experiment is None else experiment_id_in(state.tracking, experiment)
        TracingService(state.store).record(spans, experiment_id=experiment_id)


def _gunzip(body: bytes, limit: int) -> bytes:
    """Every gzip member of ``body`` inflated (RFC 1952 allows several), at most ``limit``
    bytes in all."""
    out: list[bytes] = []
    size = 0
    rest = body
    while rest:
        inflater = zlib.decompressobj(wbits=31)
        try:
            part = inflater.decompress(rest, limit + 1 - size)
        except zlib.error as exc:
            raise InvalidInput(f"the body is not valid gzip: {exc}") from exc
        size += len(part)
        if size > limit or inflater.unconsumed_tail:
            raise RequestTooLarge(
                f"the inflated OTLP body is over max_request_bytes ({limit} bytes); "
                "send smaller batches (the exporter's max_export_batch_size)"
            )
        if not inflater.eof:
            raise InvalidInput("the gzip body is truncated (its last member does not end)")
        out.append(part)
        rest = inflater.unused_data
    return b"".join(out)
