"""The tracing service as the client sees it, embedded (``service.py``) or remote."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from .entities import Assessment, Span, Trace, TraceLinks, TracePage

__all__ = ["Tracing"]


class Tracing(Protocol):
    def record(
        self,
        spans: Sequence[Span],
        *,
        experiment_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        links: TraceLinks | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> list[str]:
        """Store ``spans`` (of one or several traces) in one transaction; durable on return.
        ``tags``, ``links`` and ``metadata`` apply to every trace of the batch. Returns the
        trace ids, in first-seen order."""
        ...

    def get(self, trace_id: str, *, spans: bool = True) -> Trace:
        """The trace, with its spans unless ``spans=False`` (``NotFound`` names the id)."""
        ...

    def search(
        self,
        experiment_ids: Sequence[str] | None = None,
        filter: str | None = None,
        max_results: int = 100,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
        *,
        include_spans: bool = False,
    ) -> TracePage: ...

    def set_tag(self, trace_id: str, key: str, value: str) -> None: ...

    def delete_tag(self, trace_id: str, key: str) -> None: ...

    def link(self, trace_ids: Sequence[str], links: TraceLinks) -> None:
        """Add ``links`` to existing traces (a trace found later to come from a run...)."""
        ...

    def delete(
        self,
        *,
        trace_ids: Sequence[str] | None = None,
        experiment_id: str | None = None,
        older_than_ms: int | None = None,
    ) -> int: ...

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
    ) -> Assessment: ...

    def get_assessment(self, trace_id: str, assessment_id: str) -> Assessment: ...

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
    ) -> Assessment: ...

    def delete_assessment(self, trace_id: str, assessment_id: str) -> None: ...

    def assessments(self, trace_id: str) -> list[Assessment]: ...
