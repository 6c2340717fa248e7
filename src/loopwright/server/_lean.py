"""The lean path: a hot route's ordinary request served without FastAPI's dependency solving.

FastAPI serves a request by solving the endpoint's dependencies one by one (each a lookup of
what it needs, the body validated against the endpoint's signature among them): about a third
of the server's own time on MLflow's log-metric, runs/create, runs/get and runs/update and on
their native equivalents. A :class:`LeanRoute` reads what its endpoint's signature asks for
once, when the app is built, and on a request does only that: the body (or query) parsed and
validated into the same pydantic model, the path parameters passed on, the same dependency
functions called in the same order, the endpoint awaited, its answer turned into a response as
FastAPI turns it (its response model, its status code).

Only a request that FastAPI would accept takes this path: a JSON body (``application/json``)
that parses and validates, or a query string naming each key once that validates. Anything else
— a malformed body, another content type, a repeated key, a failed validation — goes to
FastAPI's own handler for the route, which answers it exactly as before; so every validation
error a client can see comes from one place. What runs around the handler stays as it is: the
request guard (authentication before the body, the body cap), routing, FastAPI's request
wrapper and the app's exception handlers, which render the errors the dependencies and the
endpoint raise. An endpoint the path cannot serve exactly as FastAPI would (see
:func:`_signature`, :func:`_replier`) is refused when the app is built.
"""

from __future__ import annotations

import inspect
import json
import typing
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, params
from fastapi import routing as fastapi_routing
from fastapi.datastructures import DefaultPlaceholder
from fastapi.routing import APIRoute, serialize_response
from fastapi.utils import is_body_allowed_for_status_code
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

__all__ = ["LeanRoute", "lean_handler", "lean_route"]

T = TypeVar("T", bound=Callable[..., Any])

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


@dataclass(frozen=True)
class _Signature:
    """What an endpoint takes, read once: its message (a pydantic model from the body or the
    query, if any), its path parameters and its dependencies, by parameter name."""

    message: tuple[str, type[BaseModel], str] | None  # name, model, "body" or "query"
    path: tuple[str, ...]
    dependencies: tuple[tuple[str, Callable[[Request], Awaitable[Any]]], ...]


def _signature(endpoint: Callable[..., Any], path_names: set[str]) -> _Signature:
    """Raises TypeError for an endpoint the lean path cannot serve exactly as FastAPI would:
    not async, a parameter other than a plain ``str`` path parameter, one message model and
    async dependencies taking only the request."""
    name = getattr(endpoint, "__qualname__", repr(endpoint))
    if not inspect.iscoroutinefunction(endpoint):
        raise TypeError(f"{name}: a lean route's endpoint must be async")
    hints = typing.get_type_hints(endpoint, include_extras=True)
    message = None
    path, dependencies = [], []
    for parameter in inspect.signature(endpoint).parameters.values():
        hint = hints.get(parameter.name)
        depends = [m for m in getattr(hint, "__metadata__", ()) if isinstance(m, params.Depends)]
        if parameter.default is not inspect.Parameter.empty:
            raise TypeError(f"{name}: {parameter.name} has a default; FastAPI's to fill")
        if parameter.name in path_names:
            if hint is not str:
                raise TypeError(f"{name}: path parameter {parameter.name} must be a plain str")
            path.append(parameter.name)
        elif depends:
            call = depends[0].dependency
            if len(depends) != 1 or call is None or not inspect.iscoroutinefunction(call):
                raise TypeError(f"{name}: {parameter.name} must be one async Depends(...)")
            if [p.name for p in inspect.signature(call).parameters.values()] != ["request"]:
                raise TypeError(f"{name}: {parameter.name}'s dependency must take only the request")
            dependencies.append((parameter.name, call))
        elif message is None:
            message = (parameter.name, *_message(hint, name))
        else:
            raise TypeError(f"{name}: {parameter.name} is a second message; FastAPI's to read")
    return _Signature(message, tuple(path), tuple(dependencies))


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


