"""``/api/v1/loops``: continuous-training loops and their iterations.

Reading needs a viewer. Creating, pausing, resuming, deleting loops, starting an iteration and
what a driver does (transition, update, lease) need an editor: drivers run wherever ``loops
tick`` or a scheduler runs, on any client, and move iterations through these routes. Iterations
live under ``/loops/-/iterations`` (``-`` is no loop name, so no loop hides them).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import Field

from ...store import limits
from ._deps import PREFIX, Editor, State, Viewer
from ._schemas import Body, Out

if TYPE_CHECKING:
    from ...governance.tokens import Identity
    from ...loop.service import LoopService

__all__ = ["router"]

router = APIRouter(prefix=f"{PREFIX}/loops", tags=["loops"])

_DAY_MS = 86_400_000
State_ = Annotated[str, Field(max_length=30)]
Id = Annotated[str, Field(min_length=1, max_length=32)]


# --- bodies ------------------------------------------------------------------------------------


class LoopIn(Body):
    # Bounds only: the service says what good settings look like.
    name: str = Field(max_length=limits.LOOP_NAME)
    deployment: str = Field(max_length=limits.DEPLOYMENT_NAME)
    pipeline: str = Field(max_length=limits.PIPELINE_NAME)
    triggers: list[Annotated[str, Field(max_length=600)]] = Field(default=["manual"], max_length=50)
    gates: dict[str, Any] | None = None
    model: str | None = Field(default=None, max_length=limits.MODEL_NAME)
    params: dict[str, Any] = Field(default={}, max_length=1000)
    canary_percent: float = 10.0
    canary_window_ms: int = Field(default=3_600_000, ge=1, le=30 * _DAY_MS)
    metric: str | None = Field(default=None, max_length=100)
    margin: float = 0.01
    min_samples: int = Field(default=100, ge=0, le=limits.INT64_MAX)
    max_error_rate: float = 0.05
    max_compare_ms: int = Field(default=_DAY_MS, ge=1, le=30 * _DAY_MS)
    require_approval: bool = True
    cwd: str | None = Field(default=None, max_length=4096)
    description: str | None = Field(default=None, max_length=limits.REGISTRY_TAG_VALUE)


class StartIn(Body):
    trigger: str = Field(default="manual", max_length=600)
    detail: str | None = Field(default=None, max_length=limits.REGISTRY_TAG_VALUE)


class TransitionIn(Body):
    expect: State_
    to: State_
    reason: str | None = Field(default=None, max_length=limits.REGISTRY_TAG_VALUE)
    fields: dict[str, Any] = Field(default={}, max_length=20)


class UpdateIn(Body):
    expect: State_
    fields: dict[str, Any] = Field(default={}, max_length=20)


class LeaseIn(Body):
    owner: str = Field(min_length=1, max_length=200)
    ttl_ms: int = Field(ge=0, le=_DAY_MS)


# --- answers -----------------------------------------------------------------------------------


class TriggerOut(Out):
    kind: str
    spec: str
    text: str


class RuleOut(Out):
    namespace: str
    name: str
    op: str
    threshold: float
    text: str


class GateSpecOut(Out):
    name: str
    dataset: str
    target: str
    rules: list[RuleOut]
    sensitive: list[str]
    champion: str | None
    task: str | None
    latency_rows: int


class LoopOut(Out):
    id: str
    name: str
    deployment: str
    model: str
    pipeline: str
    params: dict[str, Any]
    gates: GateSpecOut | None
    triggers: list[TriggerOut]
    canary_percent: float
    canary_window_ms: int
    metric: str | None
    margin: float
    min_samples: int
    max_error_rate: float
    max_compare_ms: int
    require_approval: bool
    status: str
    cwd: str | None
    description: str | None
    created_by: str
    created_at: int
    updated_at: int


class IterationOut(Out):
    id: str
    loop: str
    number: int
    state: str
    trigger: str
    trigger_detail: str | None
    pipeline_run_id: str | None
    model_version: int | None
    gate_result_id: str | None
    approval_request_id: str | None
    canary_revision: int | None
    canary_started_at: int | None
    comparison: dict[str, Any] | None
    reason: str | None
    lease_owner: str | None
    lease_until: int | None
    created_at: int
    updated_at: int
    finished_at: int | None
    history: list[tuple[str, int]]


class LeaseOut(Out):
    iteration: IterationOut | None


def _service(state: State, caller: Identity) -> LoopService:
    from ...loop.service import LoopService

    return LoopService(state.store, actor=caller.user)


# --- iterations (before /{name}, which would take "-") ---------------------------------------


@router.get("/-/iterations")
def list_iterations(
    state: State,
    caller: Viewer,
    loop: Annotated[str | None, Query(max_length=limits.LOOP_NAME)] = None,
    active: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 50,
) -> list[IterationOut]:
    """Iterations (of one loop), newest first; ``active``: only those in flight (or ended)."""
    found = _service(state, caller).iterations(loop, active=active, limit=limit)
    return [IterationOut.of(it) for it in found]


@router.get("/-/iterations/{iteration_id}")
def get_iteration(iteration_id: str, state: State, caller: Viewer) -> IterationOut:
    return IterationOut.of(_service(state, caller).get_iteration(iteration_id))


@router.post("/-/iterations/{iteration_id}/transition")
def transition(iteration_id: str, body: TransitionIn, state: State, caller: Editor) -> IterationOut:
    """Move the iteration from ``expect`` to ``to`` (409 if it is no longer in ``expect``)."""
    moved = _service(state, caller).transition(
        iteration_id,
        expect=body.expect,  # type: ignore[arg-type]  # the service checks the state names
        to=body.to,  # type: ignore[arg-type]
        reason=body.reason,
        **body.fields,
    )
    return IterationOut.of(moved)


@router.post("/-/iterations/{iteration_id}/update")
def update(iteration_id: str, body: UpdateIn, state: State, caller: Editor) -> IterationOut:
    """Record a side effect's result without moving the state."""
    changed = _service(state, caller).update(
        iteration_id,
        expect=body.expect,  # type: ignore[arg-type]  # the service checks the state name
        **body.fields,
    )
    return IterationOut.of(changed)


