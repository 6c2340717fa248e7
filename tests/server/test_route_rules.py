"""Every route says who may call it; bodies are capped; errors are JSON with a code."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _routes import all_routes
from fastapi import Depends
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from loopwright.config import resolve_settings
from loopwright.server.app import create_app
from loopwright.server.auth import require, rule_of

# Routes FastAPI adds itself: the API document and its viewers, open to all on purpose.
FRAMEWORK_ROUTES = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


@pytest.fixture
def app(tmp_path: Path) -> Any:
    return create_app(resolve_settings(home=tmp_path / "home"))


def _rules(dependant: Any) -> list[str]:
    found = []
    for dependency in dependant.dependencies:
        rule = rule_of(dependency.call)
        if rule is not None:
            found.append(rule)
        found.extend(_rules(dependency))
    return found


def test_every_route_declares_one_access_rule(app: Any) -> None:
    missing, doubled = [], []
    routes = all_routes(app.routes)
    assert len(routes) > 100  # the native and the MLflow APIs are both there
    for route in routes:
        if not isinstance(route, APIRoute):
            assert route.path in FRAMEWORK_ROUTES, f"unexpected non-API route {route.path}"
            continue
        rules = _rules(route.dependant)
        where = f"{sorted(route.methods or ())} {route.path}"
        if not rules:
            missing.append(where)
        elif len(set(rules)) > 1:
            doubled.append(f"{where}: {rules}")
    assert not missing, f"routes without an access rule: {missing}"
    assert not doubled, f"routes with conflicting rules: {doubled}"


# The feature store's reads that take a body: a plan, entity rows, an online lookup, a skew check.
FEATURE_POST_READS = {
    f"/api/v1/features/{name}" for name in ("plan", "historical", "online", "skew")
}
# The dashboard's sign-in (nobody is known yet), sign-out (forgets a cookie) and the audit
# chain's check (stores nothing): posts that change nothing stored, for the CSRF check a post
# gets (tests/server/ui/test_ui_session.py, test_ui_audit.py).
DASHBOARD_SESSION = {"/ui/login", "/ui/logout", "/ui/audit/verify"}
# The LLM gateway's calls (server/gateway_routes.py): inference, which stores only usage and a
# trace, as a prediction would; a gateway route's own min_role can ask for more than viewer.
GATEWAY_CALLS = {"/v1/chat/completions", "/v1/completions", "/v1/embeddings"}


def test_writes_need_more_than_viewer(app: Any) -> None:
    """A route that changes state (POST/PUT/PATCH/DELETE) never admits a bare viewer."""
    lax = []
    for route in all_routes(app.routes):
        if isinstance(route, APIRoute) and (route.methods or set()) & WRITES:
            rules = _rules(route.dependant)
            # MLflow's client sends some reads as POST (searches, latest versions): the only
            # allowed exceptions.
            is_post_read = (
                "search" in route.path
                or route.path.endswith("get-latest-versions")
                or route.path.endswith("/traces/calculate-filter-correlation")
                or route.path.endswith("/traces/metrics")
                or route.path in FEATURE_POST_READS
                or route.path in DASHBOARD_SESSION
                or route.path in GATEWAY_CALLS
            )
            if set(rules) & {"viewer", "public"} and not is_post_read:
                lax.append(f"{sorted(route.methods or ())} {route.path}: {rules}")
    assert not lax, f"writes open to viewers: {lax}"


# Deleting traces erases the record of what the models did: admin on every route that does it,
# MLflow's (2.0, 3.0 and the UI's ajax twins of both; listed here under their router's prefix)
# as the native one.
NATIVE_TRACE_DELETE = "/api/v1/traces/delete"
MLFLOW_TRACE_DELETE = "/traces/delete-traces"


def test_deleting_traces_needs_an_admin_on_every_route(app: Any) -> None:
    found = [
        (route.path, set(_rules(route.dependant)))
        for route in all_routes(app.routes)
        if isinstance(route, APIRoute)
        and (route.path == NATIVE_TRACE_DELETE or route.path.endswith(MLFLOW_TRACE_DELETE))
    ]
    paths = sorted(path for path, _ in found)
    assert paths.count(NATIVE_TRACE_DELETE) == 1, paths
    assert sum(path.endswith(MLFLOW_TRACE_DELETE) for path in paths) == 4, paths
    lax = [(path, rules) for path, rules in found if rules != {"admin"}]
    assert not lax, f"trace deletes open to less than admin: {lax}"


def test_a_rule_names_a_known_role() -> None:
    with pytest.raises(ValueError, match="unknown role"):
        require("superuser")


@pytest.fixture
def capped(tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(resolve_settings(home=tmp_path / "home", max_request_bytes=1000))

    @app.post("/echo-test", dependencies=[Depends(require("viewer"))])
    def echo(body: dict[str, Any]) -> dict[str, Any]:
        return body

    with TestClient(app) as http:
        yield http


def test_large_bodies_are_refused_with_413_and_json(capped: TestClient) -> None:
    ok = capped.post("/echo-test", json={"a": "x" * 10})
    assert ok.status_code == 200
    big = capped.post("/echo-test", json={"a": "x" * 5000})
    assert big.status_code == 413
    assert big.json()["code"] == "REQUEST_TOO_LARGE"

    def chunks() -> Iterator[bytes]:
        yield b'{"a": "'
        for _ in range(50):
            yield b"x" * 100
        yield b'"}'

    chunked = capped.post(
        "/echo-test", content=chunks(), headers={"content-type": "application/json"}
    )
    assert chunked.status_code == 413


def test_malformed_requests_get_json_errors(capped: TestClient) -> None:
    bad = capped.post(
        "/echo-test", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert bad.status_code == 400
    assert bad.json()["code"] == "INVALID_PARAMETER_VALUE"
    wrong_method = capped.get("/echo-test")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["code"] == "METHOD_NOT_ALLOWED"
