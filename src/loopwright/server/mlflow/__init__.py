"""MLflow's REST API (``/api/2.0/mlflow/...``) over Loopwright's own entities.

Point an MLflow client at the server (``MLFLOW_TRACKING_URI=http://HOST:PORT``) and its
tracking, logged models, proxied artifacts and model registry calls land in Loopwright's store:

============================  ==============================================================
module                        endpoints
============================  ==============================================================
``_experiments``              experiments: get-by-name, create, get, search, update, delete,
                              restore, experiment tags
``_runs``                     runs: create, update, get, search, delete, restore
``_logging``                  log-metric, log-parameter, set-tag, delete-tag, log-batch,
                              log-inputs, outputs, log-model, metric history
``_logged_models``            MLflow 3 logged models: create, get, finalize, tags, params,
                              search, delete, artifact listing
``_artifacts``                ``/mlflow-artifacts/artifacts``: upload, download, list, delete;
                              ``/mlflow/artifacts/list``
``_downloads``                ``/get-artifact``, ``/model-versions/get-artifact`` (its web UI's)
``_registry``                 registered models, model versions, aliases, stages
============================  ==============================================================

Each route is served under ``/api/2.0/mlflow`` and the UI's ``/ajax-api/2.0/mlflow``. Errors
come back in MLflow's shape (``{"error_code", "message"}``), Loopwright-only codes re-coded to
MLflow's nearest one (see :mod:`.errors`). Ids, URIs and the Default experiment: :mod:`._uris`.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.routing import APIRoute

from .._routing import PrefixRouter
from ..auth import require_async
from ._common import LeanMlflowRoute, MlflowRoute

__all__ = ["routers"]

_VERSIONS = ("/api/2.0", "/ajax-api/2.0")
# Matched first: FastAPI tries routes in order, and these carry the benchmarked traffic.
_HOT_PATHS = (
    "/runs/log-metric",
    "/runs/log-batch",
    "/runs/create",
    "/runs/update",
    "/runs/get",
    "/runs/search",
    "/runs/log-parameter",
    "/runs/set-tag",
)
# Served on the lean path (.._lean): the requests an MLflow client makes per run and per point.
_LEAN_PATHS = frozenset({"/runs/log-metric", "/runs/create", "/runs/update", "/runs/get"})


def _server_info() -> APIRouter:
    router = PrefixRouter(prefix="/api/3.0/mlflow", route_class=MlflowRoute)

    @router.get("/server-info", dependencies=[Depends(require_async("viewer"))])
    async def server_info() -> dict[str, object]:
        """What MLflow clients probe before artifact transfers: no multipart, no workspaces."""
        return {
            "store_type": "SqlStore",
            "workspaces_enabled": False,
            "multipart_uploads_enabled": False,
            "multipart_downloads_enabled": False,
        }

    return router


def _flat(prefix: str, parts: list[APIRouter]) -> APIRouter:
    """One router holding the parts' routes under ``prefix``, hot paths first.

    Routes are copied rather than included: every level of included routers costs a scan on
    every request; a request outside ``prefix`` skips the router at once (``PrefixRouter``).
    """
    routes = [r for part in parts for r in part.routes if isinstance(r, APIRoute)]
    rank = {path: n for n, path in enumerate(_HOT_PATHS)}
    routes.sort(key=lambda r: rank.get(r.path, len(rank)))
    router = PrefixRouter(prefix=prefix, route_class=MlflowRoute)
    for route in routes:
        router.add_api_route(
            route.path,
            route.endpoint,
            methods=sorted(route.methods or ()),
            dependencies=route.dependencies,
            name=route.name,
            include_in_schema=prefix.startswith("/api/"),
            route_class_override=LeanMlflowRoute if route.path in _LEAN_PATHS else None,
        )
    return router


def routers() -> list[APIRouter]:
    """The MLflow routers: MLflow's API and its UI's ``ajax-api`` twin, artifacts, server info."""
    from . import _artifacts, _downloads, _experiments, _logged_models, _logging, _registry, _runs

    tracking = [
        _logging.router,
        _runs.router,
        _experiments.router,
        _logged_models.router,
        _registry.router,
        _artifacts.router,
    ]
    found = []
    for version in _VERSIONS:
        found.append(_flat(f"{version}/mlflow", tracking))
        found.append(_flat(f"{version}/mlflow-artifacts", [_artifacts.artifacts_router]))
    found.append(_server_info())
    found.append(_downloads.router)
    from . import traces

    found.extend(traces.routers())
    from .scorers import genai_routers

    found.extend(genai_routers())
    return found
