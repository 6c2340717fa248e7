"""``/api/v1/monitoring/trace-monitors``: monitors of LLM traffic (traces), their passes.

A trace monitor is a monitor like the others: ``/api/v1/monitoring/monitors/{name}`` lists,
runs, reports and deletes it, and its alerts are among ``/api/v1/monitoring/alerts``. These
routes add what is particular to the kind: creating one (its selection, scorers, baseline,
actions) and reading a pass with its scoring progress, figures and actions. Reading needs a
viewer; creating and running, an editor. A pass runs as the caller: a rollback it starts moves
the prompt alias under the caller's name, so the prompt's approval rules judge that user.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import Field

from ...store import limits
from ._deps import PREFIX, Editor, State, Viewer
from ._schemas import Body, Int64, Number, Out
from .monitoring import MonitorOut, MonitorRunOut

if TYPE_CHECKING:
    from ...governance.tokens import Identity
    from ...monitoring.service import MonitoringService

__all__ = ["router"]

router = APIRouter(prefix=f"{PREFIX}/monitoring/trace-monitors", tags=["monitoring"])

_MAX_SPAN_S = 10**12
_LAST_MS = limits.LAST_MS
_FIRST_MS = -62_135_596_800_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Name = Annotated[str, Field(min_length=1, max_length=limits.MONITOR_NAME)]
Short = Annotated[str, Field(min_length=1, max_length=600)]


class SelectionIn(Body):
    gateway_route: str | None = Field(default=None, max_length=200)
    prompt: str | None = Field(default=None, max_length=600)
    deployment: str | None = Field(default=None, max_length=200)
    experiment_ids: list[Annotated[str, Field(max_length=64)]] = Field(default=[], max_length=100)


class ActionIn(Body):
    kind: Literal["reevaluate", "rollback"]
    on: str | None = Field(default=None, max_length=400)
    alias: str | None = Field(default=None, max_length=200)
    dataset: str | None = Field(default=None, max_length=600)
    endpoint: str | None = Field(default=None, max_length=2000)
    model: str | None = Field(default=None, max_length=600)


class TraceMonitorIn(Body):
    name: Name
    traces: SelectionIn
    scorers: list[Short] = Field(min_length=1, max_length=20)
    sample_rate: Number = Field(default=1.0, allow_inf_nan=False)
    baseline: Short = "approved"
    window_s: float | int = Field(default=3600, gt=0, le=_MAX_SPAN_S, allow_inf_nan=False)
    every_s: float | int | None = Field(default=None, gt=0, le=_MAX_SPAN_S, allow_inf_nan=False)
    tests: list[Annotated[str, Field(max_length=100)]] = Field(default=[], max_length=100)
    thresholds: dict[str, Number] = Field(default={}, max_length=1000)
    alerts: list[Annotated[str, Field(max_length=400)]] = Field(default=[], max_length=1000)
    actions: list[ActionIn] = Field(default=[], max_length=10)
    webhook: str | None = Field(default=None, max_length=2000)
    webhook_format: Literal["json", "slack"] = "json"
    description: str | None = Field(default=None, max_length=10_000)
    max_scored_per_pass: Int64 = 200
    max_window_traces: Int64 = 20_000


class TraceRunIn(Body):
    at: int | None = Field(default=None, ge=_FIRST_MS, le=_LAST_MS)  # UTC ms; default now


class SelectionOut(Out):
    gateway_route: str | None
    prompt: str | None
    deployment: str | None
    experiment_ids: list[str]


class ActionOut(Out):
    kind: str
    on: str | None
    alias: str | None
    dataset: str | None
    endpoint: str | None
    model: str | None


class TraceMonitorOut(Out):
    monitor: MonitorOut
    selection: SelectionOut
    sample_rate: float
    scorers: list[str]
    baseline: str
    actions: list[ActionOut]
    max_scored_per_pass: int
    max_window_traces: int


class TraceErrorOut(Out):
    trace_id: str
    scorer: str
    error: str


class ScoringOut(Out):
    traces: int
    sampled: int
    already_scored: int
    scored: int
    remaining: int
    assessments: int
    errors: list[TraceErrorOut]


class OutcomeOut(Out):
    alert_id: str
    rule: str
    kind: str
    status: str
    detail: str
    request_id: str | None
    evaluation_run_id: str | None
    from_version: int | None
    to_version: int | None


class TraceMonitorRunOut(Out):
    run: MonitorRunOut
    scoring: ScoringOut | None
    figures: dict[str, float]
    actions: list[OutcomeOut]
    baseline: str | None


def _service(state: State, caller: Identity) -> MonitoringService:
    from .monitoring import _service as monitoring

    return monitoring(state, caller)


@router.post("", status_code=201)
def create_trace_monitor(body: TraceMonitorIn, state: State, caller: Editor) -> TraceMonitorOut:
    """A new monitor of the traces ``traces`` selects."""
    from ...monitoring.llm_entities import AlertAction, TraceSelection

    created = _service(state, caller).create_trace_monitor(
        body.name,
        traces=TraceSelection(
            body.traces.gateway_route,
            body.traces.prompt,
            body.traces.deployment,
            tuple(body.traces.experiment_ids),
        ),
        scorers=body.scorers,
        sample_rate=body.sample_rate,
        baseline=body.baseline,
        window=timedelta(seconds=body.window_s),
        every=None if body.every_s is None else timedelta(seconds=body.every_s),
        tests=body.tests,
        thresholds={k: float(v) for k, v in body.thresholds.items()},
        alerts=body.alerts,
        actions=[
            AlertAction(a.kind, a.on, a.alias, a.dataset, a.endpoint, a.model) for a in body.actions
        ],
        webhook=body.webhook,
        webhook_format=body.webhook_format,
        description=body.description,
        max_scored_per_pass=body.max_scored_per_pass,
        max_window_traces=body.max_window_traces,
    )
    return TraceMonitorOut.of(created)


@router.get("/{name}")
def get_trace_monitor(name: str, state: State, caller: Viewer) -> TraceMonitorOut:
    return TraceMonitorOut.of(_service(state, caller).get_trace_monitor(name))


@router.post("/{name}/runs")
def run_trace_monitor(
    name: str, body: TraceRunIn, state: State, caller: Editor
) -> TraceMonitorRunOut:
    """A pass over the window ending at ``at`` (default: now), as the caller."""
    at = None if body.at is None else _EPOCH + timedelta(milliseconds=body.at)
    return TraceMonitorRunOut.of(_service(state, caller).run_trace_monitor(name, at=at))


@router.get("/{name}/runs")
def trace_monitor_history(
    name: str,
    state: State,
    caller: Viewer,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> list[TraceMonitorRunOut]:
    """The monitor's passes, newest window first."""
    runs = _service(state, caller).trace_monitor_history(name, limit=limit)
    return [TraceMonitorRunOut.of(r) for r in runs]
