"""MLflow 2's trace calls, still in MLflow 3's client as ``deprecated_*``: StartTrace (``POST
/traces`` without a ``trace``: :mod:`.traces` hands it here), EndTrace (``PATCH
/traces/{request_id}``) and GetTraceInfo (``GET /traces/{request_id}/info``).

Their trace info is flat: ``request_id``, ``timestamp_ms``, ``execution_time_ms``, ``status``,
``request_metadata`` and ``tags`` as lists of ``{key, value}``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Response
from pydantic import Field

from ...store.home import acting_as
from ..api._deps import Editor, State, Viewer
from . import traces_convert as convert
from ._common import MlflowRoute, reply
from ._messages import Enum32, Int64, Message
from ._uris import experiment_id_in

if TYPE_CHECKING:
    from ...governance.tokens import Identity
    from ...tracing.entities import Trace
    from .._state import ServerState

__all__ = ["StartTraceV2", "router", "start"]

router = APIRouter(route_class=MlflowRoute)
_STATUSES = {"OK": "OK", "ERROR": "ERROR", "IN_PROGRESS": "IN_PROGRESS"}


class StartTraceV2(Message):
    experiment_id: str | None = None
    timestamp_ms: Int64 | None = None
    request_metadata: list[dict[str, Any]] = Field(default_factory=list, max_length=1000)
    tags: list[dict[str, Any]] = Field(default_factory=list, max_length=1000)


class EndTraceV2(Message):
    timestamp_ms: Int64 | None = None
    status: str | Enum32 | None = None
    request_metadata: list[dict[str, Any]] = Field(default_factory=list, max_length=1000)
    tags: list[dict[str, Any]] = Field(default_factory=list, max_length=1000)


def _pairs(items: list[dict[str, Any]]) -> dict[str, str]:
    return {str(item.get("key")): str(item.get("value", "")) for item in items if item.get("key")}


def _info(trace: Trace) -> dict[str, Any]:
    return {
        "trace_info": {
            "request_id": f"tr-{trace.trace_id}",
            "experiment_id": trace.experiment_id or "0",
            "timestamp_ms": trace.request_time,
            "execution_time_ms": trace.duration_ms or 0,
            "status": trace.state,
            "request_metadata": [
                {"key": k, "value": v} for k, v in trace.metadata.items() if not k.startswith("lw.")
            ],
            "tags": [{"key": k, "value": v} for k, v in trace.tags.items()],
        }
    }


def start(body: StartTraceV2, state: ServerState, caller: Identity) -> Response:
    """StartTrace: a new trace in progress; the server picks its id."""
    from ..._ids import now_ms
    from ...tracing.service import TracingService

    with acting_as(caller.user):
        experiment = body.experiment_id
        experiment_id = experiment_id_in(state.tracking, experiment) if experiment else None
        trace = TracingService(state.store).record_info(
            os.urandom(16).hex(),
            experiment_id=experiment_id,
            request_time=body.timestamp_ms if body.timestamp_ms is not None else now_ms(),
            duration_ms=None,
            state="IN_PROGRESS",
            tags=_pairs(body.tags),
            metadata=_pairs(body.request_metadata),
        )
    return reply(_info(trace))


@router.patch("/traces/{request_id}")
def end(request_id: str, body: EndTraceV2, state: State, caller: Editor) -> Response:
    """EndTrace: its end time and status, with more metadata and tags."""
    from ...tracing.service import TracingService

    service = TracingService(state.store)
    bare = convert.trace_id_in(request_id)
    before = service.get(bare, spans=False)
    status = body.status if isinstance(body.status, str) else None
    ended = body.timestamp_ms
    with acting_as(caller.user):
        trace = service.record_info(
            bare,
            experiment_id=None,
            request_time=before.request_time,
            duration_ms=None if ended is None else max(0, ended - before.request_time),
            state=_STATUSES.get(status or "", "OK"),
            tags=_pairs(body.tags),
            metadata=_pairs(body.request_metadata),
        )
    return reply(_info(trace))


@router.get("/traces/{request_id}/info")
def info(request_id: str, state: State, caller: Viewer) -> Response:
    """GetTraceInfo (a viewer finds only their own gateway traces)."""
    from ...tracing.service import TracingService

    service = TracingService(state.store, reader=(caller.user, caller.role))
    return reply(_info(service.get(convert.trace_id_in(request_id), spans=False)))
