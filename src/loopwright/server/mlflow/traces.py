"""MLflow 3's trace API over Loopwright's traces: what ``@mlflow.trace``, ``mlflow.get_trace``,
``mlflow.search_traces``, trace tags, prompt/run links and assessments call.

MLflow's client sends a trace's spans to ``POST /v1/traces`` (OTLP, :mod:`..otlp`) as they end,
then its info to ``POST /traces`` (StartTraceV3) once the root ends; both land in one stored
trace, whichever comes first. The answer to StartTraceV3 carries
``mlflow.trace.spansLocation=TRACKING_STORE``, which tells the client the spans are stored here
(no artifact upload). ``GET /version`` answers a 3.x version: the client sends spans over OTLP
only to servers of 3.4 or later.

Served under ``/api/2.0/mlflow``, ``/api/3.0/mlflow`` and their ``/ajax-api`` twins.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import PlainTextResponse
from pydantic import Field

from ...errors import InvalidInput
from ...store import limits
from ...store.home import acting_as
from ...tracing.entities import TraceLinks
from .._routing import PrefixRouter
from ..api._deps import Admin, Editor, State, Viewer
from ..auth import public
from . import traces_convert as convert
from . import traces_v2
from ._common import MlflowRoute, reply
from ._messages import Enum32, Int64, Message
from ._uris import experiment_id_in
from .traces_v2 import StartTraceV2

if TYPE_CHECKING:
    from ...governance.tokens import Identity
    from ...tracing.service import TracingService
    from .._state import ServerState

__all__ = ["MLFLOW_VERSION", "routers"]

MLFLOW_VERSION = "3.18.0"  # the MLflow server API this one answers for
_PREFIXES = ("/api/2.0/mlflow", "/api/3.0/mlflow", "/ajax-api/2.0/mlflow", "/ajax-api/3.0/mlflow")
_MAX_BATCH = 1000

router = APIRouter(route_class=MlflowRoute)


class StartTraceIn(StartTraceV2):
    trace: dict[str, Any] | None = None  # MLflow 3 (StartTraceV3); without it, MLflow 2's call


class SearchIn(Message):
    locations: list[dict[str, Any]] = Field(default_factory=list, max_length=100)
    experiment_ids: list[str] = Field(default_factory=list, max_length=100)
    filter: str | None = None
    max_results: int = Field(default=100, ge=1, le=1000)
    order_by: list[str] = Field(default_factory=list, max_length=10)
    page_token: str | None = None


class TraceRef(Message):
    trace_id: str


class BatchRef(Message):
    trace_ids: list[str] = Field(max_length=_MAX_BATCH)


class TagIn(Message):
    key: str = Field(min_length=1, max_length=250)
    value: str = Field(max_length=8000)


class TagRef(Message):
    key: str = Field(min_length=1, max_length=250)


class LinkPromptsIn(Message):
    trace_id: str
    prompt_versions: list[dict[str, Any]] = Field(max_length=100)


class LinkRunIn(Message):
    trace_ids: list[str] = Field(max_length=_MAX_BATCH)
    run_id: str = Field(min_length=1, max_length=64)


class DeleteIn(Message):
    experiment_id: str
    # Deleted: the traces at or before it (older than it + 1 ms, which must fit in 64 bits).
    max_timestamp_millis: int | None = Field(
        default=None, ge=limits.INT64_MIN, le=limits.INT64_MAX - 1
    )
    max_traces: int | None = Field(default=None, ge=1, le=limits.INT32_MAX)
    request_ids: list[str] | None = Field(default=None, max_length=10_000)


class AssessmentIn(Message):
    assessment: dict[str, Any]
    update_mask: str | dict[str, Any] | None = None


def _service(state: ServerState, reader: Identity | None = None) -> TracingService:
    """The tracing service; ``reader``: whom a read is for (a viewer sees only their own
    gateway traces)."""
    from ...tracing.service import TracingService

    return TracingService(
        state.store, reader=None if reader is None else (reader.user, reader.role)
    )


@router.post("/traces")
def start_trace(body: StartTraceIn, state: State, caller: Editor) -> Response:
    """StartTraceV3: the trace's info (its spans come over OTLP); StartTrace (v2) without."""
    if body.trace is None:
        return traces_v2.start(body, state, caller)
    info = body.trace.get("trace_info") or {}
    trace_id = convert.trace_id_in(str(info.get("trace_id", "")))
    location = (info.get("trace_location") or {}).get("mlflow_experiment") or {}
    experiment = location.get("experiment_id")
    state_name = info.get("state") or "OK"
    if state_name == "STATE_UNSPECIFIED":
        state_name = "IN_PROGRESS"
    with acting_as(caller.user):
        experiment_id = experiment_id_in(state.tracking, str(experiment)) if experiment else None
        service = _service(state)
        trace = service.record_info(
            trace_id,
            experiment_id=experiment_id,
            request_time=convert.time_ms_in(info.get("request_time")),
            duration_ms=convert.duration_ms_in(info.get("execution_duration")),
            state=state_name,
            request_preview=str(info.get("request_preview") or ""),
            response_preview=str(info.get("response_preview") or ""),
            tags=_strings(info.get("tags")),
            metadata=_strings(info.get("trace_metadata")),
        )
        for data in info.get("assessments") or ():
            _create_assessment(service, {**data, "trace_id": f"tr-{trace_id}"})
    return reply({"trace": {"trace_info": convert.trace_info_out(trace)}})


