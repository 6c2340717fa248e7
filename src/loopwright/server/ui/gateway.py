"""``/ui/gateway``: the LLM gateway's routes (targets, split, fallbacks, guardrails, limits) and
their usage per route, target and user over the last hour, day or week, with a chart over time.

Reads go through the gateway service as ``/api/v1/gateway`` builds it, with the API's rule:
a viewer sees only their own usage, editors everyone's. No secret is shown: a target names the
secret it sends (its value never leaves the store; the page shows not even its mask). Usage
over time is one grouped query per page (buckets of the window), not one per bucket.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..._ids import now_ms
from ...errors import InvalidInput
from ...governance.users import role_at_least
from ...store import schema as t
from ..api._deps import State, Viewer
from ..auth import UI_PREFIX
from ._filter_text import link_filter
from ._page import render

if TYPE_CHECKING:
    from ...gateway.entities import UsageSummary
    from ...governance.tokens import Identity
    from ...store.database import Database

__all__ = ["WINDOWS", "Window", "router", "usage_series"]

router = APIRouter(prefix=UI_PREFIX, include_in_schema=False)

MAX_SERIES = 8  # routes (or targets) drawn in one chart; the tables list them all


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
    service = _service(state, caller)
    user = _own_only(caller)
    until = now_ms()
    since = until - window.span_ms
    per_route = {
        u.route: u
        for u in service.usage(user=user, since_ms=since, until_ms=until, group_by=["route"])
    }
    per_user = service.usage(user=user, since_ms=since, until_ms=until, group_by=["user"])
    routes = service.list_routes()
    return render(
        request,
        "gateway/list.html",
        routes=routes,
        per_route=per_route,
        per_user=per_user,
        window=window,
        windows=WINDOWS.values(),
        own_only=user is not None,
        chart=usage_series(state.store.db, window, until, "route", user=user),
        tokens_chart=usage_series(
            state.store.db, window, until, "route", user=user, measure="tokens"
        ),
    )


@router.get("/gateway/routes/{name:path}")
def route(request: Request, name: str, state: State, caller: Viewer) -> Response:
    """One route: its configuration and its usage per target and user in the window."""
    window = _window(request)
    _flush(request)
    service = _service(state, caller)
    found = service.get_route(name)
    user = _own_only(caller)
    until = now_ms()
    since = until - window.span_ms

    def usage(*groups: str) -> list[UsageSummary]:
        found_usage: list[UsageSummary] = service.usage(
            route=name, user=user, since_ms=since, until_ms=until, group_by=list(groups)
        )
        return found_usage

    total = usage()
    return render(
        request,
        "gateway/route.html",
        route=found,
        config=found.config,
        guardrails=[(g, _params(g.params)) for g in found.config.guardrails],
        total=total[0] if total else None,
        per_target=usage("target"),
        per_user=usage("user"),
        window=window,
        windows=WINDOWS.values(),
        own_only=user is not None,
        chart=usage_series(state.store.db, window, until, "target", route=name, user=user),
        traces_filter=link_filter("gateway_route", name),
    )


def _params(params: Mapping[str, Any]) -> str:
    """A guardrail's parameters as the route was given them (the checks' compiled forms,
    ``_``-prefixed, left out)."""
    shown = {k: v for k, v in params.items() if not k.startswith("_")}
    return json.dumps(shown, sort_keys=True, default=str) if shown else ""


def usage_series(
    db: Database,
    window: Window,
    until: int,
    by: str,
    *,
    route: str | None = None,
    user: str | None = None,
    measure: str = "requests",
) -> dict[str, Any]:
    """A chart spec (``lw.js``): ``measure`` (``requests``, ``errors`` or ``tokens``) per
    bucket of ``window`` ending at ``until``, one series per ``by`` (``route`` or ``target``),
    the busiest :data:`MAX_SERIES` of them."""
    u = t.gateway_usage.c
    start = until - window.span_ms
    column = {"route": u.route, "target": u.target}[by]
    value = {
        "requests": sa.func.count(),
        "errors": sa.func.sum(sa.case((u.status >= 400, 1), else_=0)),
        "tokens": sa.func.sum(u.prompt_tokens + u.completion_tokens),
    }[measure]
    bucket = (u.created_at - start) // window.bucket_ms  # integer division in SQL
    query = sa.select(column, bucket.label("bucket"), value.label("value")).where(
        u.created_at >= start, u.created_at < until
    )
    if route is not None:
        query = query.where(u.route == route)
    if user is not None:
        query = query.where(u.user_name == user)
    query = query.group_by(column, bucket)
    with db.read() as conn:
        rows = conn.execute(query).all()
    count = -(-window.span_ms // window.bucket_ms)
    xs = [start + (i + 1) * window.bucket_ms for i in range(count)]
    series: dict[str, list[float]] = {}
    for key, index, amount in rows:
        values = series.setdefault(str(key), [0.0] * count)
        if 0 <= int(index) < count:
            values[int(index)] += float(amount or 0)
    busiest = sorted(series, key=lambda k: (-sum(series[k]), k))[:MAX_SERIES]
    note = f"the busiest {MAX_SERIES} of {len(series)} {by}s" if len(series) > MAX_SERIES else ""
    return {
        "kind": "line",
        "x_label": "bucket end",
        "x_time": True,
        "y_label": measure,
        "series": [{"label": key, "x": xs, "y": series[key]} for key in sorted(busiest)],
        "note": note,
    }
