"""MLflow's proxied artifact service (``/api/2.0/mlflow-artifacts/artifacts/<path>``) and
``/mlflow/artifacts/list``, over Loopwright's content-addressed artifact trees.

A path is resolved to the tree that owns it (see :mod:`._uris`): a run's files, a logged
model's, or a registered version's MLflow model folder (read-only). Every path goes through
``normalize_relpath`` first, so traversal is refused with 400. Uploads stream to a temp file and
into the blob store; downloads stream from the blob store, verified as they are read.

A run whose experiment has a local folder (``tracking/artifact_locations.py``) has a ``file:``
artifact URI that MLflow clients read and write themselves; ``artifacts/list`` lists that folder.
"""

from __future__ import annotations

import mimetypes
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from ...errors import InvalidInput, NotFound, PermissionDenied
from ...paths import normalize_relpath, safe_join
from ...registry.mlflow_sources import has_folder
from ...store import artifact_trees as trees
from ...store.home import acting_as
from ...tracking.artifact_locations import ArtifactRoots, run_artifact_folder
from ...tracking.logged_models import LoggedModelService
from ...tracking.run_rows import read_experiment_id
from .._limits import streams_body
from .._state import ServerState
from ..auth import Identity
from . import _messages as m
from ._common import Editor, State, Viewer, reply
from ._uris import VERSIONS_ROOT, experiment_id_in, model_id_in, run_artifact_uri

__all__ = ["Tree", "artifacts_router", "resolve", "router"]

router = APIRouter()  # under /api/2.0/mlflow
artifacts_router = APIRouter()  # under /api/2.0/mlflow-artifacts

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Tree:
    """Where an artifact path lands: the owning tree and the path inside it ("" = its root)."""

    owner_type: str
    owner_id: str
    path: str
    writable: bool


def _same_experiment(state: ServerState, given: str, actual: str) -> bool:
    return given == actual or (given == "0" and experiment_id_in(state.tracking, "0") == actual)


def _inside(parts: list[str]) -> str:
    """The path inside a tree ("" for its root), by the native API's rules: ``/abs`` (an empty
    segment after the tree's prefix) is refused there, so it is here."""
    rest = "/".join(parts)
    return normalize_relpath(rest, what="artifact path") if rest else ""


def resolve(state: ServerState, raw: str) -> Tree:
    """The tree an MLflow artifact path names; ``NotFound`` if none, 400 if unsafe."""
    normalize_relpath(raw, what="artifact path")
    parts = raw.split("/")
    if len(parts) >= 3 and parts[0] == VERSIONS_ROOT and parts[2] == "artifacts":
        rest, version_id = _inside(parts[3:]), parts[1]
        owner = trees.MLFLOW_VERSION if has_folder(state.store, version_id) else trees.PACKAGE
        return Tree(owner, version_id, rest, writable=False)
    if len(parts) >= 4 and parts[1] == "models" and parts[3] == "artifacts":
        model = LoggedModelService(state.store).get(model_id_in(parts[2]))
        if _same_experiment(state, parts[0], model.experiment_id):
            return Tree(trees.LOGGED_MODEL, model.id, _inside(parts[4:]), writable=True)
    elif len(parts) >= 3 and parts[2] == "artifacts":
        experiment = read_experiment_id(state.store.db, parts[1])
        if experiment is not None and _same_experiment(state, parts[0], experiment):
            return Tree(trees.RUN, parts[1], _inside(parts[3:]), writable=True)
    raise NotFound(
        f"artifact path {raw!r} names no run or logged model of this server; paths look like "
        "<experiment_id>/<run_id>/artifacts/<file> or <experiment_id>/models/<model_id>/artifacts"
    )


def _writable(state: ServerState, raw: str) -> Tree:
    tree = resolve(state, raw)
    if not tree.writable:
        raise PermissionDenied(f"artifact path {raw!r} belongs to a registered model version")
    return tree


def _chunks(state: ServerState, blob_hash: str) -> Iterator[bytes]:
    with state.store.blobs.open_read(blob_hash) as reader:
        while chunk := reader.read(_CHUNK):
            yield chunk


