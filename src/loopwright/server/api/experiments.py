"""``/api/v1/experiments``: list, create, find, rename, tag, delete and restore experiments."""

from __future__ import annotations

from fastapi import APIRouter

from ...store.home import acting_as
from ._deps import PREFIX, Editor, State, Viewer
from ._schemas import ExperimentIn, ExperimentNameIn, ExperimentOut, TagsIn

__all__ = ["router"]

router = APIRouter(prefix=PREFIX, tags=["experiments"])


@router.get("/experiments")
def list_experiments(state: State, _: Viewer, include_deleted: bool = False) -> list[ExperimentOut]:
    """Experiments, oldest first (deleted ones with ``include_deleted=true``)."""
    return [
        ExperimentOut.of(e)
        for e in state.tracking.list_experiments(include_deleted=include_deleted)
    ]


@router.post("/experiments", status_code=201)
def create_experiment(body: ExperimentIn, state: State, caller: Editor) -> ExperimentOut:
    with acting_as(caller.user):
        created = state.tracking.create_experiment(body.name, description=body.description)
    return ExperimentOut.of(created)


@router.get("/experiments/by-name")
def get_experiment_by_name(name: str, state: State, _: Viewer) -> ExperimentOut:
    """The experiment called ``name`` (a query parameter: names may hold any character)."""
    return ExperimentOut.of(state.tracking.get_experiment_by_name(name))


@router.get("/experiments/{experiment_id}")
def get_experiment(experiment_id: str, state: State, _: Viewer) -> ExperimentOut:
    return ExperimentOut.of(state.tracking.get_experiment(experiment_id))


@router.patch("/experiments/{experiment_id}")
def rename_experiment(
    experiment_id: str, body: ExperimentNameIn, state: State, caller: Editor
) -> ExperimentOut:
    current = state.tracking.get_experiment(experiment_id)
    with acting_as(caller.user):
        return ExperimentOut.of(state.tracking.rename_experiment(current.name, body.name))


@router.delete("/experiments/{experiment_id}")
def delete_experiment(experiment_id: str, state: State, caller: Editor) -> ExperimentOut:
    """Soft-delete: the experiment and its runs are hidden until restored."""
    current = state.tracking.get_experiment(experiment_id)
    with acting_as(caller.user):
        changed = state.tracking.set_experiment_lifecycle(current.name, "deleted")
    return ExperimentOut.of(changed)


@router.post("/experiments/{experiment_id}/restore")
def restore_experiment(experiment_id: str, state: State, caller: Editor) -> ExperimentOut:
    current = state.tracking.get_experiment(experiment_id)
    with acting_as(caller.user):
        changed = state.tracking.set_experiment_lifecycle(current.name, "active")
    return ExperimentOut.of(changed)


@router.post("/experiments/{experiment_id}/tags", status_code=204)
def set_experiment_tags(experiment_id: str, body: TagsIn, state: State, caller: Editor) -> None:
    """Set tags on the experiment (a key set again is replaced)."""
    with acting_as(caller.user):
        state.tracking.set_experiment_tags(experiment_id, body.tags)


@router.delete("/experiments/{experiment_id}/tags/{key:path}", status_code=204)
def delete_experiment_tag(experiment_id: str, key: str, state: State, caller: Editor) -> None:
    """Remove one tag of the experiment (404 if it has none by that key)."""
    with acting_as(caller.user):
        state.tracking.delete_experiment_tag(experiment_id, key)
