"""``/api/v1/monitoring``: monitors and their runs, references, late labels, performance,
variant comparison, alerts, reports and Prometheus gauges.

Reading needs a viewer; creating, running and deleting monitors, building references and
logging labels need an editor. Times in query strings are ISO 8601 (without a zone: UTC), as the
prediction log's routes take them; times in bodies are UTC milliseconds. A label upload carries at
most :data:`MAX_LABELS` labels (the remote client splits larger ones); a read of labels returns
at most :data:`MAX_LABELS_READ`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import Field

from ...errors import InvalidInput, LimitExceeded
from ...store import limits
from ._deps import PREFIX, Editor, State, Viewer
from ._schemas import Body, Number, Out

if TYPE_CHECKING:
    from ...governance.tokens import Identity
    from ...monitoring.service import MonitoringService

__all__ = ["MAX_LABELS", "MAX_LABELS_READ", "router"]

router = APIRouter(prefix=f"{PREFIX}/monitoring", tags=["monitoring"])

MAX_LABELS = 100_000  # labels one request may carry
MAX_LABELS_READ = 1_000_000  # labels one read may return (as JSON: ~100 bytes each)
_LAST_MS = limits.LAST_MS
_FIRST_MS = -62_135_596_800_000  # 0001-01-01T00:00:00Z, the first
_MAX_SPAN_S = 10**12  # far past any sensible window; the service sets the real bound
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Label = bool | Number | str
Name = Annotated[str, Field(min_length=1, max_length=limits.MONITOR_NAME)]
ListItem = Annotated[str, Field(min_length=1, max_length=limits.KEY)]


# --- bodies ------------------------------------------------------------------------------------


class MonitorIn(Body):
    name: Name
    deployment: str = Field(min_length=1, max_length=limits.DEPLOYMENT_NAME)
    reference: str = Field(default="auto", min_length=1, max_length=600)
    window_s: float | int = Field(default=3600, gt=0, le=_MAX_SPAN_S, allow_inf_nan=False)
    every_s: float | int | None = Field(default=None, gt=0, le=_MAX_SPAN_S, allow_inf_nan=False)
    tests: list[ListItem] = Field(default=[], max_length=100)
    columns: list[ListItem] = Field(default=[], max_length=10_000)
    thresholds: dict[str, Number] = Field(default={}, max_length=10_000)
    alerts: list[Annotated[str, Field(max_length=400)]] = Field(default=[], max_length=1000)
    webhook: str | None = Field(default=None, max_length=2000)
    webhook_format: Literal["json", "slack"] = "json"
    task: Literal["classification", "regression"] | None = None
    description: str | None = Field(default=None, max_length=10_000)


class MonitorRunIn(Body):
    at: int | None = Field(default=None, ge=_FIRST_MS, le=_LAST_MS)  # UTC ms; default now
    executor: str = Field(default="local", max_length=40)  # checked by the service


class MonitorBackfillIn(Body):
    since: int = Field(ge=_FIRST_MS, le=_LAST_MS)  # UTC ms
    until: int | None = Field(default=None, ge=_FIRST_MS, le=_LAST_MS)  # UTC ms; default now
    executor: str = Field(default="local", max_length=40)


class ReferenceIn(Body):
    source: str = Field(min_length=1, max_length=600)
    name: Name | None = None


class LabelRowIn(Body):
    request_id: str = Field(min_length=1, max_length=limits.REQUEST_ID)
    row: int = Field(default=0, ge=0, le=2**31 - 1)
    label: Label


class LabelsIn(Body):
    """Either ``labels`` (``{request_id: label}``, row 0) or ``rows``, not both."""

    labels: dict[str, Label] | None = Field(default=None, max_length=MAX_LABELS)
    rows: list[LabelRowIn] | None = Field(default=None, max_length=MAX_LABELS)


# --- answers -----------------------------------------------------------------------------------


class TestResultOut(Out):
    column: str
    test: str
    statistic: float
    threshold: float
    drifted: bool
    p_value: float | None
    kind: str
    detail: dict[str, Any]


class DistributionOut(Out):
    column: str
    kind: str
    bins: list[float | str]
    reference: list[float]
    current: list[float]


class DriftResultOut(Out):
    tests: list[TestResultOut]
    dataset_drift: bool
    drifted_columns: list[str]
    share_drifted: float
    rule: str
    correction: str | None
    reference_rows: int
    current_rows: int
    distributions: list[DistributionOut]


class PerformanceOut(Out):
    task: str
    metrics: dict[str, float]
    rows: int
    predictions: int
    coverage: float
    by_version: dict[str, dict[str, float]]
    by_slice: dict[str, dict[str, dict[str, float]]]


class AlertRuleOut(Out):
    metric: str
    op: str
    threshold: float


class MonitorOut(Out):
    id: str
    name: str
    deployment: str
    reference: str
    reference_id: str | None
    window_s: int
    every_s: int | None
    tests: list[str]
    columns: list[str]
    thresholds: dict[str, float]
    alerts: list[AlertRuleOut]
    webhook: str | None
    webhook_format: str
    task: str | None
    description: str | None
    created_by: str
    created_at: int
    updated_at: int
    last_run_at: int | None


class MonitorRunOut(Out):
    id: str
    monitor: str
    started_at: int
    finished_at: int
    window_start: int
    window_end: int
    status: str
    rows: int
    model_versions: list[str]
    drift: DriftResultOut | None
    performance: PerformanceOut | None
    alerts: list[str]
    error: str | None


class ReferenceOut(Out):
    id: str
    name: str
    source: str
    dataset_version_id: str | None
    model_version_id: str | None
    sketch_blob: str
    columns: list[str]
    rows: int
    created_by: str
    created_at: int
    note: str | None = None


class LabelImportOut(Out):
    deployment: str
    rows: int
    updated: int


class LabelsOut(Out):
    columns: list[str]
    rows: list[list[Any]]


class VariantEstimateOut(Out):
    variant: str
    model_versions: list[str]
    n: int
    value: float
    ci_low: float
    ci_high: float


class VariantComparisonOut(Out):
    deployment: str
    metric: str
    higher_is_better: bool
    baseline: VariantEstimateOut
    candidate: VariantEstimateOut
    difference: float
    ci_low: float
    ci_high: float
    test: str
    p_value: float
    confidence: float
    significant: bool
    enough_data: bool
    min_samples: int
    decision: str
    window_start: int
    window_end: int
    others: list[VariantEstimateOut]


class AlertOut(Out):
    id: str
    monitor: str
    rule: str
    status: str
    value: float | None
    threshold: float
    message: str
    occurrences: int
    opened_at: int
    last_seen_at: int
    resolved_at: int | None
    delivery: dict[str, Any] | None


def _service(state: State, caller: Identity) -> MonitoringService:
    from ...monitoring.service import MonitoringService
    from ...serving.prediction_log import log_location
    from ...serving.predictions import PredictionService

    log = PredictionService(log_location(state.settings))
    return MonitoringService(state.store, log, actor=caller.user)


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# --- monitors ----------------------------------------------------------------------------------


@router.post("/monitors", status_code=201)
def create_monitor(body: MonitorIn, state: State, caller: Editor) -> MonitorOut:
    """A new monitor of a deployment's prediction log."""
    created = _service(state, caller).create(
        body.name,
        deployment=body.deployment,
        reference=body.reference,
        window=timedelta(seconds=body.window_s),
        every=None if body.every_s is None else timedelta(seconds=body.every_s),
        tests=body.tests,
        columns=body.columns,
        thresholds={k: float(v) for k, v in body.thresholds.items()},
        alerts=body.alerts,
        webhook=body.webhook,
        webhook_format=body.webhook_format,
        task=body.task,
        description=body.description,
    )
    return MonitorOut.of(created)