def _strings(values: Any) -> dict[str, str]:
    if not values:
        return {}
    if not isinstance(values, dict):
        raise InvalidInput("tags and trace_metadata must be maps of strings")
    return {str(k): str(v) for k, v in values.items()}


@router.post("/traces/search")
def search(body: SearchIn, state: State, caller: Viewer) -> Response:
    """SearchTracesV3 (trace infos with their assessments, newest first)."""
    experiments = list(body.experiment_ids)
    for location in body.locations:
        found = (location.get("mlflow_experiment") or {}).get("experiment_id")
        if found:
            experiments.append(str(found))
    service = _service(state, caller)
    experiment_ids = [experiment_id_in(state.tracking, e) for e in experiments]
    page = service.search(
        experiment_ids or None,
        body.filter,
        body.max_results,
        body.order_by or None,
        body.page_token,
    )
    assessed = service.assessments_of([trace.trace_id for trace in page.traces])
    message: dict[str, Any] = {
        "traces": [
            convert.trace_info_out(trace, assessed.get(trace.trace_id)) for trace in page.traces
        ]
    }
    if page.next_page_token:
        message["next_page_token"] = page.next_page_token
    return reply(message)


class CorrelationIn(Message):
    experiment_ids: list[str] = Field(default_factory=list, max_length=100)
    filter_string1: str = Field(max_length=4000)
    filter_string2: str = Field(max_length=4000)
    base_filter: str | None = Field(default=None, max_length=4000)


@router.post("/traces/calculate-filter-correlation")
def filter_correlation(body: CorrelationIn, state: State, _: Viewer) -> Response:
    """CalculateTraceFilterCorrelation: NPMI of two filters (a read sent as POST)."""
    experiment_ids = [experiment_id_in(state.tracking, e) for e in body.experiment_ids]
    try:
        found = _service(state).correlation(
            experiment_ids or None, body.filter_string1, body.filter_string2, body.base_filter
        )
    except InvalidInput as exc:
        raise InvalidInput(f"Invalid filter: {exc}") from exc
    # NaN as protobuf's JSON writes it (a string), which MLflow's client reads back.
    return reply({k: "NaN" if v != v else v for k, v in found.items()})


class MetricsIn(Message):
    experiment_ids: list[str] = Field(default_factory=list, max_length=100)
    view_type: str | Enum32 = "TRACES"
    metric_name: str = Field(max_length=100)
    aggregations: list[dict[str, Any]] = Field(min_length=1, max_length=20)
    dimensions: list[str] = Field(default_factory=list, max_length=5)
    filters: list[str] = Field(default_factory=list, max_length=20)
    time_interval_seconds: Int64 | None = None
    start_time_ms: Int64 | None = None
    end_time_ms: Int64 | None = None


_AGGREGATION_NAMES = {1: "COUNT", 2: "SUM", 3: "AVG", 4: "PERCENTILE", 5: "MIN", 6: "MAX"}


@router.post("/traces/metrics")
def trace_metrics(body: MetricsIn, state: State, _: Viewer) -> Response:
    """QueryTraceMetrics over the traces view (a read sent as POST); spans and assessments
    views and time buckets are refused, naming what is answered."""
    if body.view_type not in ("TRACES", 1):
        raise InvalidInput(f"view_type {body.view_type!r}: only TRACES is answered here")
    if body.time_interval_seconds:
        raise InvalidInput("time_interval_seconds: time buckets are not answered here")
    aggregations = []
    for item in body.aggregations:
        kind = item.get("aggregation_type")
        kind = _AGGREGATION_NAMES.get(kind, kind) if isinstance(kind, int) else kind
        aggregations.append((str(kind), item.get("percentile_value")))
    experiment_ids = [experiment_id_in(state.tracking, e) for e in body.experiment_ids]
    points = _service(state).metrics(
        experiment_ids or None,
        body.metric_name,
        aggregations,
        body.dimensions,
        body.filters,
        body.start_time_ms,
        body.end_time_ms,
    )
    for point in points:
        point["values"] = {k: "NaN" if v != v else v for k, v in point["values"].items()}
    return reply({"data_points": points})