@router.post("/-/iterations/{iteration_id}/lease")
def lease(iteration_id: str, body: LeaseIn, state: State, caller: Editor) -> LeaseOut:
    """Take or renew the lease; ``{"iteration": null}`` while another owner holds it."""
    taken = _service(state, caller).lease(
        iteration_id, owner=body.owner, ttl=timedelta(milliseconds=body.ttl_ms)
    )
    return LeaseOut(iteration=None if taken is None else IterationOut.of(taken))


# --- loops -------------------------------------------------------------------------------------


@router.post("", status_code=201)
def create_loop(body: LoopIn, state: State, caller: Editor) -> LoopOut:
    """A new active loop; its non-manual triggers become schedules."""
    created = _service(state, caller).create(
        body.name,
        deployment=body.deployment,
        pipeline=body.pipeline,
        triggers=body.triggers,
        gates=body.gates,
        model=body.model,
        params=body.params,
        canary_percent=body.canary_percent,
        canary_window=timedelta(milliseconds=body.canary_window_ms),
        metric=body.metric,
        margin=body.margin,
        min_samples=body.min_samples,
        max_error_rate=body.max_error_rate,
        max_compare=timedelta(milliseconds=body.max_compare_ms),
        require_approval=body.require_approval,
        cwd=body.cwd,
        description=body.description,
    )
    return LoopOut.of(created)


@router.get("")
def list_loops(state: State, caller: Viewer) -> list[LoopOut]:
    """Every loop, by name."""
    return [LoopOut.of(loop) for loop in _service(state, caller).list()]


@router.get("/{name}")
def get_loop(name: str, state: State, caller: Viewer) -> LoopOut:
    return LoopOut.of(_service(state, caller).get(name))


@router.post("/{name}/pause")
def pause_loop(name: str, state: State, caller: Editor) -> LoopOut:
    """Stop starting iterations (its schedules are disabled); one in flight goes on."""
    return LoopOut.of(_service(state, caller).pause(name))


@router.post("/{name}/resume")
def resume_loop(name: str, state: State, caller: Editor) -> LoopOut:
    return LoopOut.of(_service(state, caller).resume(name))


@router.delete("/{name}", status_code=204)
def delete_loop(name: str, state: State, caller: Editor) -> Response:
    """Remove the loop, its schedules and iterations (refused while one is in flight)."""
    _service(state, caller).delete(name)
    return Response(status_code=204)


@router.post("/{name}/iterations", status_code=201)
def start_iteration(name: str, body: StartIn, state: State, caller: Editor) -> IterationOut:
    """Open the next iteration (409 while one is in flight or the loop is paused)."""
    started = _service(state, caller).start_iteration(
        name, trigger=body.trigger, detail=body.detail
    )
    return IterationOut.of(started)
