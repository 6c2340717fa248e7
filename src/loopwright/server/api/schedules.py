"""``/api/v1/schedules``: schedules and their fires.

Reading needs a viewer; creating, enabling, disabling and deleting schedules, and what a
scheduler does (claiming a fire, recording its outcome), need an editor. A claim answers
``{"fire": null}`` when the fire exists already: another scheduler took it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import Field

from ...store import limits
from ._deps import PREFIX, Editor, State, Viewer
from ._schemas import Body, Out

if TYPE_CHECKING:
    from ...governance.tokens import Identity
    from ...loop.schedules import ScheduleService

__all__ = ["router"]

router = APIRouter(prefix=f"{PREFIX}/schedules", tags=["schedules"])

_LAST_MS = limits.LAST_MS
_FIRST_MS = -62_135_596_800_000  # 0001-01-01T00:00:00Z
Key = Annotated[str, Field(min_length=1, max_length=200)]
Millis = Annotated[int, Field(ge=_FIRST_MS, le=_LAST_MS)]


# --- bodies ------------------------------------------------------------------------------------


class ScheduleIn(Body):
    # Bounds only: the service says what a good name, target or trigger looks like.
    name: str = Field(max_length=limits.SCHEDULE_NAME)
    target: str = Field(max_length=limits.PIPELINE_NAME)
    trigger: str = Field(max_length=600)
    target_kind: Literal["pipeline", "loop"] = "pipeline"
    params: dict[str, Any] = Field(default={}, max_length=1000)
    cwd: str | None = Field(default=None, max_length=4000)


class EnabledIn(Body):
    enabled: bool


class ClaimIn(Body):
    event_key: Key
    due_at: Millis
    owner: Key
    next_fire_at: Millis | None = None
    cursor: Key | None = None


class FinishIn(Body):
    status: Literal["started", "succeeded", "failed", "skipped"]
    pipeline_run_id: str | None = Field(default=None, max_length=32)
    iteration_id: str | None = Field(default=None, max_length=32)
    detail: str | None = Field(default=None, max_length=limits.PARAM_VALUE)


# --- answers -----------------------------------------------------------------------------------


class TriggerOut(Out):
    kind: str
    spec: str
    text: str


class ScheduleOut(Out):
    id: str
    name: str
    target_kind: str
    target: str
    trigger: TriggerOut
    params: dict[str, Any]
    cwd: str | None
    enabled: bool
    next_fire_at: int | None
    last_fired_at: int | None
    cursor: str | None
    created_by: str
    created_at: int
    updated_at: int


class FireOut(Out):
    id: str
    schedule: str
    event_key: str
    due_at: int
    fired_at: int
    owner: str
    status: str
    pipeline_run_id: str | None
    iteration_id: str | None
    detail: str | None
    finished_at: int | None


class ClaimOut(Out):
    fire: FireOut | None


def _service(state: State, caller: Identity) -> ScheduleService:
    from ...loop.schedules import ScheduleService

    return ScheduleService(state.store, actor=caller.user)


# --- routes ------------------------------------------------------------------------------------


@router.post("", status_code=201)
def create_schedule(body: ScheduleIn, state: State, caller: Editor) -> ScheduleOut:
    """A new enabled schedule."""
    created = _service(state, caller).create(
        body.name,
        target=body.target,
        trigger=body.trigger,
        target_kind=body.target_kind,
        params=body.params,
        cwd=body.cwd,
    )
    return ScheduleOut.of(created)


@router.get("")
def list_schedules(
    state: State,
    caller: Viewer,
    target: Annotated[str | None, Query(max_length=limits.PIPELINE_NAME)] = None,
) -> list[ScheduleOut]:
    """Every schedule (of ``target``), by name."""
    return [ScheduleOut.of(s) for s in _service(state, caller).list(target=target)]


@router.get("/{name}")
def get_schedule(name: str, state: State, caller: Viewer) -> ScheduleOut:
    return ScheduleOut.of(_service(state, caller).get(name))


@router.put("/{name}/enabled")
def set_enabled(name: str, body: EnabledIn, state: State, caller: Editor) -> ScheduleOut:
    """Enable (starting afresh from now) or disable the schedule."""
    return ScheduleOut.of(_service(state, caller).set_enabled(name, body.enabled))


@router.delete("/{name}", status_code=204)
def delete_schedule(name: str, state: State, caller: Editor) -> Response:
    """Remove the schedule and its fires (the audit log keeps the record)."""
    _service(state, caller).delete(name)
    return Response(status_code=204)


@router.post("/{name}/claims")
def claim_fire(name: str, body: ClaimIn, state: State, caller: Editor) -> ClaimOut:
    """Record a fire for ``event_key``, or ``{"fire": null}`` if it exists already."""
    fire = _service(state, caller).claim(
        name,
        event_key=body.event_key,
        due_at=body.due_at,
        owner=body.owner,
        next_fire_at=body.next_fire_at,
        cursor=body.cursor,
    )
    return ClaimOut(fire=None if fire is None else FireOut.of(fire))


@router.get("/{name}/fires")
def list_fires(
    name: str,
    state: State,
    caller: Viewer,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 50,
) -> list[FireOut]:
    """The schedule's fires, newest first."""
    return [FireOut.of(f) for f in _service(state, caller).fires(name, limit=limit)]


@router.put("/fires/{fire_id}/outcome")
def finish_fire(fire_id: str, body: FinishIn, state: State, caller: Editor) -> FireOut:
    """Record how the fire's job ended (or that it was skipped, and why)."""
    fire = _service(state, caller).finish(
        fire_id,
        body.status,
        pipeline_run_id=body.pipeline_run_id,
        iteration_id=body.iteration_id,
        detail=body.detail,
    )
    return FireOut.of(fire)
