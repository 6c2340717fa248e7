"""``/api/v1/runs``: create, read, search and end runs; log params, metrics, tags and batches."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query
from pydantic import Field

from ...store import limits
from ...store.home import acting_as
from ...tracking.entities import Metric, RunStatus
from .._hot import run_hot
from .._lean import lean_route
from ..auth import Identity
from ._deps import PREFIX, Editor, State, Viewer
from ._run_context import run_context
from ._schemas import (
    BatchIn,
    Body,
    EnvironmentOut,
    MetricOut,
    MetricPointIn,
    MetricsIn,
    ParamsIn,
    RunEndIn,
    RunIn,
    RunInputIn,
    RunListOut,
    RunOut,
    RunSearchIn,
    TagsIn,
)

__all__ = ["router"]

router = APIRouter(prefix=PREFIX, tags=["runs"])


class RunUpdateIn(Body):
    """What ``update_run`` may change; fields left out (null) stay as they are."""

    status: Literal["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"] | None = None
    end_time: int | None = Field(default=None, ge=0, le=limits.INT64_MAX)
    name: str | None = Field(default=None, min_length=1)


def _points(metrics: list[MetricPointIn]) -> list[Metric]:
    return [Metric(m.key, m.value, m.step, m.timestamp) for m in metrics]


@lean_route(router, "POST", "/runs", status_code=201)
async def create_run(body: RunIn, state: State, caller: Editor) -> RunOut:
    """Start a RUNNING run in ``experiment`` (created if missing)."""
    return await run_hot(state.store.db, lambda: _create_run(body, state, caller))


def _create_run(body: RunIn, state: State, caller: Identity) -> RunOut:
    with acting_as(caller.user):
        run = state.tracking._create_run(
            experiment=body.experiment,
            name=body.name,
            tags=body.tags,
            parent_run_id=body.parent_run_id,
            context=None if body.context is None else run_context(body.context),
        )
    return RunOut.of(run)


@router.get("/runs")
def list_runs(
    state: State,
    _: Viewer,
    experiment: str | None = None,
    limit: int = Query(default=100, ge=1, le=10_000),
) -> list[RunOut]:
    """The newest runs first, optionally of one experiment (by name)."""
    return [RunOut.of(r) for r in state.tracking.list_runs(experiment=experiment, limit=limit)]


@router.post("/runs/search")
def search_runs(body: RunSearchIn, state: State, _: Viewer) -> RunListOut:
    """Runs matching an MLflow-syntax filter, ordered, one page at a time."""
    found = state.tracking.search_runs(
        body.filter,
        experiments=body.experiments,
        order_by=body.order_by,
        max_results=body.max_results,
        page_token=body.page_token,
        run_view_type=body.run_view_type,
    )
    return RunListOut(runs=[RunOut.of(r) for r in found], next_page_token=found.next_page_token)


@lean_route(router, "GET", "/runs/{run_id}")
async def get_run(run_id: str, state: State, _: Viewer) -> RunOut:
    return await run_hot(state.store.db, lambda: RunOut.of(state.tracking.get_run(run_id)))


@router.get("/runs/{run_id}/metric-history")
def metric_history(run_id: str, state: State, _: Viewer, key: str = Query()) -> list[MetricOut]:
    """Every point of metric ``key``, by step then time."""
    return [MetricOut.of(m) for m in state.tracking.metric_history(run_id, key)]


@router.post("/runs/{run_id}/params", status_code=204)
def log_params(run_id: str, body: ParamsIn, state: State, caller: Editor) -> None:
    """Record params; one logged again must keep its value."""
    with acting_as(caller.user):
        state.tracking.log_params(run_id, body.params)


@router.post("/runs/{run_id}/tags", status_code=204)
def set_tags(run_id: str, body: TagsIn, state: State, caller: Editor) -> None:
    with acting_as(caller.user):
        state.tracking.set_tags(run_id, body.tags)


@router.delete("/runs/{run_id}/tags/{key:path}", status_code=204)
def delete_tag(run_id: str, key: str, state: State, caller: Editor) -> None:
    """Remove one tag of an active run (404 if it has none by that key)."""
    with acting_as(caller.user):
        state.tracking.delete_tag(run_id, key)


@lean_route(router, "POST", "/runs/{run_id}/metrics", status_code=204)
async def log_metrics(run_id: str, body: MetricsIn, state: State, caller: Editor) -> None:
    """Points with their own steps and timestamps; exact repeats are ignored. Stored before
    the reply: an acknowledged point is durable."""
    points = _points(body.metrics)

    def log() -> None:  # run again in the pool, a point is buffered twice: an exact repeat
        with acting_as(caller.user):
            state.tracking.log_metric_points(run_id, points)
            state.tracking.flush(run_id)

    await run_hot(state.store.db, log)


@router.post("/runs/{run_id}/batch", status_code=204)
def log_batch(run_id: str, body: BatchIn, state: State, caller: Editor) -> None:
    """Params, tags and metric points in one call (MLflow's log-batch)."""
    with acting_as(caller.user):
        state.tracking.log_batch(
            run_id, metrics=_points(body.metrics), params=body.params, tags=body.tags
        )
        state.tracking.flush(run_id)


@router.post("/runs/{run_id}/heartbeat", status_code=204)
def heartbeat(run_id: str, state: State, _: Editor) -> None:
    """Keep an open run from showing as STALE while it logs nothing."""
    state.tracking._heartbeat(run_id)


@router.post("/runs/{run_id}/end")
def end_run(run_id: str, body: RunEndIn, state: State, caller: Editor) -> RunOut:
    """Record the run's end; every metric point sent before is stored first."""
    with acting_as(caller.user):
        state.tracking.end_run(run_id, RunStatus(body.status), error=body.error)
    return RunOut.of(state.tracking.get_run(run_id))


@router.patch("/runs/{run_id}")
def update_run(run_id: str, body: RunUpdateIn, state: State, caller: Editor) -> RunOut:
    """Change an active run's status, end time or name (a terminal status stores its metrics
    first)."""
    status = None if body.status is None else RunStatus(body.status)
    with acting_as(caller.user):
        state.tracking.update_run(run_id, status=status, end_time=body.end_time, name=body.name)
    return RunOut.of(state.tracking.get_run(run_id))


@router.post("/runs/{run_id}/inputs", status_code=204)
def use_dataset(run_id: str, body: RunInputIn, state: State, caller: Editor) -> None:
    """Record a dataset version as an input of the run (lineage)."""
    with acting_as(caller.user):
        state.tracking.use_dataset(run_id, body.dataset_version_id, body.context)


@router.delete("/runs/{run_id}")
def delete_run(run_id: str, state: State, caller: Editor) -> RunOut:
    """Soft-delete: hidden from searches until restored."""
    with acting_as(caller.user):
        state.tracking.set_lifecycle(run_id, "deleted")
    return RunOut.of(state.tracking.get_run(run_id))


@router.post("/runs/{run_id}/restore")
def restore_run(run_id: str, state: State, caller: Editor) -> RunOut:
    with acting_as(caller.user):
        state.tracking.set_lifecycle(run_id, "active")
    return RunOut.of(state.tracking.get_run(run_id))


@router.get("/environments/{environment_id}")
def get_environment(environment_id: str, state: State, _: Viewer) -> EnvironmentOut:
    """The Python version and packages a run recorded (``run.environment_id``)."""
    return EnvironmentOut.of(state.tracking.get_environment(environment_id))
