"""``RouteIndex``: the route a request goes to, found by its path's leading segments instead of
by trying every route in turn.

FastAPI (0.120 and later) keeps included routers as branches: a request is tried against each
branch, each branch tries its routes' patterns one by one, and the branch that matched tries
them all again to run the route. A native ``/api/v1/runs/{id}`` request made about 70 such
comparisons, a sixth of the server's own time on it.

The index is the app's first route. It groups the app's routes by the literal segments their
path starts with (``/api/v1/runs`` for ``/api/v1/runs/{run_id}``); a request is compared only
with the routes whose literal start its path has, in the app's order, and the first full match
is handed straight to that route, as FastAPI would hand it. Anything else — no route, a
method a route does not allow, a route that is not a FastAPI endpoint (a mount, the API
document) matching first — is declined, and FastAPI's own routing answers it as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fastapi import routing as fastapi_routing
from fastapi.routing import APIRoute
from starlette._utils import get_route_path
from starlette.routing import BaseRoute, Match
from starlette.types import Receive, Scope, Send

__all__ = ["RouteIndex"]

# FastAPI's internals for routers kept as branches (FastAPI >= 0.120); older versions copy
# routes into the app, and the index then serves those routes directly.
_INCLUDED = getattr(fastapi_routing, "_IncludedRouter", None)
_SCOPE_KEY = getattr(fastapi_routing, "_FASTAPI_SCOPE_KEY", "fastapi")
_CONTEXT_KEY = getattr(fastapi_routing, "_FASTAPI_EFFECTIVE_ROUTE_CONTEXT_KEY", None)
_ROUTER_KEY = getattr(fastapi_routing, "_FASTAPI_INCLUDED_ROUTER_KEY", None)
_apply_form_limits = getattr(fastapi_routing, "_apply_router_form_limits", None)
_route_selected = getattr(fastapi_routing, "_route_selected", None)

_PARAM = re.compile(r"\{")
_MERGED_KEPT = 10_000


@dataclass(frozen=True)
class _Entry:
    """One route in the app's order: what to compare a request with and how to run it."""

    order: int
    route: Any  # an APIRoute, or a route FastAPI serves itself (the index then declines)
    context: Any = None  # FastAPI's effective route context, for a route in a router
    branches: tuple[Any, ...] = ()  # the included routers leading to it, outermost first
    pattern: re.Pattern[str] | None = None  # the path's regex, when the route has one

    @property
    def servable(self) -> bool:
        return isinstance(self.route, APIRoute)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if self.pattern is not None and self.pattern.match(get_route_path(scope)) is None:
            return Match.NONE, {}  # the route's own test, without FastAPI's scope handling
        if self.context is None:
            return self.route.matches(scope)  # type: ignore[no-any-return]
        if not isinstance(self.route, APIRoute):
            return self.context.matches(scope)  # type: ignore[no-any-return]
        fastapi_scope = scope.setdefault(_SCOPE_KEY, {})
        previous = fastapi_scope.get(_CONTEXT_KEY, _MISSING)
        fastapi_scope[_CONTEXT_KEY] = self.context
        try:
            return self.route.matches(scope)
        finally:
            if previous is _MISSING:
                fastapi_scope.pop(_CONTEXT_KEY, None)
            else:
                fastapi_scope[_CONTEXT_KEY] = previous


_MISSING = object()


def _literal_head(path: str) -> tuple[str, ...]:
    """The segments of a route's path before its first parameter."""
    head = []
    for segment in path.split("/")[1:]:
        if _PARAM.search(segment):
            break
        head.append(segment)
    return tuple(head)


def _pattern(route: Any) -> re.Pattern[str] | None:
    """The regex a request's path must match for ``route`` (None: unknown, always tried)."""
    if isinstance(route, APIRoute) or isinstance(getattr(route, "original_route", None), APIRoute):
        pattern = getattr(route, "path_regex", None)
        return pattern if isinstance(pattern, re.Pattern) else None
    return None