def _replier(route: Any) -> Callable[[Any], Awaitable[Response]]:
    """How FastAPI turns what ``route``'s endpoint returns into a response (a Response as it
    is; anything else validated and serialized by the route's response model, with its status
    code); TypeError for route options the lean path does not apply."""
    name = route.endpoint.__qualname__
    if not isinstance(route.response_class, DefaultPlaceholder):
        raise TypeError(f"{name}: a response_class is FastAPI's to apply")
    if (
        route.response_model_include is not None
        or route.response_model_exclude is not None
        or route.response_model_exclude_unset
        or route.response_model_exclude_defaults
        or route.response_model_exclude_none
    ):
        raise TypeError(f"{name}: response_model_include/exclude options are FastAPI's to apply")
    field, by_alias = route.response_field, route.response_model_by_alias
    status = {} if route.status_code is None else {"status_code": route.status_code}

    async def reply(returned: Any) -> Response:
        if isinstance(returned, Response):
            return returned
        content = await serialize_response(
            field=field, response_content=returned, by_alias=by_alias, dump_json=field is not None
        )
        if field is not None:  # FastAPI's own shortcut: the model's JSON bytes as they are
            response: Response = Response(content, media_type="application/json", **status)
        else:
            response = JSONResponse(content, **status)
        if not is_body_allowed_for_status_code(response.status_code):
            response.body = b""
        return response

    return reply


def lean_handler(route: Any, full: Handler) -> Handler:
    """A handler serving ``route``'s ordinary requests itself and the rest through ``full``
    (FastAPI's handler for it). ``route`` is the APIRoute, or FastAPI's effective context of it
    for an inclusion (which carries the same attributes). A route class that wraps the handler
    (``MlflowRoute``'s error re-coding) wraps this one the same way."""
    endpoint = route.endpoint
    signature = _signature(endpoint, set(route.param_convertors))
    reply = _replier(route)
    message_of = signature.message

    async def handler(request: Request) -> Response:
        arguments: dict[str, Any] = {}
        if message_of is not None:
            name, model, source = message_of
            if source == "body":
                body = await request.body()  # kept by the request: FastAPI's handler reads it
                message = _from_body(model, body, request.headers.get("content-type"))
            else:
                message = _from_query(model, request)
            if message is None:
                return await full(request)
            arguments[name] = message
        values = request.path_params
        for name in signature.path:
            arguments[name] = values[name]
        for name, dependency in signature.dependencies:
            arguments[name] = await dependency(request)
        return await reply(await endpoint(**arguments))

    return handler


class LeanRoute(APIRoute):
    """A route whose ordinary requests skip FastAPI's dependency solving (see the module); the
    rest, and every request of an inclusion that adds dependencies, are FastAPI's."""

    def get_route_handler(self) -> Handler:
        full = super().get_route_handler()
        route = _effective(self)
        if route is None or self.dependencies:
            return full  # dependencies beyond the endpoint's own: FastAPI's to solve
        return lean_handler(route, full)


def _effective(route: APIRoute) -> Any:
    """What FastAPI builds the handler from: the route, or for an inclusion of it (FastAPI >=
    0.120 builds one handler per inclusion) its effective context. None when that inclusion
    adds dependencies (``include_router(..., dependencies=...)``)."""
    current = getattr(fastapi_routing, "_effective_route_context_var", None)
    context = None if current is None else current.get()
    if context is None or getattr(context, "original_route", None) is not route:
        return route
    dependant = getattr(context, "dependant", None)
    if dependant is None or len(dependant.dependencies) != len(route.dependant.dependencies):
        return None
    return context


def lean_route(router: APIRouter, method: str, path: str, **options: Any) -> Callable[[T], T]:
    """``@router.post(path, ...)`` with a :class:`LeanRoute`: ``@lean_route(router, "POST",
    "/runs", status_code=201)``."""

    def register(endpoint: T) -> T:
        router.add_api_route(
            path, endpoint, methods=[method], route_class_override=LeanRoute, **options
        )
        return endpoint

    return register
