"""``/api/v1/models/{name}/versions``: register, find, describe, stage and download versions."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import StreamingResponse

from ...errors import Conflict, NotFound
from ...paths import normalize_relpath
from ._deps import PREFIX, Editor, State, VersionNumber, Viewer
from ._schemas import (
    ChangeOut,
    DescriptionIn,
    ModelVersionOut,
    PackageFileOut,
    PinIn,
    StageIn,
    TagIn,
    VersionIn,
)
from ._streaming import BINARY_RESPONSE, blob_response
from .models import change_out

__all__ = ["router"]

router = APIRouter(prefix=PREFIX, tags=["model versions"])


@router.get("/model-versions")
def search_versions(state: State, caller: Viewer, filter: str = "") -> list[ModelVersionOut]:
    """Versions matching e.g. ``name = 'churn' AND stage = 'Production'``."""
    return [ModelVersionOut.of(v) for v in state.registry(caller).search_versions(filter)]


@router.get("/model-versions/{version_id}")
def get_version_by_id(version_id: str, state: State, caller: Viewer) -> ModelVersionOut:
    return ModelVersionOut.of(state.registry(caller).get_version_by_id(version_id))


@router.get("/models/{name}/versions")
def list_versions(
    name: str, state: State, caller: Viewer, include_deleted: bool = False
) -> list[ModelVersionOut]:
    """The model's versions, oldest first."""
    found = state.registry(caller).list_versions(name, include_deleted=include_deleted)
    return [ModelVersionOut.of(v) for v in found]


@router.post("/models/{name}/versions", status_code=201)
def register(name: str, body: VersionIn, state: State, caller: Editor) -> ModelVersionOut:
    """A new version from a run's package (``run.log_model``), creating the model if needed."""
    version = state.registry(caller).register(
        name,
        run_id=body.run_id,
        artifact_path=body.artifact_path,
        description=body.description,
        tags=body.tags,
        metrics=body.metrics,
        dataset_version_ids=body.dataset_version_ids,
        source=body.source,
    )
    return ModelVersionOut.of(version)


@router.get("/models/{name}/resolve/{ref}")
def resolve(name: str, ref: str, state: State, caller: Viewer) -> ModelVersionOut:
    """The loadable version ``ref`` names: a number, ``latest``, a stage or an alias."""
    return ModelVersionOut.of(state.registry(caller).resolve(name, ref))


@router.get("/models/{name}/versions/{version}")
def get_version(name: str, version: VersionNumber, state: State, caller: Viewer) -> ModelVersionOut:
    return ModelVersionOut.of(state.registry(caller).get_version(name, version))


@router.post("/models/{name}/versions/{version}/pin")
def pin_source(
    name: str, version: VersionNumber, body: PinIn, state: State, caller: Editor
) -> ModelVersionOut:
    """Store and verify an external version's files, fetched from its source on this server."""
    pinned = state.registry(caller)._pin_stored_source(name, version, trusted=body.trusted)
    return ModelVersionOut.of(pinned)


@router.patch("/models/{name}/versions/{version}")
def update_version(
    name: str, version: VersionNumber, body: DescriptionIn, state: State, caller: Editor
) -> ModelVersionOut:
    updated = state.registry(caller).update_version(name, version, description=body.description)
    return ModelVersionOut.of(updated)


@router.delete("/models/{name}/versions/{version}")
def delete_version(
    name: str, version: VersionNumber, state: State, caller: Editor
) -> ModelVersionOut:
    """Mark the version DELETED (kept for history, no longer loadable)."""
    return ModelVersionOut.of(state.registry(caller).delete_version(name, version))


@router.put("/models/{name}/versions/{version}/tags/{key:path}")
def set_version_tag(
    name: str, version: VersionNumber, key: str, body: TagIn, state: State, caller: Editor
) -> ModelVersionOut:
    tagged = state.registry(caller).set_version_tag(name, version, key, body.value)
    return ModelVersionOut.of(tagged)


@router.delete("/models/{name}/versions/{version}/tags/{key:path}")
def delete_version_tag(
    name: str, version: VersionNumber, key: str, state: State, caller: Editor
) -> ModelVersionOut:
    return ModelVersionOut.of(state.registry(caller).delete_version_tag(name, version, key))


@router.post("/models/{name}/versions/{version}/stage", responses={202: {"model": ChangeOut}})
def transition_stage(
    name: str,
    version: VersionNumber,
    body: StageIn,
    response: Response,
    state: State,
    caller: Editor,
) -> ChangeOut:
    """Move the version to a stage, or open an approval request if the policy protects it."""
    result = state.registry(caller).transition_stage(
        name, version, body.stage, archive_existing=body.archive_existing, comment=body.comment
    )
    return change_out(result, response)


@router.get("/models/{name}/versions/{version}/files")
def package_files(
    name: str, version: VersionNumber, state: State, caller: Viewer
) -> list[PackageFileOut]:
    """Every file of the version's package (the manifest first among them, by path)."""
    registry = state.registry(caller)
    found = registry.package_files(registry.get_version(name, version))
    return [PackageFileOut(path=p, blob_hash=h, size=s) for p, h, s in found]


@router.get("/models/{name}/versions/{version}/files/{path:path}", responses=BINARY_RESPONSE)
def download_package_file(
    name: str, version: VersionNumber, path: str, state: State, caller: Viewer
) -> StreamingResponse:
    """One file of the version's package, streamed (deleted versions cannot be downloaded)."""
    registry = state.registry(caller)
    found = registry.get_version(name, version)
    if found.status == "DELETED":
        raise Conflict(
            f"version {version} of model {name!r} is deleted and cannot be downloaded; "
            "register the package again to get a new version"
        )
    rel = normalize_relpath(path, what="package path")
    match = next((f for f in registry.package_files(found) if f[0] == rel), None)
    if match is None:
        raise NotFound(f"the package of {found.ref} has no file {rel!r}")
    return blob_response(state.store, match[1], match[2])
