"""``/api/v1/gateway``: the LLM gateway's routes, secrets and usage.

Viewers read routes and their own usage; editors change routes and read everyone's usage and
the secrets' masks; only admins set or delete secrets. A secret's value goes in and never comes
out: answers carry its mask. Changes apply to this server's gateway at once, and to other
processes within their cache's refresh (2 s).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import Field

from ...errors import PermissionDenied
from ...gateway.config import check_route, config_to_dict
from ...gateway.entities import GatewayRoute
from ...gateway.service import GatewayService
from ...governance.tokens import Identity
from ...governance.users import role_at_least
from ...store import limits
from .._state import ServerState
from ._deps import PREFIX, Admin, Editor, State, Viewer
from ._schemas import Body, Out

__all__ = ["router"]

router = APIRouter(prefix=f"{PREFIX}/gateway", tags=["gateway"])


class RouteIn(Body):
    name: str = Field(min_length=1, max_length=limits.DEPLOYMENT_NAME)
    config: dict[str, Any]


class RouteUpdateIn(Body):
    config: dict[str, Any]
    expect_revision: int | None = Field(default=None, ge=1, le=limits.INT32_MAX)


class SecretIn(Body):
    value: str = Field(min_length=1, max_length=8192)


class RouteOut(Out):
    name: str
    config: dict[str, Any]
    revision: int
    created_by: str
    created_at: int
    updated_by: str
    updated_at: int


class SecretOut(Out):
    name: str
    mask: str
    created_by: str
    created_at: int
    updated_by: str
    updated_at: int


class UsageOut(Out):
    route: str | None
    target: str | None
    user: str | None
    requests: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    estimated_requests: int
    cost_usd: float
    mean_latency_ms: float


def _service(state: ServerState, caller: Identity) -> GatewayService:
    return GatewayService(state.store, actor=caller.user)


def _out(route: GatewayRoute) -> RouteOut:
    return RouteOut(
        name=route.name, config=config_to_dict(route.config), revision=route.revision,
        created_by=route.created_by, created_at=route.created_at,
        updated_by=route.updated_by, updated_at=route.updated_at,
    )  # fmt: skip


def _may_send_secrets(caller: Identity, config: dict[str, Any]) -> None:
    """Only admins may point a secret at an upstream: a route decides where the secret is sent,
    so an editor who could name one could send it to a server of their own."""
    if role_at_least(caller.role, "admin"):
        return
    named = check_route(config).secrets
    if named:
        raise PermissionDenied(
            f"user {caller.user!r} is {caller.role}; a route that sends secrets "
            f"({', '.join(sorted(named))}) to its upstreams needs the admin role"
        )


def _changed(request: Request) -> None:
    """This process's gateway reads routes and secrets again before its next request."""
    gateway = getattr(request.app.state, "lw_gateway", None)
    if gateway is not None:
        gateway.invalidate()


@router.get("/routes")
def list_routes(state: State, caller: Viewer) -> list[RouteOut]:
    """Every route, by name."""
    return [_out(r) for r in _service(state, caller).list_routes()]


@router.post("/routes", status_code=201)
def create_route(body: RouteIn, request: Request, state: State, caller: Editor) -> RouteOut:
    _may_send_secrets(caller, body.config)
    created = _service(state, caller).create_route(body.name, body.config)
    _changed(request)
    return _out(created)


@router.get("/routes/{name:path}")
def get_route(name: str, state: State, caller: Viewer) -> RouteOut:
    return _out(_service(state, caller).get_route(name))


@router.put("/routes/{name:path}")
def update_route(
    name: str, body: RouteUpdateIn, request: Request, state: State, caller: Editor
) -> RouteOut:
    _may_send_secrets(caller, body.config)
    updated = _service(state, caller).update_route(
        name, body.config, expect_revision=body.expect_revision
    )
    _changed(request)
    return _out(updated)


@router.delete("/routes/{name:path}", status_code=204)
def delete_route(name: str, request: Request, state: State, caller: Editor) -> Response:
    _service(state, caller).delete_route(name)
    _changed(request)
    return Response(status_code=204)


@router.get("/secrets")
def list_secrets(state: State, caller: Editor) -> list[SecretOut]:
    """Every secret's name and mask (never a value)."""
    return [SecretOut.of(s) for s in _service(state, caller).list_secrets()]


@router.put("/secrets/{name}")
def set_secret(
    name: str, body: SecretIn, request: Request, state: State, caller: Admin
) -> SecretOut:
    stored = _service(state, caller).set_secret(name, body.value)
    _changed(request)
    return SecretOut.of(stored)


@router.delete("/secrets/{name}", status_code=204)
def delete_secret(name: str, request: Request, state: State, caller: Admin) -> Response:
    _service(state, caller).delete_secret(name)
    _changed(request)
    return Response(status_code=204)


@router.get("/usage")
def usage(
    request: Request,
    state: State,
    caller: Viewer,
    route: str | None = Query(default=None, max_length=limits.DEPLOYMENT_NAME),
    user: str | None = Query(default=None, max_length=200),
    since_ms: int | None = Query(default=None, ge=0, le=limits.INT64_MAX),
    until_ms: int | None = Query(default=None, ge=0, le=limits.INT64_MAX),
    group_by: str = Query(default="route,target,user", max_length=40),
) -> list[UsageOut]:
    """Usage summed per group; a viewer sees only their own. Waits for this server's queued
    usage rows first, so a request just answered is counted."""
    if not role_at_least(caller.role, "editor"):
        user = caller.user
    gateway = getattr(request.app.state, "lw_gateway", None)
    if gateway is not None:
        gateway.usage.flush(5.0)
    groups = [g.strip() for g in group_by.split(",") if g.strip()]
    rows = _service(state, caller).usage(
        route=route, user=user, since_ms=since_ms, until_ms=until_ms, group_by=groups
    )
    return [UsageOut.of(r) for r in rows]
