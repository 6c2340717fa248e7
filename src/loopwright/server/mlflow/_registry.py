"""MLflow's model registry endpoints (``/mlflow/registered-models/...``,
``/mlflow/model-versions/...``) over Loopwright's registry, acting as the caller.

Aliases and stages keep Loopwright's approval policy: moving a protected one (by default the
``champion`` alias and the Production stage) opens an approval request instead, and the MLflow
client gets PERMISSION_DENIED naming the request. Deleted versions are invisible, as MLflow's
deleted versions are. Calls about prompts (MLflow 3 keeps them in this API) are answered from
Loopwright's prompts first (:mod:`._prompts`, ``prompt_aware``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from ...errors import InvalidInput, NotFound, PermissionDenied
from ...registry.entities import ApprovalRequest, ModelVersion, RegisteredModel, Stage
from ...registry.mlflow_sources import (
    forget_folders,
    logged_model_links,
    register_external,
    register_mlflow_model,
)
from .._state import ServerState
from ..auth import Identity
from . import _messages as m
from . import _prompts
from ._common import MAX_REGISTRY_TAG_VALUE, Editor, State, Viewer, reply
from ._convert import registered_model_json, version_json
from ._filters import parse_order_by
from ._model_sources import accept_source, locate, pin_if_local, require_exists
from ._paging import page, read_offset
from ._prompts import prompt_aware
from ._uris import model_id_in, version_artifact_uri

__all__ = ["router"]

router = APIRouter()

_MODEL_ORDER = frozenset({"name", "creation_timestamp", "last_updated_timestamp"})
_VERSION_ORDER = _MODEL_ORDER | {"version_number"}


def _check_tags(tags: dict[str, str]) -> dict[str, str]:
    for key, value in tags.items():
        if len(value) > MAX_REGISTRY_TAG_VALUE:
            raise InvalidInput(
                f"tag {key!r} has a value of {len(value)} characters; MLflow's limit is "
                f"{MAX_REGISTRY_TAG_VALUE}"
            )
    return tags


def _live(version: ModelVersion) -> ModelVersion:
    if version.status == "DELETED":
        raise NotFound(f"version {version.version} of model {version.model!r} does not exist")
    return version


def _approval_opened(request: ApprovalRequest, what: str) -> PermissionDenied:
    return PermissionDenied(
        f"{what} of model {request.model!r} is protected by its approval policy: approval "
        f"request {request.id} was opened to move it to version {request.version} instead; an "
        f"approver must approve it (`loopwright models approve {request.id}`) before it moves"
    )


def _latest(versions: Sequence[ModelVersion], stages: Sequence[str] = ()) -> list[ModelVersion]:
    """The newest live version per stage (every stage without ``stages``)."""
    wanted = {s.lower() for s in stages}
    newest: dict[Stage, ModelVersion] = {}
    for version in versions:
        if version.status == "DELETED" or (wanted and version.stage.value.lower() not in wanted):
            continue
        if version.stage not in newest or version.version > newest[version.stage].version:
            newest[version.stage] = version
    return sorted(newest.values(), key=lambda v: v.version)


def _model_json(state: ServerState, identity: Identity, model: RegisteredModel) -> Any:
    latest = _latest(state.registry(identity).list_versions(model.name))
    return registered_model_json(
        model, latest, logged_model_links(state.store, [v.id for v in latest])
    )


def _versions_json(state: ServerState, versions: Sequence[ModelVersion]) -> list[Any]:
    links = logged_model_links(state.store, [v.id for v in versions])
    return [version_json(v, links.get(v.id)) for v in versions]


def _ordered(
    items: list[Any], order_by: Sequence[str], allowed: frozenset[str], default: Sequence[str]
) -> Any:
    """``items`` in ``order_by`` (else ``default``), then by MLflow's tie-breakers: name
    ascending, and for versions the version number descending, unless already named."""
    keys: dict[str, Callable[[Any], Any]] = {
        "name": lambda x: x.name if isinstance(x, RegisteredModel) else x.model,
        "version_number": lambda x: x.version,
        "creation_timestamp": lambda x: x.created_at,
        "last_updated_timestamp": lambda x: x.updated_at,
    }
    order = [parse_order_by(item, allowed) for item in (order_by or default)]
    named = [key for key, _ in order]
    if len(set(named)) < len(named):
        raise InvalidInput(f"`order_by` contains duplicate fields: {list(order_by)}")
    ties = [("name", True)] + ([("version_number", False)] if "version_number" in allowed else [])
    order += [(key, ascending) for key, ascending in ties if key not in named]
    for key, ascending in reversed(order):  # stable sorts, last key first
        items.sort(key=keys[key], reverse=not ascending)
    return items


# --- registered models -----------------------------------------------------------------------


@router.post("/registered-models/create")
@prompt_aware(_prompts.create_model)
def create_model(body: m.CreateRegisteredModel, state: State, caller: Editor) -> Response:
    tags = _check_tags({t.key: t.value for t in body.tags})
    model = state.registry(caller).create_model(body.name, body.description, tags)
    return reply({"registered_model": registered_model_json(model)})


@router.get("/registered-models/get")
@prompt_aware(_prompts.get_model)
def get_model(q: Annotated[m.ModelRef, Query()], state: State, caller: Viewer) -> Response:
    model = state.registry(caller).get_model(q.name)
    return reply({"registered_model": _model_json(state, caller, model)})


@router.get("/registered-models/search")
@prompt_aware(_prompts.search_models)
def search_models(
    q: Annotated[m.SearchRegistry, Query()], state: State, caller: Viewer
) -> Response:
    search = [q.filter or "", q.order_by]
    models = _ordered(
        state.registry(caller).search_models(q.filter or ""), q.order_by, _MODEL_ORDER, ["name"]
    )
    chosen, token = page(models, read_offset(q.page_token, search), q.max_results or 100, search)
    message: dict[str, Any] = {
        "registered_models": [_model_json(state, caller, model) for model in chosen]
    }
    if token:
        message["next_page_token"] = token
    return reply(message)


@router.patch("/registered-models/update")
@prompt_aware(_prompts.update_model)
def update_model(body: m.UpdateRegisteredModel, state: State, caller: Editor) -> Response:
    model = state.registry(caller).update_model(body.name, description=body.description)
    return reply({"registered_model": _model_json(state, caller, model)})


@router.post("/registered-models/rename")
@prompt_aware(_prompts.rename_model)
def rename_model(body: m.RenameRegisteredModel, state: State, caller: Editor) -> Response:
    model = state.registry(caller).rename_model(body.name, body.new_name)
    return reply({"registered_model": _model_json(state, caller, model)})


@router.delete("/registered-models/delete")
@prompt_aware(_prompts.delete_model)
def delete_model(body: m.ModelRef, state: State, caller: Editor) -> Response:
    registry = state.registry(caller)
    ids = [v.id for v in registry.list_versions(body.name, include_deleted=True)]
    registry.delete_model(body.name)
    forget_folders(state.store, ids)
    return reply()


def _latest_versions(body: m.LatestVersions, state: ServerState, caller: Identity) -> Response:
    versions = _latest(state.registry(caller).list_versions(body.name), body.stages)
    return reply({"model_versions": _versions_json(state, versions)})


@router.post("/registered-models/get-latest-versions")  # a read MLflow's client sends as POST
@prompt_aware(_prompts.latest_versions)
def latest_versions(body: m.LatestVersions, state: State, caller: Viewer) -> Response:
    return _latest_versions(body, state, caller)


@router.get("/registered-models/get-latest-versions")
@prompt_aware(_prompts.latest_versions)
def latest_versions_get(
    q: Annotated[m.LatestVersions, Query()], state: State, caller: Viewer
) -> Response:
    return _latest_versions(q, state, caller)


@router.post("/registered-models/set-tag")
@prompt_aware(_prompts.set_model_tag)
def set_model_tag(body: m.ModelTag, state: State, caller: Editor) -> Response:
    _check_tags({body.key: body.value})
    state.registry(caller).set_model_tag(body.name, body.key, body.value)
    return reply()


@router.delete("/registered-models/delete-tag")
@prompt_aware(_prompts.delete_model_tag)
def delete_model_tag(body: m.ModelTagKey, state: State, caller: Editor) -> Response:
    state.registry(caller).delete_model_tag(body.name, body.key)
    return reply()


@router.post("/registered-models/alias")
@prompt_aware(_prompts.set_alias)
def set_alias(body: m.SetAlias, state: State, caller: Editor) -> Response:
    done = state.registry(caller).set_alias(body.name, body.alias, body.number)
    if done.request is not None:
        raise _approval_opened(done.request, f"alias {body.alias!r}")
    return reply()


@router.delete("/registered-models/alias")
@prompt_aware(_prompts.delete_alias)
def delete_alias(body: m.AliasRef, state: State, caller: Editor) -> Response:
    state.registry(caller).delete_alias(body.name, body.alias)
    return reply()


@router.get("/registered-models/alias")
@prompt_aware(_prompts.get_by_alias)
def get_by_alias(q: Annotated[m.AliasRef, Query()], state: State, caller: Viewer) -> Response:
    registry = state.registry(caller)
    model = registry.get_model(q.name)
    if q.alias not in model.aliases:
        raise NotFound(f"registered model {q.name!r} has no alias {q.alias!r}")
    version = _live(registry.get_version(q.name, model.aliases[q.alias]))
    return reply({"model_version": _versions_json(state, [version])[0]})


# --- model versions --------------------------------------------------------------------------


@router.post("/model-versions/create")
@prompt_aware(_prompts.create_version)
def create_version(body: m.CreateModelVersion, state: State, caller: Editor) -> Response:
    """A verified version from the MLflow folder the source names on this server, else an
    external one that only records the source (loadable once pinned)."""
    require_exists(state, caller, body.name)
    tags = _check_tags({t.key: t.value for t in body.tags})
    accepted = accept_source(state, caller, body.source, body.run_id, body.model_id)
    found = locate(state, caller, accepted)
    if found is not None:
        version_id = register_mlflow_model(
            state.store,
            state.registry(caller),
            body.name,
            accepted.source,
            found,
            run_id=accepted.run_id or found.run_id,
            description=body.description,
            tags=tags,
        )
    else:
        version_id = register_external(
            state.store,
            state.registry(caller),
            body.name,
            accepted.source,
            run_id=accepted.run_id,
            logged_model_id=model_id_in(accepted.model_id) if accepted.model_id else None,
            description=body.description,
            tags=tags,
        )
    version = pin_if_local(state, caller, state.registry(caller).get_version_by_id(version_id))
    return reply({"model_version": _versions_json(state, [version])[0]})


def _version(state: ServerState, caller: Identity, ref: m.VersionRef) -> ModelVersion:
    return _live(state.registry(caller).get_version(ref.name, ref.number))


@router.get("/model-versions/get")
@prompt_aware(_prompts.get_version)
def get_version(q: Annotated[m.VersionRef, Query()], state: State, caller: Viewer) -> Response:
    return reply({"model_version": _versions_json(state, [_version(state, caller, q)])[0]})


@router.get("/model-versions/get-download-uri")
@prompt_aware(_prompts.refuse_download)
def download_uri(q: Annotated[m.VersionRef, Query()], state: State, caller: Viewer) -> Response:
    """Where MLflow clients download the version: the MLflow model folder it was registered
    from (a version registered through Loopwright's own API: its package's files)."""
    version = _version(state, caller, q)
    if version.external:  # MLflow answers the source itself; its client fetches from there
        return reply({"artifact_uri": version.source or ""})
    return reply({"artifact_uri": version_artifact_uri(version.id)})


@router.get("/model-versions/search")
@prompt_aware(_prompts.search_versions)
def search_versions(
    q: Annotated[m.SearchRegistry, Query()], state: State, caller: Viewer
) -> Response:
    search = [q.filter or "", q.order_by]
    found = _ordered(
        state.registry(caller).search_versions(q.filter or ""),
        q.order_by,
        _VERSION_ORDER,
        ["last_updated_timestamp DESC"],
    )
    chosen, token = page(found, read_offset(q.page_token, search), q.max_results or 10_000, search)
    message: dict[str, Any] = {"model_versions": _versions_json(state, chosen)}
    if token:
        message["next_page_token"] = token
    return reply(message)


@router.patch("/model-versions/update")
@prompt_aware(_prompts.refuse_version_change)
def update_version(body: m.UpdateModelVersion, state: State, caller: Editor) -> Response:
    _version(state, caller, body)
    version = state.registry(caller).update_version(
        body.name, body.number, description=body.description
    )
    return reply({"model_version": _versions_json(state, [version])[0]})


@router.post("/model-versions/transition-stage")
@prompt_aware(_prompts.refuse_version_change)
def transition_stage(body: m.TransitionStage, state: State, caller: Editor) -> Response:
    _version(state, caller, body)
    done = state.registry(caller).transition_stage(
        body.name, body.number, body.stage, archive_existing=body.archive_existing_versions
    )
    if isinstance(done, ApprovalRequest):
        raise _approval_opened(done, f"stage {done.target!r}")
    return reply({"model_version": _versions_json(state, [done])[0]})


@router.delete("/model-versions/delete")
@prompt_aware(_prompts.refuse_version_change)
def delete_version(body: m.VersionRef, state: State, caller: Editor) -> Response:
    _version(state, caller, body)
    state.registry(caller).delete_version(body.name, body.number)
    return reply()


@router.post("/model-versions/set-tag")
@prompt_aware(_prompts.set_version_tag)
def set_version_tag(body: m.VersionTag, state: State, caller: Editor) -> Response:
    _check_tags({body.key: body.value})
    _version(state, caller, body)
    state.registry(caller).set_version_tag(body.name, body.number, body.key, body.value)
    return reply()


@router.delete("/model-versions/delete-tag")
@prompt_aware(_prompts.delete_version_tag)
def delete_version_tag(body: m.VersionTagKey, state: State, caller: Editor) -> Response:
    _version(state, caller, body)
    state.registry(caller).delete_version_tag(body.name, body.number, body.key)
    return reply()
