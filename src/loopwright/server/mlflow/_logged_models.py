"""MLflow 3's LoggedModel endpoints (``/mlflow/logged-models``): create, get, finalize, tag,
log params, search, delete and list files.

``mlflow.<flavor>.log_model`` creates a PENDING logged model, uploads the model folder to its
artifact URI (``mlflow-artifacts:/<experiment>/models/m-<id>/artifacts``), links it to the run
(``/runs/outputs``) and finalizes it READY.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from ...errors import InvalidInput
from ...paths import normalize_relpath
from ...store import artifact_trees as trees
from ...store.home import acting_as
from ...tracking.logged_models import SEARCH_ATTRIBUTES, LoggedModelService, parse_status
from . import _messages as m
from ._artifacts import Tree, entry_json, list_files
from ._common import (
    Editor,
    State,
    Viewer,
    check_key,
    check_length,
    check_param,
    check_tag,
    reply,
)
from ._convert import logged_model_json
from ._filters import LOGGED_MODELS, compile_filter
from ._paging import page, read_offset
from ._uris import experiment_id_in, logged_model_uri, model_id_in

__all__ = ["router"]

router = APIRouter()

MAX_PARAMS_PER_REQUEST = 100


def _pairs(items: list[m.KeyValue], check: Callable[[str, str], None]) -> dict[str, str]:
    found = {check_key("logged model", item.key): item.value for item in items}
    for key, value in found.items():
        check(key, value)
    return found


@router.post("/logged-models")
def create(body: m.CreateLoggedModel, state: State, caller: Editor) -> Response:
    check_length("logged model name", body.name, 250)
    check_length("model_type", body.model_type, 100)
    with acting_as(caller.user):
        model = LoggedModelService(state.store).create(
            experiment_id_in(state.tracking, body.experiment_id),
            name=body.name,
            source_run_id=body.source_run_id or None,
            model_type=body.model_type,
            params=_pairs(body.params, check_param),
            tags=_pairs(body.tags, check_tag),
        )
    return reply({"model": logged_model_json(model)})


@router.post("/logged-models/search")
def search(body: m.SearchLoggedModels, state: State, _: Viewer) -> Response:
    for order in body.order_by:
        if order.field_name not in SEARCH_ATTRIBUTES:
            raise InvalidInput(
                f"logged models cannot be ordered by {order.field_name!r}; use one of "
                f"{', '.join(sorted(SEARCH_ATTRIBUTES))}"
            )
    if not all(d.dataset_name for d in body.datasets):
        raise InvalidInput("`dataset_name` in the `datasets` clause must be specified.")
    datasets = [(d.dataset_name or "", d.dataset_digest) for d in body.datasets]
    matches = compile_filter(body.filter, LOGGED_MODELS)
    experiment_ids = [experiment_id_in(state.tracking, e) for e in body.experiment_ids]
    order_by = [(o.field_name, o.ascending) for o in body.order_by]
    search_key = [
        experiment_ids,
        body.filter or "",
        [list(o) for o in order_by],
        [list(d) for d in datasets],
    ]
    offset = read_offset(body.page_token, search_key)
    found = LoggedModelService(state.store).search(
        experiment_ids, matches=matches, order_by=order_by, datasets=datasets
    )
    models, token = page(found, offset, body.max_results or 100, search_key)
    message: dict[str, object] = {"models": [logged_model_json(x) for x in models]}
    if token:
        message["next_page_token"] = token
    return reply(message)


@router.get("/logged-models/{model_id}")
def get(model_id: str, state: State, _: Viewer, allow_deleted: bool = False) -> Response:
    model = LoggedModelService(state.store).get(model_id_in(model_id), allow_deleted=allow_deleted)
    return reply({"model": logged_model_json(model)})


@router.patch("/logged-models/{model_id}")
def finalize(model_id: str, body: m.FinalizeLoggedModel, state: State, caller: Editor) -> Response:
    status = parse_status(body.status)
    with acting_as(caller.user):
        model = LoggedModelService(state.store).finalize(model_id_in(model_id), status)
    return reply({"model": logged_model_json(model)})


@router.delete("/logged-models/{model_id}")
def delete(model_id: str, state: State, caller: Editor) -> Response:
    with acting_as(caller.user):
        LoggedModelService(state.store).delete(model_id_in(model_id))
    return reply()


@router.patch("/logged-models/{model_id}/tags")
def set_tags(model_id: str, body: m.LoggedModelTags, state: State, caller: Editor) -> Response:
    with acting_as(caller.user):
        model = LoggedModelService(state.store).set_tags(
            model_id_in(model_id), _pairs(body.tags, check_tag)
        )
    return reply({"model": logged_model_json(model)})


@router.delete("/logged-models/{model_id}/tags/{tag_key:path}")
def delete_tag(model_id: str, tag_key: str, state: State, caller: Editor) -> Response:
    check_key("tag", tag_key)
    with acting_as(caller.user):
        LoggedModelService(state.store).delete_tag(model_id_in(model_id), tag_key)
    return reply()


@router.post("/logged-models/{model_id}/params")
def log_params(model_id: str, body: m.LoggedModelParams, state: State, caller: Editor) -> Response:
    if len(body.params) > MAX_PARAMS_PER_REQUEST:
        raise InvalidInput(
            f"a request can log at most {MAX_PARAMS_PER_REQUEST} params; got {len(body.params)}"
        )
    with acting_as(caller.user):
        LoggedModelService(state.store).log_params(
            model_id_in(model_id), _pairs(body.params, check_param)
        )
    return reply()


@router.get("/logged-models/{model_id}/artifacts/directories")
def list_artifacts(
    model_id: str,
    q: Annotated[m.ListLoggedModelArtifacts, Query()],
    state: State,
    _: Viewer,
) -> Response:
    model = LoggedModelService(state.store).get(model_id_in(model_id))
    given = q.artifact_directory_path
    prefix = normalize_relpath(given, what="artifact path") if given else ""
    tree = Tree(trees.LOGGED_MODEL, model.id, prefix, writable=True)
    return reply(
        {
            "root_uri": logged_model_uri(model.experiment_id, model.id),
            "files": [entry_json(e, prefix) for e in list_files(state, tree)],
        }
    )
