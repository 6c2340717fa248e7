"""The native API's contract, route by route: documented, guarded, and failing with JSON.

Routes are enumerated from ``loopwright.server.api.routers()`` so a new route is checked without
editing this file: it must appear in the OpenAPI document with its body, refuse callers without
a token (401) and viewers when it writes (403), and answer a malformed body with a 400.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from test_route_rules import FEATURE_POST_READS

from loopwright.config import resolve_settings
from loopwright.server.api import routers
from loopwright.server.app import create_app
from loopwright.server.auth import rule_of

WRITES = {"POST", "PUT", "PATCH", "DELETE"}
# Stand-ins for path parameters: well-formed, naming nothing that exists.
SAMPLES = {"blob_hash": "0" * 64, "version": "7", "path": "a/b.txt", "key": "k", "ref": "v9"}


@dataclass
class Api:
    http: TestClient
    tokens: dict[str, str]

    def headers(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    from loopwright.governance.tokens import TokenService
    from loopwright.governance.users import UserService
    from loopwright.store.home import open_store

    settings = resolve_settings(home=tmp_path / "home")
    with open_store(settings) as store:
        users = UserService(store, actor="root")
        for name, role in (("root", "admin"), ("ed", "editor"), ("vic", "viewer")):
            users.add(name, role)
        tokens = {
            n: TokenService(store, actor="root").create(n).secret for n in ("root", "ed", "vic")
        }
    with TestClient(create_app(settings, auth=True)) as http:
        yield Api(http, tokens)


def _routes() -> list[APIRoute]:
    return [r for router in routers() for r in router.routes if isinstance(r, APIRoute)]


def _methods(route: APIRoute) -> set[str]:
    """The route's methods (FastAPI types them as optional; an ``APIRoute`` always has some)."""
    assert route.methods is not None, route.path
    return route.methods


def _rules(dependant: Any) -> set[str]:
    found = set()
    for dependency in dependant.dependencies:
        rule = rule_of(dependency.call)
        if rule is not None:
            found.add(rule)
        found |= _rules(dependency)
    return found


def _url(route: APIRoute) -> str:
    return re.sub(r"\{(\w+)(?::path)?\}", lambda m: SAMPLES.get(m[1], "nope"), route.path)


def _calls() -> list[tuple[str, str]]:
    return [(method, _url(r)) for r in _routes() for method in sorted(_methods(r))]


def test_every_route_has_one_rule_and_writes_need_an_editor() -> None:
    assert len(_routes()) > 40
    for route in _routes():
        rules = _rules(route.dependant)
        assert len(rules) == 1, f"{_methods(route)} {route.path}: rules {rules}"
        post_read = route.path.endswith("/search") or route.path in FEATURE_POST_READS
        if _methods(route) & WRITES and not post_read:
            assert rules <= {"editor", "approver", "admin"}, f"{route.path} admits {rules}"


def test_the_openapi_document_lists_every_route_and_body(api: Api) -> None:
    document = api.http.get("/openapi.json").json()
    for route in _routes():
        path = route.path.replace(":path}", "}")
        assert path in document["paths"], path
        for method in _methods(route):
            operation = document["paths"][path][method.lower()]
            assert operation["responses"], f"{method} {route.path} documents no response"
            if route.body_field is not None:
                body = operation["requestBody"]["content"]["application/json"]["schema"]
                assert "$ref" in body, f"{method} {route.path}: body {body}"
    upload = document["paths"]["/api/v1/runs/{run_id}/artifacts/files/{path}"]["put"]
    assert "application/octet-stream" in upload["requestBody"]["content"]
    download = document["paths"]["/api/v1/runs/{run_id}/artifacts/files/{path}"]["get"]
    assert "application/octet-stream" in download["responses"]["200"]["content"]
    schemas = document["components"]["schemas"]
    assert {"RunOut", "ModelVersionOut", "ApprovalRequestOut", "RunIn"} <= set(schemas)
    assert schemas["RunIn"]["additionalProperties"] is False  # unknown fields refused


@pytest.mark.parametrize(("method", "url"), _calls())
def test_no_token_is_a_401(api: Api, method: str, url: str) -> None:
    answer = api.http.request(method, url)
    assert answer.status_code == 401
    if method != "HEAD":
        assert answer.json()["code"] == "UNAUTHENTICATED"


def test_a_bad_token_is_a_401(api: Api) -> None:
    answer = api.http.get("/api/v1/runs", headers={"Authorization": "Bearer lw_not-a-token"})
    assert answer.status_code == 401


