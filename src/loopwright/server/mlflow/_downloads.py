"""The file downloads MLflow's server answers outside its REST API: ``/get-artifact`` (a run's
file) and ``/model-versions/get-artifact`` (a registered version's), which its web UI and
tests call.

Both check the path before anything else, as MLflow does (an unsafe one is answered with
MLflow's ``Invalid path``), then stream the file through the proxied-artifact download of
:mod:`._artifacts`. MLflow's server also takes ``//model-versions/get-artifact`` (Flask merges
the slashes; Starlette does not, so that spelling is routed too).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from ...errors import NotFound
from ...paths import normalize_relpath
from . import _messages as m
from ._artifacts import download
from ._common import MlflowRoute, State, Viewer
from ._uris import VERSIONS_ROOT

__all__ = ["PATHS", "router"]

PATHS = ("/get-artifact", "/model-versions/get-artifact", "//model-versions/get-artifact")

router = APIRouter(route_class=MlflowRoute)


@router.get(PATHS[0])
def run_artifact(
    q: Annotated[m.RunArtifact, Query()], state: State, caller: Viewer
) -> StreamingResponse:
    """One file of a run's artifacts."""
    path = normalize_relpath(q.path, what="artifact path")
    run = state.tracking.get_run(q.run)
    return download(f"{run.experiment_id}/{run.id}/artifacts/{path}", state, caller)


def version_artifact(
    q: Annotated[m.VersionArtifact, Query()], state: State, caller: Viewer
) -> StreamingResponse:
    """One file of a registered version's MLflow model folder."""
    path = normalize_relpath(q.path, what="artifact path")
    version = state.registry(caller).get_version(q.name, q.number)
    if version.status == "DELETED":
        raise NotFound(f"version {version.version} of model {version.model!r} does not exist")
    return download(f"{VERSIONS_ROOT}/{version.id}/artifacts/{path}", state, caller)


for _path in PATHS[1:]:
    router.add_api_route(_path, version_artifact, methods=["GET"], include_in_schema=False)
