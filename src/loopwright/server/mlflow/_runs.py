"""MLflow's run endpoints: create, update, get, search, delete and restore (``/mlflow/runs/...``).

MLflow runs are ordinary Loopwright runs. The MLflow client's source tags fill the run's code
columns (``mlflow.source.git.commit`` → git commit, ``mlflow.source.name`` → entry point), and
the run name lives both in the run and in the ``mlflow.runName`` tag, as MLflow keeps it.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ..._ids import now_ms
from ...errors import InvalidInput, NotFound
from ...store import limits
from ...store.home import acting_as
from ...tracking.entities import Run
from ...tracking.run_rows import end_run_if_active, read_run_info
from .._hot import run_hot
from ..auth import Identity
from . import _messages as m
from ._common import Editor, State, Viewer, check_tag, reply, run_user
from ._convert import RUN_NAME_TAG, run_info_json, run_json
from ._run_rows import info_json, runs_json
from ._uris import experiment_id_in

__all__ = ["router"]

router = APIRouter()

MAX_RUN_NAME = limits.RUN_NAME  # the runs.name column
PARENT_TAG = "mlflow.parentRunId"


def _fitting(value: str | None, limit: int) -> str | None:
    return value if value and len(value) <= limit else None


def _check_name(name: str) -> str:
    if len(name) > MAX_RUN_NAME:
        raise InvalidInput(f"run name is {len(name)} characters; the limit is {MAX_RUN_NAME}")
    return name


@router.post("/runs/create")
async def create(body: m.CreateRun, state: State, caller: Editor) -> Response:
    return await run_hot(state.store.db, lambda: _create(body, state, caller))


def _create(body: m.CreateRun, state: State, caller: Identity) -> Response:
    tags = {t.key: t.value for t in body.tags}
    for key, value in tags.items():
        check_tag(key, value)
    tagged = tags.get(RUN_NAME_TAG)
    if body.run_name and tagged and body.run_name != tagged:
        raise InvalidInput(
            f"run_name {body.run_name!r} and tag {RUN_NAME_TAG} {tagged!r} differ; give one name"
        )
    name = _check_name(body.run_name or tagged or f"run-{secrets.token_hex(4)}")
    tags[RUN_NAME_TAG] = name
    experiment_id = experiment_id_in(state.tracking, body.experiment_id or "0")
    parent = tags.get(PARENT_TAG) or None
    with acting_as(caller.user):
        try:
            run = _record(state, caller, body, experiment_id, name, tags, parent)
        except NotFound:
            if parent is None:
                raise
            # MLflow keeps a parent tag naming a run it does not have: so does Loopwright,
            # with the tag only (the parent column links existing runs).
            run = _record(state, caller, body, experiment_id, name, tags, None)
    location = state.tracking._location_of(run.experiment_id)
    return reply({"run": run_json(run, location=location)})


def _record(
    state: State,
    caller: Identity,
    body: m.CreateRun,
    experiment_id: str,
    name: str,
    tags: dict[str, str],
    parent: str | None,
) -> Run:
    return state.tracking._record_run(
        experiment_id,
        name=name,
        start_time=body.start_time,
        user=run_user(state, caller, body.user_id),
        tags=tags,
        parent_run_id=parent,
        git_commit=_fitting(tags.get("mlflow.source.git.commit"), 64),
        git_branch=_fitting(tags.get("mlflow.source.git.branch"), 255),
        entry_point=tags.get("mlflow.source.name") or None,
    )


@router.post("/runs/update")
async def update(body: m.UpdateRun, state: State, caller: Editor) -> Response:
    if body.run_name:  # two writes: not for the event loop (see .._hot)
        return await run_in_threadpool(_rename, body, state, caller)
    return await run_hot(state.store.db, lambda: _update(body, state))


def _rename(body: m.UpdateRun, state: State, caller: Identity) -> Response:
    """A rename also sets the name tag: the tracking service's way."""
    run_id, name = body.run, _check_name(body.run_name or "")
    status = None if body.status is None else m.run_status(body.status)
    with acting_as(caller.user):
        state.tracking.update_run(run_id, status=status, end_time=body.end_time, name=name)
        state.tracking.set_tags(run_id, {RUN_NAME_TAG: name})
    info = read_run_info(state.store.db, run_id)
    location = state.tracking._location_of(info.experiment_id)
    return reply({"run_info": run_info_json(info, location)})


def _update(body: m.UpdateRun, state: State) -> Response:
    run_id = body.run
    status = None if body.status is None else m.run_status(body.status)
    end_time = body.end_time
    if status is not None and status.is_terminal:
        end_time = now_ms() if end_time is None else end_time  # as update_run sets it
        state.tracking.writer.untrack(run_id)
    # One statement, the reply from the row it returns (update_run: check, update, read back).
    experiment_id, name, user, stored, start, end = end_run_if_active(
        state.store.db, run_id, None if status is None else status.value, end_time
    )
    location = state.tracking._location_of(experiment_id)
    message = info_json(run_id, experiment_id, name, user, stored, start, end, "active", location)
    return reply({"run_info": message})


@router.get("/runs/get")
async def get(q: Annotated[m.RunRef, Query()], state: State, _: Viewer) -> Response:
    return await run_hot(state.store.db, lambda: _get(q.run, state))


def _get(run_id: str, state: State) -> Response:
    found = runs_json(state, [run_id])
    if not found:
        raise NotFound(f"run {run_id!r} does not exist")
    return reply({"run": found[0]})


@router.post("/runs/search")
def search(body: m.SearchRuns, state: State, _: Viewer) -> Response:
    experiment_ids = [experiment_id_in(state.tracking, e) for e in body.experiment_ids]
    found = state.tracking._search_run_ids(
        experiment_ids,
        filter_string=body.filter or "",
        order_by=body.order_by,
        max_results=body.max_results,
        page_token=body.page_token,
        run_view_type=m.view_type(body.run_view_type),
        derive_stale=False,  # MLflow has no STALE status: such runs stay RUNNING
    )
    message: dict[str, object] = {"runs": runs_json(state, found.run_ids)}
    if found.next_page_token:
        message["next_page_token"] = found.next_page_token
    return reply(message)


@router.post("/runs/delete")
def delete(body: m.RunRef, state: State, caller: Editor) -> Response:
    with acting_as(caller.user):
        state.tracking.set_lifecycle(body.run, "deleted")
    return reply()


@router.post("/runs/restore")
def restore(body: m.RunRef, state: State, caller: Editor) -> Response:
    with acting_as(caller.user):
        state.tracking.set_lifecycle(body.run, "active")
    return reply()
