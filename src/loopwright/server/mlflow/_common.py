"""What MLflow handlers share: the server state, the caller and its role, MLflow's limits, replies.

Handlers are plain ``def`` functions (FastAPI runs them in its thread pool): they do blocking
database work and must not stall the event loop. The hottest (log-metric, log-batch of points,
runs/create, runs/get, runs/update) are ``async`` and run their work through ``.._hot.run_hot``:
on the loop when the database need not wait, else in the thread pool. Replies are built as JSON
directly; there is no response model to validate on the way out.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from fastapi.routing import APIRoute

from ...errors import InvalidInput, LoopwrightError
from ...store import limits
from ...tracking import _validate
from .._lean import LeanRoute
from .._state import ServerState
from ..api._deps import Editor, State, Viewer  # the native API's, shared
from ..auth import Identity
from .errors import to_mlflow

__all__ = [
    "MAX_KEY",
    "MAX_PARAM_VALUE",
    "MAX_REGISTRY_TAG_VALUE",
    "MAX_TAG_VALUE",
    "Editor",
    "LeanMlflowRoute",
    "MlflowRoute",
    "State",
    "Viewer",
    "check_key",
    "check_length",
    "check_param",
    "check_tag",
    "reply",
    "run_user",
]

# MLflow's limits (mlflow/utils/validation.py); declared with the schema, enforced by the services.
MAX_KEY = limits.KEY
MAX_PARAM_VALUE = limits.PARAM_VALUE
MAX_TAG_VALUE = limits.TAG_VALUE
MAX_REGISTRY_TAG_VALUE = limits.REGISTRY_TAG_VALUE


class MlflowRoute(APIRoute):
    """A route whose Loopwright errors reach the client re-coded in MLflow's vocabulary."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await handle(request)
            except LoopwrightError as exc:
                recoded = to_mlflow(exc)
                if recoded is exc:
                    raise
                raise recoded from exc

        return handler


class LeanMlflowRoute(MlflowRoute, LeanRoute):
    """An MLflow route on the lean path (:mod:`.._lean`): ``MlflowRoute`` re-codes the errors of
    the handler ``LeanRoute`` builds (lean or FastAPI's), as it does for FastAPI's."""


def reply(message: dict[str, Any] | None = None) -> Response:
    body = json.dumps(message or {}, separators=(",", ":"), allow_nan=False)
    return Response(body, media_type="application/json")


def run_user(state: ServerState, caller: Identity, claimed: str | None) -> str:
    """Who a run is recorded as: the authenticated caller; without auth, the user the MLflow
    client names (``user_id``), as ``mlflow server`` records it."""
    if state.auth_enabled or not claimed:
        return caller.user
    return claimed[:200]


def check_length(what: str, value: str | None, limit: int) -> None:
    """Refuse a string longer than its column (PostgreSQL would refuse it as a server error)."""
    if value is not None and len(value) > limit:
        raise InvalidInput(f"{what} is {len(value)} characters long; the limit is {limit}")


def check_key(kind: str, key: str) -> str:
    """The rule tracking applies to keys, checked before anything of a request is written."""
    return _validate.check_key(kind, key)


def check_param(key: str, value: str) -> None:
    _validate.checked_params({key: value})


def check_tag(key: str, value: str) -> None:
    _validate.checked_tags({key: value})