@router.get("/monitors")
def list_monitors(
    state: State,
    caller: Viewer,
    deployment: Annotated[str | None, Query(max_length=limits.DEPLOYMENT_NAME)] = None,
) -> list[MonitorOut]:
    """Every monitor (of ``deployment``), by name."""
    return [MonitorOut.of(m) for m in _service(state, caller).list(deployment=deployment)]


@router.get("/monitors/{name}")
def get_monitor(name: str, state: State, caller: Viewer) -> MonitorOut:
    return MonitorOut.of(_service(state, caller).get(name))


@router.delete("/monitors/{name}", status_code=204)
def delete_monitor(name: str, state: State, caller: Editor) -> Response:
    """Remove the monitor, its runs, results and alerts (the audit log keeps the record)."""
    _service(state, caller).delete(name)
    return Response(status_code=204)


@router.post("/monitors/{name}/runs")
def run_monitor(name: str, body: MonitorRunIn, state: State, caller: Editor) -> MonitorRunOut:
    """Run the monitor now over the window ending at ``at`` (default: now)."""
    at = None if body.at is None else _EPOCH + timedelta(milliseconds=body.at)
    return MonitorRunOut.of(_service(state, caller).run(name, at=at, executor=body.executor))


@router.post("/monitors/{name}/backfill")
def backfill(
    name: str, body: MonitorBackfillIn, state: State, caller: Editor
) -> list[MonitorRunOut]:
    """Run the monitor over every window of the span, oldest first (each stored as a run)."""
    since = _EPOCH + timedelta(milliseconds=body.since)
    until = None if body.until is None else _EPOCH + timedelta(milliseconds=body.until)
    runs = _service(state, caller).backfill(name, since=since, until=until, executor=body.executor)
    return [MonitorRunOut.of(r) for r in runs]


