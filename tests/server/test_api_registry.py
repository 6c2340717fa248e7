"""The registry over HTTP: the caller's identity decides approvals, statuses say what happened."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from blake3 import blake3
from fastapi.testclient import TestClient

from loopwright.client import Client
from loopwright.config import resolve_settings
from loopwright.server.app import create_app

pytest.importorskip("sklearn")


@dataclass
class Registry:
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
def registry(tmp_path: Path, db_uri: str) -> Iterator[Registry]:
    """Model ``m`` version 1, registered by ``ed`` (an editor); ``bob`` approves, ``root`` is
    admin."""
    from sklearn.dummy import DummyClassifier

    from loopwright.governance.tokens import TokenService
    from loopwright.governance.users import UserService

    settings = resolve_settings(home=tmp_path / "home", db_uri=db_uri)
    with Client(resolve_settings(home=tmp_path / "home", db_uri=db_uri, user="ed")) as ed:
        users = UserService(ed.store, actor="root")
        for name, role in (("root", "admin"), ("ed", "editor"), ("bob", "approver")):
            users.add(name, role)
        with ed.start_run(experiment="m") as run:
            run.log_model(DummyClassifier().fit([[0], [1]], [0, 1]))
        ed.registry.register("m", run_id=run.id)
        tokens = TokenService(ed.store, actor="root")
        secrets = {name: tokens.create(name).secret for name in ("root", "ed", "bob")}
    with TestClient(create_app(settings, auth=True)) as http:
        yield Registry(http, secrets)


def test_a_protected_alias_waits_for_another_approver(registry: Registry) -> None:
    status, body = registry.call("ed", "PUT", "/models/m/aliases/champion", {"version": 1})
    assert status == 202
    assert isinstance(body, dict) and body["applied"] is False
    request = body["request"]
    assert (request["requested_by"], request["status"]) == ("ed", "pending")
    status, body = registry.call("ed", "POST", f"/approvals/{request['id']}/approve", {})
    assert status == 403  # an editor decides nothing
    status, body = registry.call("bob", "POST", f"/approvals/{request['id']}/approve", {})
    assert status == 200 and isinstance(body, dict)
    assert body["status"] == "approved" and body["decisions"][0]["actor"] == "bob"
    status, body = registry.call("bob", "GET", "/models/m")
    assert isinstance(body, dict) and body["aliases"] == {"champion": 1}
    status, body = registry.call("bob", "DELETE", "/models/m/versions/1")
    assert status == 409 and isinstance(body, dict) and body["code"] == "INVALID_STATE"
    events = registry.call("root", "GET", "/audit/events?subject_id=" + request["id"])[1]
    assert isinstance(events, list)
    assert [(e["actor"], e["action"]) for e in events] == [
        ("ed", "approval.request"),
        ("bob", "approval.approve"),
    ]


def test_the_approver_cannot_approve_their_own_request(registry: Registry) -> None:
    status, body = registry.call(
        "bob", "POST", "/models/m/versions/1/stage", {"stage": "Production"}
    )
    assert status == 202 and isinstance(body, dict)
    request_id = body["request"]["id"]
    status, body = registry.call("bob", "POST", f"/approvals/{request_id}/approve", {})
    assert status == 403 and isinstance(body, dict)
    assert body["code"] == "APPROVAL_NOT_ALLOWED"
    status, body = registry.call(
        "root", "POST", f"/approvals/{request_id}/reject", {"comment": "no"}
    )
    assert status == 200 and isinstance(body, dict) and body["status"] == "rejected"
    unprotected = registry.call("ed", "POST", "/models/m/versions/1/stage", {"stage": "Staging"})
    assert unprotected[0] == 200
    assert isinstance(unprotected[1], dict) and unprotected[1]["version"]["stage"] == "Staging"


def test_policies_are_for_admins(registry: Registry) -> None:
    policy = {"rules": [{"target": "alias:prod", "approvals": 2}], "expires_after_s": 60}
    assert registry.call("ed", "PUT", "/models/m/policy", policy)[0] == 403
    status, body = registry.call("root", "PUT", "/models/m/policy", policy)
    assert status == 200 and isinstance(body, dict)
    assert body["rules"] == [
        {"target": "alias:prod", "approvals": 2, "role": "approver", "gate": None}
    ]
    assert registry.call("ed", "PUT", "/models/m/aliases/champion", {"version": 1})[0] == 200
    bad = {"rules": [{"target": "alias:prod"}, {"target": "alias:prod"}]}
    status, body = registry.call("root", "PUT", "/models/m/policy", bad)
    assert status == 400 and isinstance(body, dict) and "twice" in body["message"]


def test_package_files_download_and_verify(registry: Registry) -> None:
    status, files = registry.call("ed", "GET", "/models/m/versions/1/files")
    assert status == 200 and isinstance(files, list)
    assert "loopwright-model.json" in [f["path"] for f in files]
    for entry in files:
        answer = registry.http.get(
            f"/api/v1/models/m/versions/1/files/{entry['path']}",
            headers={"Authorization": f"Bearer {registry.tokens['ed']}"},
        )
        assert blake3(answer.content).hexdigest() == entry["blob_hash"]
        assert answer.headers["X-Content-Blake3"] == entry["blob_hash"]
    status, version = registry.call("ed", "GET", "/models/m/resolve/latest")
    assert isinstance(version, dict) and version["version"] == 1 and version["created_by"] == "ed"
