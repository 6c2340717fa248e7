"""MLflow 3's scorer registry API (``/api/3.0/mlflow/scorers``) over Loopwright's scorer
versions: what ``Scorer.register(name=...)``, ``mlflow.genai.scorers.list_scorers``,
``get_scorer`` and ``delete_scorer`` call.

An MLflow scorer is stored as it is sent (kind ``mlflow``: its serialized JSON, never run by the
server), scoped to its experiment, versioned by content like every scorer version. Online
scoring (``PUT online-config``) is refused as MLflow refuses a scorer it cannot run online (400
``INVALID_PARAMETER_VALUE``, naming Loopwright's trace monitors); ``GET online-configs`` answers
that no scorer has one. MLflow's ``Scorer`` message holds the experiment id as a 32-bit integer,
which a Loopwright experiment id is not: it is left out of the replies (the client knows it).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response
from pydantic import Field

from ...evaluation.entities import ScorerVersion
from ..api._deps import Editor, State, Viewer
from ..api.evaluation import service_for
from ._common import reply
from ._messages import Message
from ._uris import experiment_id_in

if TYPE_CHECKING:
    from .._state import ServerState

__all__ = ["router"]

router = APIRouter()

_MAX_SERIALIZED = 1_000_000


def _scope(state: ServerState, experiment_id: str | None) -> str:
    return experiment_id_in(state.tracking, experiment_id or "0")


def _serialized(version: ScorerVersion) -> str:
    text = version.config.get("serialized")
    if isinstance(text, str):
        return text
    # A scorer registered through Loopwright's API: describe it in MLflow's terms.
    import json

    return json.dumps(
        {
            "name": version.name,
            "loopwright": {
                "kind": version.kind,
                "reference": version.reference,
                "config": dict(version.config),
            },
        }
    )


def scorer_json(version: ScorerVersion) -> dict[str, Any]:
    return {
        "scorer_name": version.name,
        "scorer_version": version.version,
        "serialized_scorer": _serialized(version),
        "creation_time": version.created_at,
        "scorer_id": version.id,
    }


class RegisterIn(Message):
    experiment_id: str | None = Field(default=None, max_length=64)
    name: str = Field(min_length=1, max_length=256)
    serialized_scorer: str = Field(min_length=2, max_length=_MAX_SERIALIZED)


@router.post("/scorers/register")
def register(body: RegisterIn, state: State, caller: Editor) -> Response:
    scope = _scope(state, body.experiment_id)
    with service_for(state, caller) as service:
        found = service.register_spec(
            body.name,
            kind="mlflow",
            reference=f"mlflow:{body.name}",
            digest=hashlib.sha256(body.serialized_scorer.encode()).hexdigest(),
            config={"serialized": body.serialized_scorer},
            scope=scope,
        )
    return reply(
        {
            "version": found.version,
            "scorer_id": found.id,
            "experiment_id": body.experiment_id or "0",
            "name": found.name,
            "serialized_scorer": _serialized(found),
            "creation_time": found.created_at,
        }
    )


class ListQuery(Message):
    experiment_id: str | None = Field(default=None, max_length=64)


@router.get("/scorers/list")
def list_scorers(q: Annotated[ListQuery, Query()], state: State, caller: Viewer) -> Response:
    with service_for(state, caller) as service:
        found = service.list_scorers(scope=_scope(state, q.experiment_id))
    return reply({"scorers": [scorer_json(s) for s in found]})


class VersionsQuery(Message):
    experiment_id: str | None = Field(default=None, max_length=64)
    name: str = Field(min_length=1, max_length=256)


@router.get("/scorers/versions")
def versions(q: Annotated[VersionsQuery, Query()], state: State, caller: Viewer) -> Response:
    with service_for(state, caller) as service:
        found = service.scorer_versions(q.name, scope=_scope(state, q.experiment_id))
    return reply({"scorers": [scorer_json(s) for s in sorted(found, key=lambda s: s.version)]})


class GetQuery(Message):
    experiment_id: str | None = Field(default=None, max_length=64)
    name: str = Field(min_length=1, max_length=256)
    version: int | None = Field(default=None, ge=1, le=2**31 - 1)


@router.get("/scorers/get")
def get(q: Annotated[GetQuery, Query()], state: State, caller: Viewer) -> Response:
    with service_for(state, caller) as service:
        found = service.get_scorer(q.name, q.version, scope=_scope(state, q.experiment_id))
    return reply({"scorer": scorer_json(found)})


@router.delete("/scorers/delete")
def delete(body: GetQuery, state: State, caller: Editor) -> Response:
    """MLflow's client sends DELETE with a JSON body; no version deletes every version."""
    with service_for(state, caller) as service:
        service.delete_scorer(body.name, body.version, scope=_scope(state, body.experiment_id))
    return reply({})


@router.put("/scorers/online-config")
def online_config(state: State, caller: Editor) -> Response:
    return JSONResponse(
        {
            "error_code": "INVALID_PARAMETER_VALUE",
            "message": "MLflow's online scoring runs MLflow scorers, which this server stores "
            "but does not run; score production traces with a Loopwright trace monitor "
            "(client.monitoring.create_trace_monitor, `loopwright monitors traces create`) "
            "and Loopwright scorers",
        },
        status_code=400,
    )


@router.get("/scorers/online-configs")
def online_configs(state: State, caller: Viewer) -> Response:
    return reply({"configs": []})


def genai_routers() -> list[APIRouter]:
    """Scorers and evaluation datasets under ``/api/3.0/mlflow`` and its ``ajax-api`` twin."""
    from .._routing import PrefixRouter
    from ._common import MlflowRoute
    from .genai_datasets import router as datasets

    found: list[APIRouter] = []
    for prefix in ("/api/3.0/mlflow", "/ajax-api/3.0/mlflow"):
        prefixed = PrefixRouter(prefix=prefix, route_class=MlflowRoute)
        prefixed.include_router(router)
        prefixed.include_router(datasets)
        found.append(prefixed)
    return found