@router.post("/run-due")
def run_due(state: State, caller: Editor) -> list[MonitorRunOut]:
    """Run every monitor whose ``every`` has elapsed since its last run."""
    return [MonitorRunOut.of(r) for r in _service(state, caller).run_due()]


@router.get("/monitors/{name}/runs")
def history(
    name: str,
    state: State,
    caller: Viewer,
    since: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> list[MonitorRunOut]:
    """The monitor's runs, newest first."""
    runs = _service(state, caller).history(name, since=_utc(since), limit=limit)
    return [MonitorRunOut.of(r) for r in runs]


@router.get("/runs/{run_id}")
def get_run(run_id: str, state: State, caller: Viewer) -> MonitorRunOut:
    return MonitorRunOut.of(_service(state, caller).get_run(run_id))


@router.get(
    "/monitors/{name}/report",
    response_class=Response,
    responses={200: {"content": {"text/html": {}, "application/json": {}}}},
)
def report(
    name: str,
    state: State,
    caller: Viewer,
    run_id: Annotated[str | None, Query(max_length=100)] = None,
    format: Literal["html", "json"] = "html",
) -> Response:
    """The run's report (default: the latest run): self-contained HTML, or compact JSON."""
    text = _service(state, caller).report(name, run_id=run_id, format=format)
    media = "text/html; charset=utf-8" if format == "html" else "application/json"
    return Response(text.encode("utf-8"), media_type=media)


# --- references --------------------------------------------------------------------------------


@router.post("/references", status_code=201)
def build_reference(body: ReferenceIn, state: State, caller: Editor) -> ReferenceOut:
    """Sketch a reference once from ``NAME@VERSION`` or ``models:/NAME/VERSION``."""
    return ReferenceOut.of(_service(state, caller).build_reference(body.source, name=body.name))


@router.get("/references")
def references(state: State, caller: Viewer) -> list[ReferenceOut]:
    """Every stored reference, newest first."""
    return [ReferenceOut.of(r) for r in _service(state, caller).references()]


# --- labels and performance --------------------------------------------------------------------


@router.post("/labels/{deployment}")
def log_labels(deployment: str, body: LabelsIn, state: State, caller: Editor) -> LabelImportOut:
    """Store late labels: ``{"labels": {request_id: label}}`` or ``{"rows": [{"request_id",
    "row", "label"}]}``."""
    if (body.labels is None) == (body.rows is None):
        raise InvalidInput(
            'send either "labels" ({request_id: label}) or "rows" ([{"request_id": ..., '
            '"row": 0, "label": ...}]), not both and not neither'
        )
    if body.labels is not None:
        done = _service(state, caller).log_labels(deployment, body.labels)
    else:
        import pandas as pd

        assert body.rows is not None
        frame = pd.DataFrame(
            {
                "request_id": [r.request_id for r in body.rows],
                "row": [r.row for r in body.rows],
                "label": pd.Series([r.label for r in body.rows], dtype=object),
            }
        )
        done = _service(state, caller).log_labels(deployment, frame)
    return LabelImportOut.of(done)


@router.get("/labels/{deployment}")
def labels(
    deployment: str,
    state: State,
    caller: Viewer,
    since: datetime | None = None,
    until: datetime | None = None,
) -> LabelsOut:
    """Stored labels logged in the span, as columns and rows."""
    frame = _service(state, caller).labels(deployment, since=_utc(since), until=_utc(until))
    if len(frame) > MAX_LABELS_READ:
        raise LimitExceeded(
            f"{len(frame):,} labels of {deployment!r} were logged in that span, past the "
            f"{MAX_LABELS_READ:,} one read may return; narrow since / until"
        )
    rows = frame.astype(object).where(frame.notna(), None).values.tolist()
    return LabelsOut(columns=[str(c) for c in frame.columns], rows=rows)


@router.get("/performance/{deployment}")
def performance(
    deployment: str,
    state: State,
    caller: Viewer,
    since: datetime | None = None,
    until: datetime | None = None,
    task: Literal["classification", "regression"] | None = None,
    slices: Annotated[list[str] | None, Query(max_length=100)] = None,
) -> PerformanceOut:
    """Quality of the labelled predictions logged in the span, per version and slice."""
    found = _service(state, caller).performance(
        deployment, since=_utc(since), until=_utc(until), task=task, slices=slices or ()
    )
    return PerformanceOut.of(found)


@router.get("/variants/{deployment}")
def compare_variants(
    deployment: str,
    state: State,
    caller: Viewer,
    metric: Annotated[str | None, Query(max_length=100)] = None,
    baseline: Annotated[str | None, Query(max_length=64)] = None,
    candidate: Annotated[str | None, Query(max_length=64)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    confidence: float = 0.95,
    min_samples: Annotated[int, Query(le=limits.INT64_MAX)] = 100,
) -> VariantComparisonOut:
    """The candidate variant against the baseline on ``metric``, with CIs and a test."""
    found = _service(state, caller).compare_variants(
        deployment,
        metric=metric,
        baseline=baseline,
        candidate=candidate,
        since=_utc(since),
        until=_utc(until),
        confidence=confidence,
        min_samples=min_samples,
    )
    return VariantComparisonOut.of(found)


# --- alerts and gauges -------------------------------------------------------------------------


@router.get("/alerts")
def alerts(
    state: State,
    caller: Viewer,
    monitor: Annotated[str | None, Query(max_length=limits.MONITOR_NAME)] = None,
    status: Literal["open", "resolved"] | None = None,
) -> list[AlertOut]:
    """Alert events, newest first."""
    return [AlertOut.of(a) for a in _service(state, caller).alerts(monitor=monitor, status=status)]


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
def metrics(request: Request, state: State, _: Viewer) -> Response:
    """Prometheus gauges from each monitor's latest run and the open alerts, and the
    counters of usage rows and traces this server's gateway lost."""
    from ...gateway._metrics import loss_counters
    from ...monitoring.prometheus import render

    counters = loss_counters(getattr(request.app.state, "lw_gateway", None))
    body = render(state.store, counters=counters)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
