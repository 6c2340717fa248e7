"""The lean path: a hot route's ordinary request served without FastAPI's dependency solving.

FastAPI serves a request by solving the endpoint's dependencies one by one (each a lookup of
what it needs, the body validated against the endpoint's signature among them): about a third
of the server's own time on MLflow's log-metric, runs/create, runs/get and runs/update. For those
routes :func:`lean_handler` reads what the endpoint's signature asks for once, when the app is
built, and on a request does only that: the body (or query) parsed and validated into the same
pydantic model, the same dependency functions called in the same order, the endpoint awaited.

Only a request that FastAPI would accept takes this path: a JSON body (``application/json``)
that parses and validates, or a query string naming each key once that validates. Anything else
— a malformed body, another content type, a repeated key, a failed validation — goes to
FastAPI's own handler for the route, which answers it exactly as before; so every error a client
can see comes from one place. What runs around the handler stays as it is: the request guard
(authentication before the body, the body cap), routing, FastAPI's request wrapper and the app's
exception handlers, which render the errors the dependencies and the endpoint raise.
"""

from __future__ import annotations

import inspect
import json
import typing
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import params
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from ..errors import LoopwrightError

__all__ = ["lean_handler"]

Dependency = Callable[[Request], Awaitable[Any]]
Recode = Callable[[LoopwrightError], LoopwrightError]
Handler = Callable[[Request], Awaitable[Response]]


def _signature(endpoint: Callable[..., Any]) -> tuple[type[BaseModel], str, list[Dependency]]:
    """The endpoint's message model, where it comes from (``body`` or ``query``), and the
    dependencies giving its other arguments, in order. Raises TypeError for an endpoint the lean
    path cannot serve exactly as FastAPI would."""
    name = getattr(endpoint, "__qualname__", repr(endpoint))
    if not inspect.iscoroutinefunction(endpoint):
        raise TypeError(f"{name}: a lean route's endpoint must be async")
    hints = typing.get_type_hints(endpoint, include_extras=True)
    names = [p.name for p in inspect.signature(endpoint).parameters.values()]
    if not names:
        raise TypeError(f"{name}: a lean route's endpoint takes its message first")
    model, source = _message(hints[names[0]], name)
    dependencies = []
    for parameter in names[1:]:
        hint = hints[parameter]
        found = [m for m in getattr(hint, "__metadata__", ()) if isinstance(m, params.Depends)]
        call = found[0].dependency if len(found) == 1 else None
        if call is None or not inspect.iscoroutinefunction(call):
            raise TypeError(f"{name}: {parameter} must be an async Depends(...) of the request")
        if [p.name for p in inspect.signature(call).parameters.values()] != ["request"]:
            raise TypeError(f"{name}: {parameter}'s dependency must take only the request")
        dependencies.append(call)
    return model, source, dependencies


def _message(hint: Any, name: str) -> tuple[type[BaseModel], str]:
    source = "body"
    if typing.get_origin(hint) is Annotated:
        hint, *metadata = typing.get_args(hint)
        if len(metadata) != 1 or not isinstance(metadata[0], params.Query):
            raise TypeError(f"{name}: the message must be a body model or a Query() model")
        source = "query"
    if not (isinstance(hint, type) and issubclass(hint, BaseModel)):
        raise TypeError(f"{name}: the message must be a pydantic model, not {hint!r}")
    scalar = all(
        typing.get_origin(field.annotation) not in (list, set, tuple, frozenset)
        for field in hint.model_fields.values()
    )
    if source == "query" and not scalar:
        raise TypeError(f"{name}: a query model with repeatable fields is FastAPI's to read")
    return hint, source


def _json_type(content_type: str | None) -> bool:
    """``application/json`` (parameters allowed): the type FastAPI surely reads as JSON. Others
    (``+json`` types, none at all) are left to FastAPI."""
    if not content_type:
        return False
    return content_type.split(";", 1)[0].strip().lower() == "application/json"


def _from_body(model: type[BaseModel], body: bytes, content_type: str | None) -> Any:
    """The model FastAPI would make of ``body``, or None when FastAPI should answer it."""
    if not body or not _json_type(content_type):
        return None
    try:
        return model.model_validate(json.loads(body))  # as Request.json() and FastAPI's field
    except (ValueError, ValidationError):  # JSONDecodeError and UnicodeDecodeError included
        return None


def _from_query(model: type[BaseModel], request: Request) -> Any:
    query = request.query_params
    if len(query.multi_items()) != len(query):
        return None  # a repeated key: FastAPI's to resolve
    try:
        return model.model_validate(dict(query))
    except ValidationError:
        return None


def lean_handler(
    endpoint: Callable[..., Awaitable[Any]],
    full: Handler,
    *,
    recode: Recode | None = None,
) -> Handler:
    """A route handler serving ``endpoint``'s ordinary requests itself and the rest through
    ``full`` (FastAPI's handler for the route). ``recode`` turns a Loopwright error into the
    one the client should see (the MLflow routes' :func:`~.mlflow.errors.to_mlflow`)."""
    model, source, dependencies = _signature(endpoint)

    async def handler(request: Request) -> Response:
        if source == "body":
            body = await request.body()  # kept by the request: FastAPI's handler reads it again
            message = _from_body(model, body, request.headers.get("content-type"))
        else:
            message = _from_query(model, request)
        if message is None:
            return await full(request)
        try:
            arguments = [await dependency(request) for dependency in dependencies]
            response = await endpoint(message, *arguments)
        except LoopwrightError as exc:
            recoded = exc if recode is None else recode(exc)
            if recoded is exc:
                raise
            raise recoded from exc
        if not isinstance(response, Response):
            raise TypeError(f"{endpoint.__qualname__} returned {type(response).__name__}")
        return response

    return handler