@router.get("/traces/get")
def get_trace(q: Annotated[TraceRef, Query()], state: State, caller: Viewer) -> Response:
    """GetTrace: info and spans."""
    return reply({"trace": _trace(state, caller, q.trace_id, spans=True)})


@router.get("/traces/batchGet")
def batch_get(
    state: State, caller: Viewer, trace_ids: Annotated[list[str], Query(max_length=_MAX_BATCH)]
) -> Response:
    """BatchGetTraces: the traces found among ``trace_ids``, with spans."""
    service = _service(state, caller)
    ids = [convert.trace_id_in(trace_id) for trace_id in trace_ids]
    traces = service.get_many(ids)
    assessed = service.assessments_of([trace.trace_id for trace in traces])
    return reply(
        {"traces": [convert.trace_out(trace, assessed.get(trace.trace_id)) for trace in traces]}
    )


@router.get("/get-trace-artifact")
def trace_artifact(request_id: str, state: State, caller: Viewer) -> Response:
    """The trace-data file MLflow's web UI fetches: ``{"spans": [...]}`` as ``traces.json``."""
    trace = _service(state, caller).get(convert.trace_id_in(request_id))
    body = {"spans": [convert.span_dict_out(span) for span in trace.spans]}
    return Response(
        json.dumps(body, ensure_ascii=False),
        media_type="application/json",
        headers={"Content-Disposition": "attachment; filename=traces.json"},
    )


@router.get("/traces/{trace_id}")
def get_trace_info(trace_id: str, state: State, caller: Viewer) -> Response:
    """GetTraceInfoV3."""
    found = _trace(state, caller, trace_id, spans=False)
    return reply({"trace": {"trace_info": found["trace_info"]}})


def _trace(state: ServerState, reader: Identity, trace_id: str, *, spans: bool) -> dict[str, Any]:
    service = _service(state, reader)
    bare = convert.trace_id_in(trace_id)
    trace = service.get(bare, spans=spans)
    out = convert.trace_out(trace, service.assessments(bare))
    return out


@router.patch("/traces/{trace_id}/tags")
def set_tag(trace_id: str, body: TagIn, state: State, caller: Editor) -> Response:
    with acting_as(caller.user):
        _service(state).set_tag(convert.trace_id_in(trace_id), body.key, body.value)
    return reply()


@router.delete("/traces/{trace_id}/tags")
async def delete_tag(trace_id: str, request: Request, state: State, caller: Editor) -> Response:
    """DeleteTraceTagV3: the key in the query or, as MLflow's client sends it, the body."""
    key = request.query_params.get("key")
    if not key and await request.body():
        try:
            key = (await request.json()).get("key")
        except (ValueError, AttributeError):
            key = None
    if not isinstance(key, str) or not key:
        raise InvalidInput('delete a trace tag with its key (?key=<tag key> or {"key": ...})')
    bare = convert.trace_id_in(trace_id)

    def delete() -> None:
        with acting_as(caller.user):
            _service(state).delete_tag(bare, key)

    await anyio.to_thread.run_sync(delete)
    return reply()


@router.post("/traces/link-prompts")
def link_prompts(body: LinkPromptsIn, state: State, caller: Editor) -> Response:
    versions = tuple(f"{p.get('name')}/{p.get('version')}" for p in body.prompt_versions)
    with acting_as(caller.user):
        _link(state, [convert.trace_id_in(body.trace_id)], TraceLinks(prompt_versions=versions))
    return reply()


@router.post("/traces/link-to-run")
def link_to_run(body: LinkRunIn, state: State, caller: Editor) -> Response:
    ids = [convert.trace_id_in(trace_id) for trace_id in body.trace_ids]
    with acting_as(caller.user):
        _link(state, ids, TraceLinks(run_id=body.run_id))
    return reply()


def _link(state: ServerState, trace_ids: list[str], links: TraceLinks) -> None:
    """Link, first holding a place for traces not stored yet: MLflow's asynchronous export may
    deliver a trace after the client linked it. Its info and spans fill the place when they
    come."""
    from ..._ids import now_ms

    service = _service(state)
    stored = {trace.trace_id for trace in service.get_many(trace_ids, spans=False)}
    for trace_id in trace_ids:
        if trace_id not in stored:
            service.record_info(
                trace_id,
                experiment_id=None,
                request_time=now_ms(),
                duration_ms=None,
                state="IN_PROGRESS",
            )
    service.link(trace_ids, links)


