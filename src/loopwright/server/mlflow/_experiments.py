"""MLflow's experiment endpoints over Loopwright's experiments (``/mlflow/experiments/...``)."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from ...errors import InvalidInput, NotFound
from ...store import limits
from ...store.home import acting_as
from ...tracking.entities import Experiment
from . import _messages as m
from ._common import Editor, State, Viewer, check_key, check_tag, reply
from ._convert import experiment_json
from ._filters import EXPERIMENTS, compile_filter, parse_order_by
from ._paging import page, read_offset
from ._uris import ensure_default, experiment_id_in

__all__ = ["router"]

router = APIRouter()

MAX_NAME = limits.EXPERIMENT_NAME  # the experiments.name column
_ATTRIBUTES = frozenset({"name", "experiment_id", "creation_time", "last_update_time"})


def _check_name(name: str | None) -> str:
    if not name or not name.strip():
        raise InvalidInput("experiment name must be a non-empty string")
    if len(name) > MAX_NAME:
        raise InvalidInput(f"experiment name is {len(name)} characters; the limit is {MAX_NAME}")
    return name


@router.get("/experiments/get-by-name")
def get_by_name(q: Annotated[m.ExperimentByName, Query()], state: State, _: Viewer) -> Response:
    ensure_default(state.tracking)
    found = state.tracking.find_experiment(q.experiment_name)
    if found is None:
        raise NotFound(f"experiment {q.experiment_name!r} does not exist")
    return reply({"experiment": experiment_json(found)})


@router.post("/experiments/create")
def create(body: m.CreateExperiment, state: State, caller: Editor) -> Response:
    name = _check_name(body.name)
    tags = {check_key("tag", t.key): t.value for t in body.tags}
    for key, value in tags.items():
        check_tag(key, value)
    with acting_as(caller.user):
        experiment = state.tracking._create_experiment(
            name, artifact_location=body.artifact_location or None
        )
        if tags:
            state.tracking.set_experiment_tags(experiment.id, tags)
    return reply({"experiment_id": experiment.id})


@router.get("/experiments/get")
def get(q: Annotated[m.ExperimentRef, Query()], state: State, _: Viewer) -> Response:
    experiment = state.tracking.get_experiment(experiment_id_in(state.tracking, q.experiment_id))
    return reply({"experiment": experiment_json(experiment)})


def _search(body: m.SearchExperiments, state: State) -> Response:
    ensure_default(state.tracking)
    view = m.view_type(body.view_type)
    check = compile_filter(body.filter, EXPERIMENTS)
    order = [parse_order_by(item, _ATTRIBUTES) for item in body.order_by] or [
        ("creation_time", False)
    ]
    max_results = body.max_results or 1000
    search = [view, body.filter or "", body.order_by]
    offset = read_offset(body.page_token, search)
    stages = {"ACTIVE_ONLY": {"active"}, "DELETED_ONLY": {"deleted"}}.get(
        view, {"active", "deleted"}
    )
    found = [
        e
        for e in state.tracking.list_experiments(include_deleted=view != "ACTIVE_ONLY")
        if e.lifecycle_stage in stages and check(partial(_lookup, e))
    ]
    found.sort(key=lambda e: e.id)
    for key, ascending in reversed(order):
        found.sort(key=partial(_sort_key, key=key), reverse=not ascending)
    chosen, token = page(found, offset, max_results, search)
    message: dict[str, object] = {"experiments": [experiment_json(e) for e in chosen]}
    if token:
        message["next_page_token"] = token
    return reply(message)


def _sort_key(experiment: Experiment, *, key: str) -> Any:
    return _lookup(experiment, "attributes", key)


def _lookup(experiment: Experiment, entity: str, key: str) -> Any:
    if entity == "tags":
        return experiment.tags.get(key)
    if entity != "attributes":
        return None
    return {
        "name": experiment.name,
        "experiment_id": experiment.id,
        "creation_time": experiment.created_at,
        "last_update_time": experiment.updated_at,
    }[key]


@router.post("/experiments/search")
def search(body: m.SearchExperiments, state: State, _: Viewer) -> Response:
    return _search(body, state)


@router.get("/experiments/search")
def search_get(q: Annotated[m.SearchExperiments, Query()], state: State, _: Viewer) -> Response:
    return _search(q, state)


@router.post("/experiments/delete")
def delete(body: m.ExperimentRef, state: State, caller: Editor) -> Response:
    _set_stage(state, body.experiment_id, "deleted", caller.user)
    return reply()


@router.post("/experiments/restore")
def restore(body: m.ExperimentRef, state: State, caller: Editor) -> Response:
    _set_stage(state, body.experiment_id, "active", caller.user)
    return reply()


def _set_stage(state: State, experiment_id: str, stage: str, user: str) -> None:
    experiment = state.tracking.get_experiment(experiment_id_in(state.tracking, experiment_id))
    with acting_as(user):
        state.tracking.set_experiment_lifecycle(experiment.name, stage)


@router.post("/experiments/update")
def update(body: m.UpdateExperiment, state: State, caller: Editor) -> Response:
    experiment = state.tracking.get_experiment(experiment_id_in(state.tracking, body.experiment_id))
    if body.new_name is not None and body.new_name != experiment.name:
        with acting_as(caller.user):
            state.tracking.rename_experiment(experiment.name, _check_name(body.new_name))
    return reply()


@router.post("/experiments/set-experiment-tag")
def set_tag(body: m.SetExperimentTag, state: State, caller: Editor) -> Response:
    check_tag(body.key, body.value)
    experiment_id = experiment_id_in(state.tracking, body.experiment_id)
    with acting_as(caller.user):
        state.tracking.set_experiment_tags(experiment_id, {body.key: body.value})
    return reply()


@router.post("/experiments/delete-experiment-tag")
def delete_tag(body: m.DeleteExperimentTag, state: State, caller: Editor) -> Response:
    experiment_id = experiment_id_in(state.tracking, body.experiment_id)
    with acting_as(caller.user):
        state.tracking.delete_experiment_tag(experiment_id, body.key)
    return reply()
