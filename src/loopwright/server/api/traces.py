"""``/api/v1/traces``: record batches of spans, read and search traces, tags, links, assessments.

Recording, tagging, linking and assessing need an editor; reading, a viewer; deleting traces,
an admin. The bodies are the JSON form of :mod:`loopwright.tracing.codec`; a malformed span is a
400 naming the span and the fix.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Response
from pydantic import Field

from ...store import limits
from ...store.home import acting_as
from ...tracing import codec
from ._deps import PREFIX, Admin, Editor, State, Viewer
from ._schemas import Body

if TYPE_CHECKING:
    from ...governance.tokens import Identity
    from ...tracing.service import TracingService

__all__ = ["MAX_SPANS_PER_REQUEST", "router"]

router = APIRouter(prefix=f"{PREFIX}/traces", tags=["traces"])

MAX_SPANS_PER_REQUEST = 50_000


class LinksIn(Body):
    prompt_versions: list[str] = Field(default_factory=list, max_length=100)
    run_id: str | None = Field(default=None, max_length=64)
    model_version: str | None = Field(default=None, max_length=300)
    gateway_route: str | None = Field(default=None, max_length=300)
    deployment: str | None = Field(default=None, max_length=300)


class RecordIn(Body):
    spans: list[dict[str, Any]] = Field(max_length=MAX_SPANS_PER_REQUEST)
    experiment_id: str | None = Field(default=None, max_length=64)
    tags: dict[str, str] = Field(default_factory=dict, max_length=100)
    metadata: dict[str, str] = Field(default_factory=dict, max_length=100)
    links: LinksIn | None = None


class SearchIn(Body):
    experiment_ids: list[str] = Field(default_factory=list, max_length=100)
    filter: str | None = Field(default=None, max_length=4000)
    max_results: int = Field(default=100, ge=1, le=1000)
    order_by: list[str] = Field(default_factory=list, max_length=10)
    page_token: str | None = Field(default=None, max_length=200)
    include_spans: bool = False


class TagValueIn(Body):
    value: str = Field(max_length=limits.TAG_VALUE)


class LinkIn(Body):
    trace_ids: list[str] = Field(min_length=1, max_length=1000)
    links: LinksIn


class DeleteIn(Body):
    trace_ids: list[str] | None = Field(default=None, max_length=10_000)
    experiment_id: str | None = Field(default=None, max_length=64)
    older_than_ms: int | None = Field(default=None, ge=0, le=limits.INT64_MAX)


class AssessmentIn(Body):
    name: str = Field(min_length=1, max_length=250)
    value: Any = None
    kind: str = "feedback"
    source_type: str = "CODE"
    source_id: str = Field(default="", max_length=250)
    rationale: str | None = Field(default=None, max_length=65_536)
    error: dict[str, Any] | None = None
    span_id: str | None = Field(default=None, max_length=16)
    metadata: dict[str, str] = Field(default_factory=dict, max_length=100)
    overrides: str | None = Field(default=None, max_length=32)


class AssessmentPatchIn(Body):
    name: str | None = Field(default=None, min_length=1, max_length=250)
    value: Any = None  # only the fields sent change (exclude_unset)
    rationale: str | None = Field(default=None, max_length=65_536)
    metadata: dict[str, str] | None = Field(default=None, max_length=100)
    valid: bool | None = None


def service(state: State, reader: Identity | None = None) -> TracingService:
    """The tracing service; ``reader``: whom a read is for (a viewer sees only their own
    gateway traces)."""
    from ...tracing.service import TracingService

    return TracingService(
        state.store, reader=None if reader is None else (reader.user, reader.role)
    )


def _links(body: LinksIn | None) -> Any:
    return None if body is None else codec.links_from_json(body.model_dump())


@router.post("", status_code=201)
def record(body: RecordIn, state: State, caller: Editor) -> dict[str, Any]:
    """Store the spans of one or more traces in one transaction (durable when this answers)."""
    spans = [codec.span_from_json(span) for span in body.spans]
    with acting_as(caller.user):
        ids = service(state).record(
            spans,
            experiment_id=body.experiment_id,
            tags=body.tags,
            links=_links(body.links),
            metadata=body.metadata,
        )
    return {"trace_ids": ids}


@router.post("/search")
def search(body: SearchIn, state: State, caller: Viewer) -> dict[str, Any]:
    page = service(state, caller).search(
        body.experiment_ids or None,
        body.filter,
        body.max_results,
        body.order_by or None,
        body.page_token,
        include_spans=body.include_spans,
    )
    return {
        "traces": [codec.trace_json(trace) for trace in page.traces],
        "next_page_token": page.next_page_token,
    }


@router.post("/links", status_code=204)
def link(body: LinkIn, state: State, caller: Editor) -> Response:
    with acting_as(caller.user):
        service(state).link(body.trace_ids, _links(body.links))
    return Response(status_code=204)


@router.post("/delete")
def delete(body: DeleteIn, state: State, caller: Admin) -> dict[str, int]:
    with acting_as(caller.user):
        deleted = service(state).delete(
            trace_ids=body.trace_ids,
            experiment_id=body.experiment_id,
            older_than_ms=body.older_than_ms,
        )
    return {"deleted": deleted}


@router.get("/{trace_id}")
def get(trace_id: str, state: State, caller: Viewer, spans: bool = True) -> dict[str, Any]:
    return codec.trace_json(service(state, caller).get(trace_id, spans=spans))


@router.put("/{trace_id}/tags/{key}", status_code=204)
def set_tag(trace_id: str, key: str, body: TagValueIn, state: State, caller: Editor) -> Response:
    with acting_as(caller.user):
        service(state).set_tag(trace_id, key, body.value)
    return Response(status_code=204)


@router.delete("/{trace_id}/tags/{key}", status_code=204)
def delete_tag(trace_id: str, key: str, state: State, caller: Editor) -> Response:
    with acting_as(caller.user):
        service(state).delete_tag(trace_id, key)
    return Response(status_code=204)


@router.post("/{trace_id}/assessments", status_code=201)
def log_assessment(
    trace_id: str, body: AssessmentIn, state: State, caller: Editor
) -> dict[str, Any]:
    with acting_as(caller.user):
        found = service(state).log_assessment(trace_id, **body.model_dump())
    return codec.assessment_json(found)


@router.get("/{trace_id}/assessments")
def assessments(trace_id: str, state: State, _: Viewer) -> dict[str, Any]:
    found = service(state).assessments(trace_id)
    return {"assessments": [codec.assessment_json(a) for a in found]}


@router.get("/{trace_id}/assessments/{assessment_id}")
def get_assessment(trace_id: str, assessment_id: str, state: State, _: Viewer) -> dict[str, Any]:
    return codec.assessment_json(service(state).get_assessment(trace_id, assessment_id))


@router.patch("/{trace_id}/assessments/{assessment_id}")
def update_assessment(
    trace_id: str, assessment_id: str, body: AssessmentPatchIn, state: State, caller: Editor
) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    with acting_as(caller.user):
        found = service(state).update_assessment(trace_id, assessment_id, **changes)
    return codec.assessment_json(found)


@router.delete("/{trace_id}/assessments/{assessment_id}", status_code=204)
def delete_assessment(trace_id: str, assessment_id: str, state: State, caller: Editor) -> Response:
    with acting_as(caller.user):
        service(state).delete_assessment(trace_id, assessment_id)
    return Response(status_code=204)