def _path_of(route: Any, context: Any) -> str | None:
    for owner in (context, route):
        path = getattr(owner, "path_format", None) or getattr(owner, "path", None)
        if isinstance(path, str):
            return path
    return None


class RouteIndex(BaseRoute):
    """The app's routes by the literal start of their paths (see the module)."""

    def __init__(self, router: Any) -> None:
        self._router = router  # the app's: read on a request, after every route is included
        self._by_head: dict[tuple[str, ...], list[_Entry]] = {}
        self._unindexed: list[_Entry] = []  # routes without a literal path: tried always
        self._version: object = None
        # Candidates by the literal heads a path has: as many as the routes' heads combine.
        self._merged: dict[tuple[tuple[str, ...], ...], list[_Entry]] = {}

    def _routes_version(self) -> object:
        """Changes when a route is added at the top level (``include_router`` adds one). A
        route added to a router already included, after the first request, is not seen;
        counting every router's routes (FastAPI's own check) cost more than the lookup."""
        return len(self._router.routes)

    def _build(self) -> None:
        entries: list[_Entry] = []

        def walk(routes: list[Any], branches: tuple[Any, ...]) -> None:
            for route in routes:
                if route is self:
                    continue
                if _INCLUDED is not None and isinstance(route, _INCLUDED):
                    for context in route.effective_candidates():
                        if isinstance(context, _INCLUDED):
                            walk([context], (*branches, route))
                            continue
                        entries.append(
                            _Entry(
                                len(entries),
                                context.original_route,
                                context,
                                (*branches, route),
                                _pattern(context),
                            )
                        )
                    continue
                entries.append(_Entry(len(entries), route, None, branches, _pattern(route)))

        walk(self._router.routes, ())
        by_head: dict[tuple[str, ...], list[_Entry]] = {}
        unindexed = []
        for entry in entries:
            path = _path_of(entry.route, entry.context)
            if path is None:
                unindexed.append(entry)
            else:
                by_head.setdefault(_literal_head(path), []).append(entry)
        self._by_head, self._unindexed = by_head, unindexed

    def _candidates(self, path: str) -> list[_Entry]:
        version = self._routes_version()
        if version != self._version:
            self._build()
            self._merged.clear()
            self._version = version
        segments = path.split("/")[1:]
        heads = tuple(
            head
            for head in (tuple(segments[:end]) for end in range(len(segments) + 1))
            if head in self._by_head
        )
        found = self._merged.get(heads)
        if found is None:
            found = sorted(
                [*self._unindexed, *(e for head in heads for e in self._by_head[head])],
                key=lambda entry: entry.order,
            )
            if len(self._merged) < _MERGED_KEPT:
                self._merged[heads] = found
        return found

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        for entry in self._candidates(get_route_path(scope)):
            match, child = entry.matches(scope)
            if match == Match.FULL:
                if not entry.servable:
                    break  # a mount, the API document ...: FastAPI's routing serves it
                return Match.FULL, {**child, "lw_route_entry": entry}
            # A partial match (the path, not the method) yields to a later full one, as in
            # FastAPI; with none, FastAPI's routing answers (405).
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        entry: _Entry = scope.pop("lw_route_entry")
        route: APIRoute = entry.route
        if entry.context is None:
            await route.handle(scope, receive, send)
            return
        # What FastAPI's routing does once it picked this route (APIRouter.app and
        # _IncludedRouter.handle / _handle_selected).
        fastapi_scope = scope.setdefault(_SCOPE_KEY, {})
        if _apply_form_limits is not None:
            for branch in entry.branches:
                _apply_form_limits(scope, branch.include_context.form_limits)
        if _ROUTER_KEY is not None:
            fastapi_scope[_ROUTER_KEY] = entry.branches[-1]
        if _route_selected is not None:
            _route_selected(scope=scope, path=entry.context.path_format, mount=False)
        fastapi_scope[_CONTEXT_KEY] = entry.context
        scope["route"] = route
        await route.handle(scope, receive, send)
