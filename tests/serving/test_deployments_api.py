"""Deployments over the native REST API: who may do what; statuses that say what happened."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from loopwright.client import Client
from loopwright.config import resolve_settings
from loopwright.server.app import create_app

pytest.importorskip("sklearn")


@dataclass
class Api:
    http: TestClient
    tokens: dict[str, str]

    def call(self, user: str, method: str, path: str, body: object = None) -> tuple[int, object]:
        answer = self.http.request(
            method,
            "/api/v1" + path,
            json=body,
            headers={"Authorization": f"Bearer {self.tokens[user]}"},
        )
        return answer.status_code, answer.json() if answer.content else None


@pytest.fixture
def api(tmp_path: Path, db_uri: str) -> Iterator[Api]:
    """Model ``m`` v1 and v2 registered by ``ed`` (an editor) under the default policy; ``vic``
    views, ``bob`` approves."""
    from sklearn.dummy import DummyClassifier

    from loopwright.governance.tokens import TokenService
    from loopwright.governance.users import UserService

    settings = resolve_settings(home=tmp_path / "home", db_uri=db_uri)
    with Client(resolve_settings(home=tmp_path / "home", db_uri=db_uri, user="ed")) as ed:
        users = UserService(ed.store, actor="root")
        for name, role in (("root", "admin"), ("ed", "editor"), ("bob", "approver")):
            users.add(name, role)
        users.add("vic", "viewer")
        with ed.start_run(experiment="m") as run:
            run.log_model(DummyClassifier().fit([[0], [1]], [0, 1]))
        ed.registry.register("m", run_id=run.id)
        ed.registry.register("m", run_id=run.id)
        tokens = TokenService(ed.store, actor="root")
        secrets = {name: tokens.create(name).secret for name in ("root", "ed", "bob", "vic")}
    with TestClient(create_app(settings, auth=True)) as http:
        yield Api(http, secrets)


def _approve_traffic(api: Api, body: object) -> None:
    message = str(body)
    request_id = message.split("request ")[1].split(")")[0]
    assert api.call("bob", "POST", f"/approvals/{request_id}/approve", {})[0] == 200


def test_viewers_read_editors_change(api: Api) -> None:
    create = {"name": "api", "model_uri": "models:/m/1"}
    status, body = api.call("ed", "POST", "/deployments", create)
    assert status == 403 and "approved" in str(body)  # v1 is not approved for traffic yet
    _approve_traffic(api, body)
    assert api.call("vic", "POST", "/deployments", create)[0] == 403
    status, body = api.call("ed", "POST", "/deployments", create)
    assert status == 201 and body["revision"] == 1  # type: ignore[index]
    traffic = {"variants": [{"name": "primary", "model_uri": "models:/m/1", "weight": 1}]}
    beat = {"url": "http://127.0.0.1:9000", "pid": 7, "host": "box"}
    for method, path, payload in [
        ("PUT", "/deployments/api/traffic", traffic),
        ("POST", "/deployments/api/promote", None),
        ("POST", "/deployments/api/rollback", {}),
        ("POST", "/deployments/api/heartbeat", beat),
        ("DELETE", "/deployments/api", None),
    ]:
        assert api.call("vic", method, path, payload)[0] == 403, path
    for path in ["/deployments", "/deployments/api", "/deployments/api/history"]:
        assert api.call("vic", "GET", path)[0] == 200, path
    assert api.call("ed", "POST", "/deployments/api/heartbeat", beat)[0] == 200
    status, body = api.call("vic", "GET", "/deployments/api/instances")
    assert status == 200 and isinstance(body, list)
    assert [i["url"] for i in body] == ["http://127.0.0.1:9000"]
    status, body = api.call("ed", "PUT", "/deployments/api/traffic", traffic)
    assert status == 200 and body["revision"] == 2  # type: ignore[index]
    status, body = api.call("ed", "POST", "/deployments/api/rollback", {"to_revision": 1})
    assert status == 200 and body["revision"] == 3  # type: ignore[index]
    assert api.call("ed", "DELETE", "/deployments/api")[0] == 204
    assert api.call("vic", "GET", "/deployments/api")[0] == 404


def test_bad_requests_say_what_is_wrong(api: Api) -> None:
    root_policy = {"rules": [], "expires_after_s": 60}
    assert api.call("root", "PUT", "/models/m/policy", root_policy)[0] == 200
    assert (
        api.call("ed", "POST", "/deployments", {"name": "api", "model_uri": "models:/m/1"})[0]
        == 201
    )
    cases = [
        ("POST", "/deployments", {"name": "api", "model_uri": "models:/m/1"}, 409, "exists"),
        ("POST", "/deployments", {"name": "x y", "model_uri": "models:/m/1"}, 400, "name"),
        ("POST", "/deployments", {"name": "b", "model_uri": "models:/nope/1"}, 404, "nope"),
        ("POST", "/deployments", {"name": "b", "model_uri": "models:/m@gone"}, 404, "gone"),
        ("POST", "/deployments/api/promote", None, 409, "canary"),
        ("POST", "/deployments/api/rollback", {}, 409, "nothing to roll back"),
        ("POST", "/deployments/api/rollback", {"to_revision": 0}, 400, "to_revision"),
        ("GET", "/deployments/other", None, 404, "does not exist"),
        (
            "PUT",
            "/deployments/api/traffic",
            {"variants": [{"name": "primary", "model_uri": "models:/m/1", "weight": -1}]},
            400,
            "weight",
        ),
        (
            "PUT",
            "/deployments/api/traffic",
            {
                "variants": [{"name": "primary", "model_uri": "models:/m/1", "weight": 1}],
                "sticky_header": "X-User",
            },
            400,
            "sticky header",
        ),
        (
            "PUT",
            "/deployments/api/traffic",
            {"variants": [{"name": "primary", "model_uri": "models:/m/1", "weight": "1"}]},
            400,
            "weight",
        ),
        (
            "PUT",
            "/deployments/api/traffic",
            {"variants": [{"name": "primary", "model_uri": "models:/m/1", "weight": 10**400}]},
            400,
            "finite",
        ),
        (
            "POST",
            "/deployments/api/heartbeat",
            {"url": "ftp://x", "pid": 1, "host": "h"},
            400,
            "URL",
        ),
        (
            "POST",
            "/deployments/api/heartbeat",
            {"url": "http://x", "pid": 1, "host": "\x00"},
            400,
            "host",
        ),
        ("POST", "/deployments", {"name": "b", "model_uri": "models:/m\x00/1"}, 400, "URI"),
        ("POST", "/deployments", {"name": "b\x00", "model_uri": "models:/m/1"}, 400, "name"),
        ("GET", "/deployments/a%00b", None, 400, "deployment name"),
    ]
    for method, path, payload, expected, words in cases:
        status, body = api.call("ed", method, path, payload)
        assert (status, words.lower() in str(body).lower()) == (expected, True), (path, body)


HOSTILE = [
    "\x00",
    "\ud800",
    "a" * 100,
    "a" * 101,
    "-lead",
    "ok.name_1",
    "sp ace",
    "é",
    "a/b",
    "..",
]


def test_the_same_names_uris_and_headers_are_refused_embedded_and_over_rest(
    api: Api, tmp_path: Path, db_uri: str
) -> None:
    """Each hostile or boundary value: refused (InvalidInput / 400) or accepted at both doors."""
    from loopwright.errors import InvalidInput, LoopwrightError
    from loopwright.serving.deployments import DeploymentService
    from loopwright.serving.entities import Variant
    from loopwright.store.home import open_store

    def rest(path: str, body: dict[str, object], method: str = "POST") -> str:
        answer = api.http.request(
            method,
            "/api/v1" + path,
            content=json.dumps(body),  # surrogates escaped, as a client may send them
            headers={
                "Authorization": f"Bearer {api.tokens['root']}",
                "Content-Type": "application/json",
            },
        )
        assert answer.status_code < 500, answer.text
        return "refused" if answer.status_code == 400 else "accepted"

    def embedded(call: Callable[..., object], *args: object, **kwargs: object) -> str:
        try:
            call(*args, **kwargs)
        except InvalidInput:
            return "refused"
        except LoopwrightError:
            return "accepted"  # valid, but not there or not allowed
        return "accepted"

    assert api.call("root", "PUT", "/models/m/policy", {"rules": []})[0] == 200
    settings = resolve_settings(home=tmp_path / "home", db_uri=db_uri)
    with open_store(settings) as store:
        service = DeploymentService(store, actor="root")
        service.create("base", "models:/m/1")
        seen: set[tuple[str, str]] = set()
        for i, value in enumerate(HOSTILE):
            name = f"{value}"
            uri = f"models:/m{value}/1"
            one = [Variant("a", "models:/m/1", 1), Variant("b", "models:/m/2", 1)]
            body = [{"name": v.name, "model_uri": v.model_uri, "weight": 1} for v in one]
            pairs = [
                (
                    embedded(service.create, name, "models:/m/1"),
                    rest("/deployments", {"name": name, "model_uri": "models:/m/1"}),
                ),
                (
                    embedded(service.create, f"u{i}", uri),
                    rest("/deployments", {"name": f"r{i}", "model_uri": uri}),
                ),
                (
                    embedded(service.set_traffic, "base", one, sticky_header=value),
                    rest(
                        "/deployments/base/traffic",
                        {"variants": body, "sticky_header": value},
                        "PUT",
                    ),
                ),
            ]
            for what, (ours, theirs) in zip(("name", "uri", "header"), pairs, strict=True):
                assert ours == theirs, (what, value, ours, theirs)
                seen.add((what, ours))
    assert seen == {(w, o) for w in ("name", "uri", "header") for o in ("accepted", "refused")}
