"""``/api/v1/pipelines``: pipeline runs and their step runs, as the engine records them.

Reading needs a viewer; recording (starting, heartbeats, finishing, serving from the cache)
needs an editor. Answers are the one JSON form of ``pipelines/_json.py``, which the remote
client decodes and the CLI prints. Bodies are bounded here (lengths, list sizes) and checked
again by the service with the embedded API's own checks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import Field

from ...pipelines import _checks as checks
from ...pipelines._json import run_json, step_json
from ...pipelines.entities import ArtifactRef
from ...store import limits
from ...store.home import acting_as
from ._deps import PREFIX, Editor, State, Viewer
from ._run_context import run_context
from ._schemas import Body, Out, RunContextIn

if TYPE_CHECKING:
    from ...pipelines.entities import PipelineRun, StepRun
    from ...pipelines.service import PipelineService

__all__ = ["router"]

router = APIRouter(prefix=f"{PREFIX}/pipelines", tags=["pipelines"])

Id = Annotated[str, Field(min_length=1, max_length=100)]
Name = Annotated[str, Field(min_length=1, max_length=limits.RUN_NAME)]
CacheKey = Annotated[str, Field(min_length=1, max_length=64)]
Reason = Annotated[str, Field(max_length=checks.MAX_REASON)]
Error = Annotated[str, Field(max_length=checks.MAX_ERROR)]


# --- bodies ------------------------------------------------------------------------------------


class ArtifactIn(Body):
    name: str = Field(min_length=1, max_length=limits.KEY)
    digest: str = Field(min_length=1, max_length=128)
    materializer: str = Field(min_length=1, max_length=50)
    run_id: str | None = Field(default=None, max_length=32)
    path: str | None = Field(default=None, max_length=1000)
    size: int = Field(default=0, ge=0, le=limits.INT64_MAX)
    type_name: str = Field(default="", max_length=500)

    def ref(self) -> ArtifactRef:
        return ArtifactRef(**self.model_dump())


Artifacts = Annotated[list[ArtifactIn], Field(max_length=checks.MAX_ARTIFACTS)]
KeyParts = Annotated[dict[str, Any], Field(max_length=10_000)]


class PipelineRunIn(Body):
    pipeline: str = Field(min_length=1, max_length=limits.PIPELINE_NAME)
    name: Name | None = None
    params: dict[str, Any] = Field(default={}, max_length=checks.MAX_PARAMS)
    executor: str = Field(default="inprocess", min_length=1, max_length=50)
    code_digest: str = Field(default="", max_length=64)
    experiment: str | None = Field(default=None, min_length=1, max_length=limits.EXPERIMENT_NAME)
    resumed_from: Id | None = None
    host: str = Field(default="", max_length=255)
    pid: int = Field(default=0, ge=0, le=2**31 - 1)
    context: RunContextIn | None = None  # the caller's code version and environment


class FinishRunIn(Body):
    status: Literal["completed", "failed", "killed"]
    result: ArtifactIn | None = None
    error: Error | None = None


class StepRunIn(Body):
    invocation: Name
    step: Name
    cache_key: CacheKey
    cache_reason: Reason
    inputs: Artifacts = Field(default=[])
    key_parts: KeyParts = Field(default={})


class FinishStepIn(Body):
    status: Literal["completed", "failed"]
    outputs: Artifacts = Field(default=[])
    attempts: int = Field(default=1, ge=0, le=1_000_000)
    error: Error | None = None


class ServedIn(StepRunIn):
    source_id: Id
    status: Literal["cached", "resumed"] = "cached"


# --- answers (the fields of pipelines/_json.py) ------------------------------------------------


class ArtifactOut(Out):
    name: str
    digest: str
    materializer: str
    run_id: str | None
    path: str | None
    size: int
    type_name: str


class StepRunOut(Out):
    id: str
    pipeline_run_id: str
    invocation: str
    step: str
    status: str
    cache_key: str
    cache_reason: str
    run_id: str | None
    cached_from: str | None
    attempts: int
    inputs: list[ArtifactOut]
    outputs: list[ArtifactOut]
    error: str | None
    started_at: int
    finished_at: int | None
    duration_ms: int | None
    key_parts: dict[str, Any]


class PipelineRunOut(Out):
    id: str
    pipeline: str
    name: str
    status: str
    run_id: str | None
    params: dict[str, Any]
    executor: str
    resumed_from: str | None
    code_digest: str
    result: ArtifactOut | None
    error: str | None
    host: str
    pid: int
    created_by: str
    started_at: int
    heartbeat_at: int
    finished_at: int | None
    duration_ms: int | None
    steps: list[StepRunOut]


class StepFoundOut(Out):
    step: StepRunOut | None


def _service(state: State) -> PipelineService:
    from ...pipelines.service import PipelineService

    # The server's tracking service: a step's end writes the metrics its callers sent.
    return PipelineService(state.store, tracking=state.tracking)


def _run_out(run: PipelineRun) -> PipelineRunOut:
    return PipelineRunOut.model_validate(run_json(run))


def _step_out(step: StepRun) -> StepRunOut:
    return StepRunOut.model_validate(step_json(step))


def _found(step: StepRun | None) -> StepFoundOut:
    return StepFoundOut(step=None if step is None else _step_out(step))


# --- pipeline runs -----------------------------------------------------------------------------


@router.post("/runs", status_code=201)
def start_run(body: PipelineRunIn, state: State, caller: Editor) -> PipelineRunOut:
    """Record a running pipeline run and start its tracked run."""
    with acting_as(caller.user):
        run = _service(state)._start_run(
            body.pipeline,
            name=body.name,
            params=body.params,
            executor=body.executor,
            code_digest=body.code_digest,
            experiment=body.experiment,
            resumed_from=body.resumed_from,
            host=body.host,
            pid=body.pid,
            context=None if body.context is None else run_context(body.context),
        )
    return _run_out(run)


@router.get("/runs")
def list_runs(
    state: State,
    caller: Viewer,
    pipeline: Annotated[str | None, Query(max_length=limits.PIPELINE_NAME)] = None,
    status: Literal["running", "completed", "failed", "killed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 50,
) -> list[PipelineRunOut]:
    """Pipeline runs, newest first (without their steps)."""
    runs = _service(state).list_runs(pipeline=pipeline, status=status, limit=limit)
    return [_run_out(r) for r in runs]


@router.get("/runs/{pipeline_run_id}")
def get_run(pipeline_run_id: str, state: State, caller: Viewer) -> PipelineRunOut:
    """The run with its step runs, in the order they started."""
    return _run_out(_service(state).get_run(pipeline_run_id))


@router.post("/runs/{pipeline_run_id}/heartbeat", status_code=204)
def heartbeat(pipeline_run_id: str, state: State, caller: Editor) -> Response:
    """The run's process is alive."""
    _service(state).heartbeat(pipeline_run_id)
    return Response(status_code=204)


