"""``/api/v1/runs/{run_id}/artifacts``: list a run's files, stream them up and down, forget them."""

from __future__ import annotations

import tempfile
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from ...errors import NotFound
from ...paths import normalize_relpath
from ...store.home import acting_as
from ...tracking.entities import Artifact
from .._limits import streams_body
from ._deps import PREFIX, Editor, State, Viewer
from ._schemas import ArtifactOut, Out
from ._streaming import BINARY_BODY, BINARY_RESPONSE, blob_response, receive_to_file

__all__ = ["router"]

router = APIRouter(prefix=PREFIX, tags=["artifacts"])


@router.get("/runs/{run_id}/artifacts")
def list_artifacts(
    run_id: str, state: State, _: Viewer, path: str | None = None
) -> list[ArtifactOut]:
    """Every artifact file of the run, or those under ``path``."""
    return [ArtifactOut.of(a) for a in state.tracking.list_artifacts(run_id, path)]


class ArtifactsDeletedOut(Out):
    deleted: int


@router.delete("/runs/{run_id}/artifacts")
def delete_artifacts(
    run_id: str, state: State, caller: Editor, path: str | None = None
) -> ArtifactsDeletedOut:
    """Forget the active run's artifact files at or under ``path`` (all without one); the blobs
    stay until garbage collection finds them unreferenced."""
    with acting_as(caller.user):
        deleted = state.tracking.delete_artifacts(run_id, path or None)
    return ArtifactsDeletedOut(deleted=deleted)


@router.put("/runs/{run_id}/artifacts/files/{path:path}", openapi_extra=BINARY_BODY)
@streams_body
async def upload_artifact(
    run_id: str, path: str, request: Request, state: State, caller: Editor
) -> ArtifactOut:
    """Store the body as the run's artifact at ``path`` (streamed; replaces a file there)."""
    rel = normalize_relpath(path, what="artifact path")
    await run_in_threadpool(state.tracking.require_loggable, run_id)
    folder, _, name = rel.rpartition("/")
    with tempfile.TemporaryDirectory(prefix="lw-upload-") as tmp:
        local = Path(tmp) / name
        await receive_to_file(request, local)

        def store() -> Artifact:
            with acting_as(caller.user):
                return state.tracking.log_artifact(run_id, local, folder or None)

        return ArtifactOut.of(await run_in_threadpool(store))


@router.get("/runs/{run_id}/artifacts/files/{path:path}", responses=BINARY_RESPONSE)
def download_artifact(run_id: str, path: str, state: State, _: Viewer) -> StreamingResponse:
    """The artifact file's bytes, streamed."""
    rel = normalize_relpath(path, what="artifact path")
    found = next((a for a in state.tracking.list_artifacts(run_id, rel) if a.path == rel), None)
    if found is None:
        raise NotFound(f"run {run_id} has no artifact file {rel!r}; list them at .../artifacts")
    return blob_response(state.store, found.blob_hash, found.size)
