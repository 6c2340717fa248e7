"""``/ui/gateway``: the LLM gateway's routes (targets, split, fallbacks, guardrails, limits) and
their usage per route, target and user over the last hour, day or week, with a chart over time.

Routes come from the gateway service as ``/api/v1/gateway`` builds it; usage follows the API's
rule: a viewer sees only their own, editors everyone's. It is read in one grouped pass per page
(``_gateway_usage``) for every table and chart. No secret is shown: a target names the secret it
sends (its value never leaves the store; the page shows not even its mask).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..._ids import now_ms
from ...errors import InvalidInput
from ...governance.users import role_at_least
from ..api._deps import State, Viewer
from ..auth import UI_PREFIX
from ._filter_text import link_filter
from ._gateway_usage import UsageCube, read_cube
from ._page import render

if TYPE_CHECKING:
    from ...governance.tokens import Identity
    from .._state import ServerState

__all__ = ["WINDOWS", "Window", "router"]

router = APIRouter(prefix=UI_PREFIX, include_in_schema=False)


@dataclass(frozen=True)
class Window:
    key: str
    label: str
    span_ms: int
    bucket_ms: int


_HOUR = 3_600_000
WINDOWS = {
    w.key: w
    for w in (
        Window("1h", "last hour", _HOUR, 5 * 60_000),
        Window("24h", "last 24 hours", 24 * _HOUR, _HOUR),
        Window("7d", "last 7 days", 7 * 24 * _HOUR, 6 * _HOUR),
    )
}


def _window(request: Request) -> Window:
    key = request.query_params.get("window") or "24h"
    if key not in WINDOWS:
        raise InvalidInput(f"window {key[:20]!r} is not one of {', '.join(WINDOWS)}")
    return WINDOWS[key]


def _service(state: Any, caller: Identity) -> Any:
    from ...gateway.service import GatewayService

    return GatewayService(state.store, actor=caller.user)


def _own_only(caller: Identity) -> str | None:
    """The user whose usage the caller may see (None: everyone's), as the API decides."""
    return None if role_at_least(caller.role, "editor") else caller.user


def _flush(request: Request) -> None:
    """This server's queued usage rows first, so a request just answered is counted."""
    gateway = getattr(request.app.state, "lw_gateway", None)
    if gateway is not None:
        gateway.usage.flush(2.0)


@router.get("/gateway")
def gateway(request: Request, state: State, caller: Viewer) -> Response:
    """Every route with its usage in the window, usage per user, requests over time."""
    window = _window(request)
    _flush(request)
    routes = _service(state, caller).list_routes()
    cube = _cube(state, window, user=_own_only(caller))
    return render(
        request,
        "gateway/list.html",
        routes=routes,
        per_route={u.route: u for u in cube.summaries("route")},
        per_user=cube.summaries("user"),
        window=window,
        windows=WINDOWS.values(),
        own_only=_own_only(caller) is not None,
        chart=cube.series("route"),
        tokens_chart=cube.series("route", "tokens"),
    )


@router.get("/gateway/routes/{name:path}")
def route(request: Request, name: str, state: State, caller: Viewer) -> Response:
    """One route: its configuration and its usage per target and user in the window."""
    window = _window(request)
    _flush(request)
    found = _service(state, caller).get_route(name)
    cube = _cube(state, window, route=name, user=_own_only(caller))
    total = cube.summaries()
    return render(
        request,
        "gateway/route.html",
        route=found,
        config=found.config,
        guardrails=[(g, _params(g.params)) for g in found.config.guardrails],
        total=total[0] if total else None,
        per_target=cube.summaries("target"),
        per_user=cube.summaries("user"),
        window=window,
        windows=WINDOWS.values(),
        own_only=_own_only(caller) is not None,
        chart=cube.series("target"),
        traces_filter=link_filter("gateway_route", name),
    )


def _cube(
    state: ServerState, window: Window, *, route: str | None = None, user: str | None = None
) -> UsageCube:
    until = now_ms()
    return read_cube(
        state.store.db,
        start=until - window.span_ms,
        until=until,
        bucket_ms=window.bucket_ms,
        route=route,
        user=user,
    )


def _params(params: Mapping[str, Any]) -> str:
    """A guardrail's parameters as the route was given them (the checks' compiled forms,
    ``_``-prefixed, left out)."""
    shown = {k: v for k, v in params.items() if not k.startswith("_")}
    return json.dumps(shown, sort_keys=True, default=str) if shown else ""