@artifacts_router.get("/artifacts/{path:path}")
def download(path: str, state: State, _: Viewer) -> StreamingResponse:
    tree = resolve(state, path)
    row = trees.file_at(state.store.db, tree.owner_type, tree.owner_id, tree.path)
    if row is None or not tree.path:
        raise NotFound(f"artifact {path!r} does not exist (or is a folder)")
    media = mimetypes.guess_type(row.path)[0] or "application/octet-stream"
    # A file is served with its own type (MLflow's clients and UI expect that), but an HTML or
    # SVG artifact must not run as a page of this origin, where the dashboard lives: it gets a
    # sandbox of its own (an opaque origin: no cookies, no same-origin reads).
    return StreamingResponse(
        _chunks(state, row.blob_hash),
        media_type=media,
        headers={
            "Content-Length": str(row.size),
            "Content-Security-Policy": "sandbox",
            "X-Content-Type-Options": "nosniff",
        },
    )


def _store(state: ServerState, caller: Identity, tree: Tree, local: Path) -> None:
    with acting_as(caller.user):
        if tree.owner_type == trees.RUN:
            state.tracking._store_artifact(tree.owner_id, tree.path, local)
        else:
            trees.put_file(state.store, tree.owner_type, tree.owner_id, tree.path, local)


@artifacts_router.put("/artifacts/{path:path}")
@streams_body
async def upload(path: str, request: Request, state: State, caller: Editor) -> Response:
    tree = await run_in_threadpool(_writable, state, path)
    if not tree.path:
        raise InvalidInput(f"artifact path {path!r} names a folder; upload to a file path")
    fd, name = tempfile.mkstemp(prefix="lw-mlflow-upload-")
    local = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            async for chunk in request.stream():
                out.write(chunk)
        await run_in_threadpool(_store, state, caller, tree, local)
    finally:
        local.unlink(missing_ok=True)
    return reply()


@artifacts_router.delete("/artifacts/{path:path}")
def delete(path: str, state: State, caller: Editor) -> Response:
    tree = _writable(state, path)
    with acting_as(caller.user):
        if tree.owner_type == trees.RUN:
            state.tracking.delete_artifacts(tree.owner_id, tree.path or None)
        else:
            LoggedModelService(state.store).delete_files(tree.owner_id, tree.path)
    return reply()


def list_files(state: ServerState, tree: Tree) -> list[trees.Entry]:
    files = trees.files_under(state.store.db, tree.owner_type, tree.owner_id, tree.path)
    return trees.children(files, tree.path)


def entry_json(entry: trees.Entry, parent: str = "") -> dict[str, object]:
    path = f"{parent}/{entry.name}" if parent else entry.name
    message: dict[str, object] = {"path": path, "is_dir": entry.is_dir}
    if entry.size is not None:
        message["file_size"] = entry.size
    return message


@artifacts_router.get("/artifacts")
def list_(state: State, _: Viewer, path: str | None = None) -> Response:
    """The children of folder ``path`` (names only, as ``mlflow server`` lists them)."""
    if not path:
        return reply({"files": []})
    try:
        tree = resolve(state, path)
    except NotFound:
        return reply({"files": []})
    return reply({"files": [entry_json(e) for e in list_files(state, tree)]})


@router.get("/artifacts/list")
def list_run_artifacts(q: Annotated[m.ListArtifacts, Query()], state: State, _: Viewer) -> Response:
    """A run's artifacts under ``path``, with paths relative to the run's artifact root."""
    run = state.tracking.get_run(q.run)
    prefix = normalize_relpath(q.path, what="artifact path") if q.path else ""
    location = state.tracking._location_of(run.experiment_id)
    if location is None:
        entries = list_files(state, Tree(trees.RUN, run.id, prefix, writable=True))
    else:
        roots = ArtifactRoots.from_settings(state.settings)
        entries = _folder_entries(run_artifact_folder(roots, location, run.id), prefix)
    return reply(
        {
            "root_uri": run_artifact_uri(run.experiment_id, run.id, location),
            "files": [entry_json(e, prefix) for e in entries],
        }
    )


def _folder_entries(folder: Path, prefix: str) -> list[trees.Entry]:
    """The children of ``prefix`` in a run's local artifact folder (none if it is no folder).

    Links are listed as what they are, never followed: a link cannot make the listing show
    what lies outside the folder.
    """
    target = safe_join(folder, prefix, what="artifact path") if prefix else folder
    if target.is_symlink() or not target.is_dir():
        return []
    entries = []
    with os.scandir(target) as found:
        for item in found:
            is_dir = item.is_dir(follow_symlinks=False)
            size = None if is_dir else item.stat(follow_symlinks=False).st_size
            entries.append(trees.Entry(item.name, is_dir, size))
    return sorted(entries, key=lambda e: e.name)
