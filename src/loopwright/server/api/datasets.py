"""``/api/v1/datasets`` and ``/api/v1/blobs``: dataset versions, their files and their bytes.

A client adds a version in two steps: ``PUT /blobs/{hash}`` for each file the server lacks
(``HEAD`` tells), then ``POST /datasets/{name}/versions`` with the manifest. Blobs are named by
their content, so the server checks each upload against its name and each manifest entry
against a stored blob; nothing is trusted on the client's word.
"""

from __future__ import annotations

import tempfile
from pathlib import Path as LocalPath

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from ...data.entities import FileEntry
from ...errors import InvalidInput, NotFound
from ...store.home import acting_as
from .._limits import streams_body
from .._state import ServerState
from ._deps import PREFIX, Editor, State, Viewer
from ._schemas import (
    Body,
    DatasetOut,
    DatasetVersionIn,
    DatasetVersionOut,
    FileEntryOut,
)
from ._streaming import BINARY_BODY, BINARY_RESPONSE, blob_response, receive_to_file

__all__ = ["router"]

router = APIRouter(prefix=PREFIX, tags=["datasets"])

BlobHash = Path(pattern=r"^[0-9a-f]{64}$", description="a BLAKE3 hex digest")
# DatasetService's rule for names; checked here because recording a manifest skips `add`.
DatasetName = Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,255}$")


class DatasetIn(Body):
    name: str = Field(min_length=1, max_length=256)


class DatasetDescriptionIn(Body):
    description: str


class DatasetAliasIn(Body):
    version_id: str = Field(min_length=1, max_length=64)


class DatasetTagIn(Body):
    value: str


def _stored_size(state: ServerState, blob_hash: str) -> int:
    if not state.store.blobs.exists(blob_hash):
        raise NotFound(f"blob {blob_hash} is not stored on this server")
    return state.store.blobs.size(blob_hash)


@router.get("/datasets")
def list_datasets(state: State, _: Viewer) -> list[DatasetOut]:
    """Every dataset by name, with its number of versions."""
    return [DatasetOut.of(d) for d in state.datasets.list_datasets()]


@router.post("/datasets", status_code=204)
def create_dataset(body: DatasetIn, state: State, caller: Editor) -> None:
    """Register a dataset name with no version yet (409 if it exists)."""
    with acting_as(caller.user):
        state.datasets.create_empty(body.name)


@router.patch("/datasets/{name}", status_code=204)
def describe_dataset(name: str, body: DatasetDescriptionIn, state: State, caller: Editor) -> None:
    """Set the dataset's description."""
    with acting_as(caller.user):
        state.datasets.describe(name, body.description)


@router.put("/datasets/{name}/aliases/{alias}")
def set_alias(
    name: str, alias: str, body: DatasetAliasIn, state: State, caller: Editor
) -> DatasetVersionOut:
    """Point ``alias`` at the version with id ``version_id`` (moving it if it existed)."""
    with acting_as(caller.user):
        version = state.datasets.set_alias(f"{name}@{body.version_id}", alias)
    return DatasetVersionOut.of(version)


@router.put("/dataset-versions/{version_id}/tags/{key:path}")
def tag_version(
    version_id: str, key: str, body: DatasetTagIn, state: State, caller: Editor
) -> DatasetVersionOut:
    """Set tag ``key`` on the version."""
    version = state.datasets.get_by_id(version_id)
    with acting_as(caller.user):
        tagged = state.datasets.tag(f"{version.dataset}@{version.id}", key, body.value)
    return DatasetVersionOut.of(tagged)


@router.get("/datasets/{name}/versions")
def list_versions(name: str, state: State, _: Viewer) -> list[DatasetVersionOut]:
    """Every version of ``name``, newest first."""
    return [DatasetVersionOut.of(v) for v in state.datasets.versions(name)]


@router.get("/datasets/{name}/versions/{ref}")
def get_version(name: str, ref: str, state: State, _: Viewer) -> DatasetVersionOut:
    """A version by ``latest``, ``v3``, ``3``, an alias or its id."""
    return DatasetVersionOut.of(state.datasets.get(f"{name}@{ref}"))


@router.get("/dataset-versions/{version_id}")
def get_version_by_id(version_id: str, state: State, _: Viewer) -> DatasetVersionOut:
    return DatasetVersionOut.of(state.datasets.get_by_id(version_id))


@router.get("/dataset-versions/{version_id}/runs")
def runs_using(version_id: str, state: State, _: Viewer) -> list[str]:
    """Ids of the runs that recorded the version as an input (lineage)."""
    return state.datasets.runs_using(state.datasets.get_by_id(version_id))


@router.get("/dataset-versions/{version_id}/files")
def list_files(version_id: str, state: State, _: Viewer) -> list[FileEntryOut]:
    """The version's manifest: path, size and BLAKE3 hash of every file, by path."""
    version = state.datasets.get_by_id(version_id)
    return [FileEntryOut.of(f) for f in state.datasets.files(version)]


@router.get("/blobs/{blob_hash}", responses=BINARY_RESPONSE)
def download_blob(state: State, _: Viewer, blob_hash: str = BlobHash) -> StreamingResponse:
    """A stored file's bytes by content hash (as dataset manifests name them), streamed."""
    return blob_response(state.store, blob_hash, _stored_size(state, blob_hash))


@router.head("/blobs/{blob_hash}")
def blob_exists(state: State, _: Viewer, blob_hash: str = BlobHash) -> Response:
    """200 if the blob is stored, else 404 (so clients upload only what is missing)."""
    return Response(headers={"Content-Length": str(_stored_size(state, blob_hash))})


@router.put("/blobs/{blob_hash}", status_code=201, openapi_extra=BINARY_BODY)
@streams_body
async def upload_blob(
    request: Request, state: State, _: Editor, blob_hash: str = BlobHash
) -> FileEntryOut:
    """Store the body as the blob ``blob_hash``; refused unless the bytes hash to that name."""
    with tempfile.TemporaryDirectory(prefix="lw-blob-") as tmp:
        local = LocalPath(tmp) / "blob"
        digest = await receive_to_file(request, local)
        if digest != blob_hash:
            raise InvalidInput(f"the body hashes to {digest}, not {blob_hash}; send the right file")
        info = await run_in_threadpool(state.store.blobs.put_file, local)
    return FileEntryOut(path="", size=info.size, hash=info.hash)


@router.post("/datasets/{name}/versions", status_code=201)
def create_version(
    body: DatasetVersionIn, state: State, caller: Editor, name: str = DatasetName
) -> DatasetVersionOut:
    """A new version of ``name`` from uploaded blobs (identical content: the existing one)."""
    if body.run_id is not None:
        state.tracking.get_run(body.run_id)  # NotFound names it
    entries = [FileEntry(f.path, f.size, f.hash) for f in body.files]
    with acting_as(caller.user):
        version = state.datasets._add_manifest(
            name,
            entries,
            message=body.message,
            tags=body.tags,
            aliases=body.aliases,
            run_id=body.run_id,
            source=f"upload by {caller.user}",
        )
    return DatasetVersionOut.of(version)
