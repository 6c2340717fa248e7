"""``RemoteTracing``: traces over the server's ``/api/v1/traces`` (the ``Tracing`` protocol).

Spans are checked, capped and redacted here, before they leave the process; the server applies
its own redactor as well (masking twice changes nothing).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from ..tracing.caps import prepare
from ..tracing.codec import (
    assessment_from_json,
    links_json,
    span_json,
    trace_from_json,
)
from ..tracing.entities import Assessment, Span, Trace, TraceLinks, TracePage
from ._http import Http

__all__ = ["RemoteTracing"]

_MAX_POST_CHARS = 4 << 20  # well under a server's max_request_bytes (32 MiB by default)
_BASE = "/traces"  # under the client's /api/v1


class RemoteTracing:
    """Traces on a Loopwright server (recording needs an editor token; reading, a viewer)."""

    def __init__(self, http: Http) -> None:
        self._http = http

    def record(
        self,
        spans: Sequence[Span],
        *,
        experiment_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        links: TraceLinks | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> list[str]:
        """Each POST is one transaction on the server; a batch whose JSON would pass
        ``_MAX_POST_CHARS`` goes in several, whole traces each."""
        prepared = prepare(spans)  # checked, redacted and capped before sending
        common = {
            "experiment_id": experiment_id,
            "tags": dict(tags or {}),
            "metadata": dict(metadata or {}),
            "links": None if links is None else links_json(links),
        }
        ids: list[str] = []
        chunk: list[dict[str, Any]] = []
        size = 0
        for group in prepared.by_trace.values():
            encoded = [span_json(span) for span in group]
            weight = len(json.dumps(encoded, ensure_ascii=False))
            if chunk and size + weight > _MAX_POST_CHARS:
                ids += self._http.post(_BASE, {**common, "spans": chunk})["trace_ids"]
                chunk, size = [], 0
            chunk += encoded
            size += weight
        if chunk:
            ids += self._http.post(_BASE, {**common, "spans": chunk})["trace_ids"]
        return ids

    def get(self, trace_id: str, *, spans: bool = True) -> Trace:
        path = f"{_BASE}/{quote(trace_id, safe='')}"
        return trace_from_json(self._http.get(path, spans=str(spans).lower()))

    def search(
        self,
        experiment_ids: Sequence[str] | None = None,
        filter: str | None = None,
        max_results: int = 100,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
        *,
        include_spans: bool = False,
    ) -> TracePage:
        body = {
            "experiment_ids": list(experiment_ids or ()),
            "filter": filter,
            "max_results": max_results,
            "order_by": list(order_by or ()),
            "page_token": page_token,
            "include_spans": include_spans,
        }
        data = self._http.post(f"{_BASE}/search", body)
        return TracePage(
            [trace_from_json(item) for item in data["traces"]], data.get("next_page_token")
        )

    def set_tag(self, trace_id: str, key: str, value: str) -> None:
        self._http.request("PUT", self._tag(trace_id, key), json_body={"value": value})

    def delete_tag(self, trace_id: str, key: str) -> None:
        self._http.request("DELETE", self._tag(trace_id, key))

    def _tag(self, trace_id: str, key: str) -> str:
        return f"{_BASE}/{quote(trace_id, safe='')}/tags/{quote(key, safe='')}"

    def link(self, trace_ids: Sequence[str], links: TraceLinks) -> None:
        self._http.post(
            f"{_BASE}/links", {"trace_ids": list(trace_ids), "links": links_json(links)}
        )

    def delete(
        self,
        *,
        trace_ids: Sequence[str] | None = None,
        experiment_id: str | None = None,
        older_than_ms: int | None = None,
    ) -> int:
        body = {
            "trace_ids": None if trace_ids is None else list(trace_ids),
            "experiment_id": experiment_id,
            "older_than_ms": older_than_ms,
        }
        return int(self._http.post(f"{_BASE}/delete", body)["deleted"])

    def log_assessment(
        self,
        trace_id: str,
        name: str,
        value: Any,
        *,
        kind: str = "feedback",
        source_type: str = "CODE",
        source_id: str = "",
        rationale: str | None = None,
        error: Mapping[str, Any] | None = None,
        span_id: str | None = None,
        metadata: Mapping[str, str] | None = None,
        overrides: str | None = None,
    ) -> Assessment:
        body = {
            "name": name,
            "value": value,
            "kind": kind,
            "source_type": source_type,
            "source_id": source_id,
            "rationale": rationale,
            "error": None if error is None else dict(error),
            "span_id": span_id,
            "metadata": dict(metadata or {}),
            "overrides": overrides,
        }
        return assessment_from_json(self._http.post(self._assessments(trace_id), body))

    def get_assessment(self, trace_id: str, assessment_id: str) -> Assessment:
        return assessment_from_json(self._http.get(self._assessment(trace_id, assessment_id)))

    def update_assessment(
        self,
        trace_id: str,
        assessment_id: str,
        *,
        name: str | None = None,
        value: Any = ...,
        rationale: str | None = None,
        metadata: Mapping[str, str] | None = None,
        valid: bool | None = None,
    ) -> Assessment:
        body: dict[str, Any] = {
            "name": name,
            "rationale": rationale,
            "metadata": None if metadata is None else dict(metadata),
            "valid": valid,
        }
        if value is not ...:
            body["value"] = value
        path = self._assessment(trace_id, assessment_id)
        return assessment_from_json(self._http.request("PATCH", path, json_body=body))

    def delete_assessment(self, trace_id: str, assessment_id: str) -> None:
        self._http.request("DELETE", self._assessment(trace_id, assessment_id))

    def assessments(self, trace_id: str) -> list[Assessment]:
        data = self._http.get(self._assessments(trace_id))
        return [assessment_from_json(item) for item in data["assessments"]]

    def _assessments(self, trace_id: str) -> str:
        return f"{_BASE}/{quote(trace_id, safe='')}/assessments"

    def _assessment(self, trace_id: str, assessment_id: str) -> str:
        return f"{self._assessments(trace_id)}/{quote(assessment_id, safe='')}"