@router.post("/runs/{pipeline_run_id}/finish")
def finish_run(
    pipeline_run_id: str, body: FinishRunIn, state: State, caller: Editor
) -> PipelineRunOut:
    """Record the run's end and end its tracked run."""
    with acting_as(caller.user):
        run = _service(state).finish_run(
            pipeline_run_id,
            body.status,
            result=None if body.result is None else body.result.ref(),
            error=body.error,
        )
    return _run_out(run)


# --- step runs ---------------------------------------------------------------------------------


@router.post("/runs/{pipeline_run_id}/steps", status_code=201)
def start_step(pipeline_run_id: str, body: StepRunIn, state: State, caller: Editor) -> StepRunOut:
    """Record a running step run and start its nested tracked run."""
    with acting_as(caller.user):
        step = _service(state).start_step(pipeline_run_id, **_step_fields(body))
    return _step_out(step)


def _step_fields(body: StepRunIn) -> dict[str, Any]:
    """The fields a step run is recorded with (started or served), as the service's keywords."""
    return {
        "invocation": body.invocation,
        "step": body.step,
        "cache_key": body.cache_key,
        "cache_reason": body.cache_reason,
        "inputs": [a.ref() for a in body.inputs],
        "key_parts": body.key_parts,
    }


@router.post("/steps/{step_run_id}/finish")
def finish_step(step_run_id: str, body: FinishStepIn, state: State, caller: Editor) -> StepRunOut:
    """Record the step run's end and end its nested run."""
    with acting_as(caller.user):
        step = _service(state).finish_step(
            step_run_id,
            body.status,
            outputs=[a.ref() for a in body.outputs],
            attempts=body.attempts,
            error=body.error,
        )
    return _step_out(step)


@router.post("/runs/{pipeline_run_id}/served", status_code=201)
def record_served(pipeline_run_id: str, body: ServedIn, state: State, caller: Editor) -> StepRunOut:
    """Record a step run served from ``source_id``'s outputs (cached or resumed)."""
    with acting_as(caller.user):
        step = _service(state)._record_served(
            pipeline_run_id, source_id=body.source_id, status=body.status, **_step_fields(body)
        )
    return _step_out(step)


@router.get("/cached")
def find_cached(
    state: State,
    caller: Viewer,
    cache_key: Annotated[str, Query(min_length=1, max_length=64)],
) -> StepFoundOut:
    """The newest completed step run with ``cache_key`` (``step`` null when none)."""
    return _found(_service(state).find_cached(cache_key))


@router.get("/previous")
def previous_step(
    state: State,
    caller: Viewer,
    pipeline: Annotated[str, Query(min_length=1, max_length=limits.PIPELINE_NAME)],
    invocation: Annotated[str, Query(min_length=1, max_length=limits.RUN_NAME)],
) -> StepFoundOut:
    """The newest finished step run of ``invocation`` in a run of ``pipeline``."""
    return _found(_service(state).previous_step(pipeline, invocation))
