"""The route index sends every request where FastAPI's own routing would, and declines the
rest (no route, a method a route does not allow) to FastAPI, which answers as before."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter, Depends
from fastapi.testclient import TestClient
from starlette.routing import Match

from loopwright.config import resolve_settings
from loopwright.server._route_index import RouteIndex
from loopwright.server.app import create_app
from loopwright.server.auth import public


@pytest.fixture
def app(tmp_path: Path) -> Any:
    return create_app(resolve_settings(home=tmp_path / "home"), auth=False)


def _scope(method: str, path: str) -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}


def _fastapi_choice(app: Any, scope: dict[str, Any]) -> Any:
    """The route FastAPI's routing runs for ``scope`` (the index left out), or None."""
    for route in app.router.routes:
        if isinstance(route, RouteIndex):
            continue
        match, child = route.matches(scope)
        if match != Match.FULL:
            continue
        select = getattr(route, "_match", None)  # an included router (FastAPI >= 0.120)
        if select is None:
            return child.get("route", route)
        fastapi_scope = scope.setdefault("fastapi", {})
        fastapi_scope["included_router"] = route
        chosen = select(scope)
        while hasattr(chosen[2], "_match"):  # a router included in a router
            chosen = chosen[2]._match(scope)
        return chosen[2] if chosen[0] == Match.FULL else None
    return None


def test_the_index_is_the_first_route(app: Any) -> None:
    assert isinstance(app.router.routes[0], RouteIndex)


def test_every_route_is_found_where_fastapi_finds_it(app: Any) -> None:
    index: RouteIndex = app.router.routes[0]
    index._candidates("/")  # built
    entries = sorted((e for found in index._by_head.values() for e in found), key=lambda e: e.order)
    checked = 0
    for entry in entries:
        if not entry.servable:
            continue
        path = getattr(entry.context, "path_format", None) or entry.route.path
        concrete = re.sub(r"\{[^}]+\}", "x1", path)
        for method in sorted(entry.route.methods):
            match, child = index.matches(_scope(method, concrete))
            chosen = child["lw_route_entry"].route if match == Match.FULL else None
            expected = _fastapi_choice(app, _scope(method, concrete))
            assert chosen is expected, f"{method} {concrete}: {chosen} != {expected}"
            checked += 1
    assert checked > 200  # both APIs, both MLflow versions


def test_paths_no_route_takes_are_answered_by_fastapi(app: Any) -> None:
    index: RouteIndex = app.router.routes[0]
    with TestClient(app) as http:
        wrong_method = http.get("/api/2.0/mlflow/runs/create")
        unknown = http.post("/api/2.0/mlflow/runs/nowhere", json={})
        native_unknown = http.get("/api/v1/nowhere/at/all")
        docs = http.get("/openapi.json")
    assert index.matches(_scope("GET", "/api/2.0/mlflow/runs/create"))[0] == Match.NONE
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error_code"] == "METHOD_NOT_ALLOWED"
    assert unknown.status_code == 404
    assert unknown.json()["error_code"] == "ENDPOINT_NOT_FOUND"
    assert native_unknown.status_code == 404
    assert docs.status_code == 200 and "paths" in docs.json()


def test_a_method_another_route_allows_on_the_same_path_reaches_it(app: Any) -> None:
    """``/api/v1/runs`` is a GET route and a POST route: the first one's partial match (the
    path, not the method) yields to the second's full one."""
    with TestClient(app) as http:
        http.post("/api/v1/experiments", json={"name": "e"}).raise_for_status()
        created = http.post("/api/v1/runs", json={"experiment": "e"})
        listed = http.get("/api/v1/runs", params={"experiment": "e"})
    assert created.status_code == 201, created.text
    assert listed.status_code == 200
    assert [run["id"] for run in listed.json()] == [created.json()["id"]]


def test_a_router_included_after_the_first_request_is_served(app: Any) -> None:
    with TestClient(app) as http:
        assert http.get("/health").text == "OK"
        late = APIRouter(prefix="/late")

        @late.get("/hello", dependencies=[Depends(public)])
        def hello() -> dict[str, str]:
            return {"hello": "late"}

        app.include_router(late)
        assert http.get("/late/hello").json() == {"hello": "late"}
    index: RouteIndex = app.router.routes[0]
    assert index.matches(_scope("GET", "/late/hello"))[0] == Match.FULL