@router.post("/traces/delete-traces")
def delete_traces(body: DeleteIn, state: State, caller: Admin) -> Response:
    """DeleteTracesV3: by ids or older than a time, within one experiment. Admin, as the
    native /api/v1/traces/delete: deleting traces erases the record of what the models did."""
    service = _service(state)
    experiment_id = experiment_id_in(state.tracking, body.experiment_id)
    ids = None
    if body.request_ids is not None:
        ids = [convert.trace_id_in(trace_id) for trace_id in body.request_ids]
    elif body.max_timestamp_millis is None:
        raise InvalidInput("delete-traces needs request_ids or max_timestamp_millis")
    elif body.max_traces is not None:
        page = service.search(
            [experiment_id],
            f"timestamp_ms <= {int(body.max_timestamp_millis)}",
            min(body.max_traces, 1000),
            ["timestamp_ms ASC"],
        )
        ids = [trace.trace_id for trace in page.traces]
    older = None if body.max_timestamp_millis is None else body.max_timestamp_millis + 1
    with acting_as(caller.user):
        deleted = service.delete(trace_ids=ids, experiment_id=experiment_id, older_than_ms=older)
    return reply({"traces_deleted": deleted})


# --- assessments ---------------------------------------------------------------------------


@router.post("/traces/{trace_id}/assessments")
def create_assessment(trace_id: str, body: AssessmentIn, state: State, caller: Editor) -> Response:
    data = {**body.assessment, "trace_id": body.assessment.get("trace_id") or trace_id}
    with acting_as(caller.user):
        found = _create_assessment(_service(state), data)
    return reply({"assessment": convert.assessment_out(found)})


def _create_assessment(service: TracingService, data: dict[str, Any]) -> Any:
    kind, value, error = convert.assessment_value_in(data)
    source = data.get("source") or {}
    overrides = data.get("overrides")
    return service.log_assessment(
        convert.trace_id_in(str(data.get("trace_id", ""))),
        str(data.get("assessment_name") or ""),
        value,
        kind=kind,
        source_type=str(source.get("source_type") or "CODE"),
        source_id=str(source.get("source_id") or ""),
        rationale=data.get("rationale"),
        error=error,
        span_id=data.get("span_id") or None,
        metadata=_strings(data.get("metadata")),
        overrides=convert.assessment_id_in(overrides) if overrides else None,
    )


@router.get("/traces/{trace_id}/assessments/{assessment_id}")
def get_assessment(trace_id: str, assessment_id: str, state: State, _: Viewer) -> Response:
    found = _service(state).get_assessment(
        convert.trace_id_in(trace_id), convert.assessment_id_in(assessment_id)
    )
    return reply({"assessment": convert.assessment_out(found)})


@router.patch("/traces/{trace_id}/assessments/{assessment_id}")
def update_assessment(
    trace_id: str, assessment_id: str, body: AssessmentIn, state: State, caller: Editor
) -> Response:
    mask = body.update_mask
    paths = mask.get("paths", []) if isinstance(mask, dict) else (mask or "").split(",")
    fields = {_snake(path.strip()) for path in paths if path.strip()}
    data = body.assessment
    changes: dict[str, Any] = {}
    if "assessment_name" in fields:
        changes["name"] = str(data.get("assessment_name"))
    if "rationale" in fields:
        changes["rationale"] = data.get("rationale") or ""
    if "metadata" in fields:
        changes["metadata"] = _strings(data.get("metadata"))
    if fields & {"feedback", "expectation"} or any(f.startswith("feedback") for f in fields):
        changes["value"] = convert.assessment_value_in(data)[1]
    if "valid" in fields:
        changes["valid"] = bool(data.get("valid"))
    with acting_as(caller.user):
        found = _service(state).update_assessment(
            convert.trace_id_in(trace_id), convert.assessment_id_in(assessment_id), **changes
        )
    return reply({"assessment": convert.assessment_out(found)})


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


@router.delete("/traces/{trace_id}/assessments/{assessment_id}")
def delete_assessment(trace_id: str, assessment_id: str, state: State, caller: Editor) -> Response:
    with acting_as(caller.user):
        _service(state).delete_assessment(
            convert.trace_id_in(trace_id), convert.assessment_id_in(assessment_id)
        )
    return reply()


def _version() -> APIRouter:
    root = APIRouter()

    @root.get("/version", response_class=PlainTextResponse, dependencies=[Depends(public)])
    def version() -> str:
        """The MLflow version this server's API matches (MLflow's clients probe it)."""
        return MLFLOW_VERSION

    return root


def routers() -> list[APIRouter]:
    """The trace routes under each MLflow prefix, and ``GET /version``."""
    found: list[APIRouter] = []
    for prefix in _PREFIXES:
        prefixed = PrefixRouter(prefix=prefix, route_class=MlflowRoute)
        prefixed.include_router(router)
        prefixed.include_router(traces_v2.router)
        found.append(prefixed)
    found.append(_version())
    return found