# A search is a read sent as POST (so are the feature store's reads with a body); every other
# POST, PUT, PATCH and DELETE writes.
@pytest.mark.parametrize(
    ("method", "url"),
    [
        c
        for c in _calls()
        if c[0] in WRITES and not c[1].endswith("/search") and c[1] not in FEATURE_POST_READS
    ],
)
def test_a_viewer_cannot_write(api: Api, method: str, url: str) -> None:
    answer = api.http.request(method, url, json={}, headers=api.headers("vic"))
    assert answer.status_code == 403, answer.text
    assert answer.json()["code"] == "PERMISSION_DENIED"


@pytest.mark.parametrize(
    "route", [r for r in _routes() if r.body_field is not None], ids=lambda r: r.path
)
@pytest.mark.parametrize("body", [b"[]", b'{"no_such_field": 1}', b"{not json", b'"text"'], ids=str)
def test_a_malformed_body_is_a_400(api: Api, route: APIRoute, body: bytes) -> None:
    (method,) = _methods(route)
    answer = api.http.request(
        method,
        _url(route),
        content=body,
        headers={**api.headers("root"), "Content-Type": "application/json"},
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("POST", "/api/v1/runs", {"experiment": 3}),
        ("POST", "/api/v1/runs", {"tags": {"a": 1}}),
        (
            "POST",
            "/api/v1/runs/x/metrics",
            {"metrics": [{"key": "a", "value": "1", "timestamp": 1}]},
        ),
        ("POST", "/api/v1/runs/x/metrics", {"metrics": [{"key": "", "value": 1, "timestamp": 1}]}),
        ("POST", "/api/v1/runs/x/end", {"status": "RUNNING"}),
        ("POST", "/api/v1/runs/search", {"max_results": 0}),
        ("POST", "/api/v1/runs/search", {"run_view_type": "SOME"}),
        ("PUT", "/api/v1/models/m/aliases/champion", {"version": "1"}),
        ("PUT", "/api/v1/models/m/aliases/champion", {"version": True}),
        ("POST", "/api/v1/approvals/x/reject", {"comment": ""}),
        ("POST", "/api/v1/datasets/d/versions", {"files": [{"path": "a", "size": 1, "hash": "x"}]}),
    ],
)
def test_ill_typed_fields_are_a_400_naming_the_field(
    api: Api, method: str, url: str, body: dict[str, Any]
) -> None:
    answer = api.http.request(method, url, json=body, headers=api.headers("root"))
    assert answer.status_code == 400, answer.text
    assert answer.json()["message"].startswith("body.")


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("GET", "/api/v1/runs/nope", None),
        ("GET", "/api/v1/runs/nope/metric-history?key=loss", None),
        ("GET", "/api/v1/runs/nope/artifacts", None),
        ("GET", "/api/v1/runs/nope/artifacts/files/a.txt", None),
        ("POST", "/api/v1/runs/nope/params", {"params": {"a": "1"}}),
        ("POST", "/api/v1/runs/nope/end", {}),
        ("POST", "/api/v1/runs/nope/heartbeat", None),
        ("GET", "/api/v1/experiments/nope", None),
        ("GET", "/api/v1/experiments/by-name?name=nope", None),
        ("GET", "/api/v1/environments/nope", None),
        ("GET", "/api/v1/models/nope", None),
        ("GET", "/api/v1/models/nope/versions/1", None),
        ("GET", "/api/v1/models/nope/resolve/champion", None),
        ("GET", "/api/v1/models/nope/versions/1/files/model.skops", None),
        ("PUT", "/api/v1/models/nope/aliases/champion", {"version": 1}),
        ("GET", "/api/v1/model-versions/nope", None),
        ("GET", "/api/v1/approvals/nope", None),
        ("POST", "/api/v1/approvals/nope/approve", {}),
        ("GET", "/api/v1/datasets/nope/versions", None),
        ("GET", "/api/v1/dataset-versions/nope", None),
        ("GET", "/api/v1/blobs/" + "0" * 64, None),
        ("HEAD", "/api/v1/blobs/" + "0" * 64, None),
        ("GET", "/api/v1/no-such-endpoint", None),
    ],
)
def test_unknown_ids_are_a_404(
    api: Api, method: str, url: str, body: dict[str, Any] | None
) -> None:
    answer = api.http.request(method, url, json=body, headers=api.headers("root"))
    assert answer.status_code == 404, answer.text
    if method != "HEAD":
        assert answer.json()["code"] in ("RESOURCE_DOES_NOT_EXIST", "ENDPOINT_NOT_FOUND")


def test_me_names_the_tokens_user(api: Api) -> None:
    answer = api.http.get("/api/v1/me", headers=api.headers("vic"))
    assert answer.json() == {"user": "vic", "role": "viewer"}
