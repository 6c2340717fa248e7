"""Prompts over HTTP through ``client.prompts`` (RemotePrompts) against a real server with
auth: the same behaviour as embedded, each call as the token's user, and the refusals."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

import loopwright as lw
from loopwright.config import resolve_settings
from loopwright.errors import (
    ApprovalNotAllowed,
    InvalidInput,
    NotFound,
    PermissionDenied,
)
from loopwright.registry.entities import ApprovalPolicy, ApprovalRule

USERS = (("boss", "admin"), ("ada", "editor"), ("bea", "approver"), ("vic", "viewer"))


@dataclass(frozen=True)
class Served:
    url: str
    tokens: dict[str, str]

    def client(self, user: str) -> lw.Client:
        return lw.connect(self.url, token=self.tokens[user])


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def served(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    serve_app: Callable[..., AbstractContextManager[str]],
    pg_database: Callable[[], AbstractContextManager[str]],
) -> Iterator[Served]:
    from loopwright.governance.tokens import TokenService
    from loopwright.governance.users import UserService
    from loopwright.store.home import open_store

    # Module-scoped, so set up before the per-test isolation: clear LOOPWRIGHT_* here too.
    isolated = pytest.MonkeyPatch()
    for name in list(os.environ):
        if name.startswith("LOOPWRIGHT_") and not name.startswith("LOOPWRIGHT_TEST_"):
            isolated.delenv(name)
    request.addfinalizer(isolated.undo)
    home: Path = tmp_path_factory.mktemp("prompts-server")
    sqlite = nullcontext(f"sqlite:///{home / 'loopwright.db'}")
    with pg_database() if request.param == "postgres" else sqlite as db_uri:
        settings = resolve_settings(home=home, db_uri=db_uri, user="boss")
        tokens = {}
        with open_store(settings) as store:
            users = UserService(store, actor="boss")
            for name, role in USERS:
                users.add(name, role)
                tokens[name] = TokenService(store, actor="boss").create(name).secret
        with serve_app(settings, auth=True) as url:
            yield Served(url, tokens)


def test_register_load_format_and_diff_remotely(served: Served) -> None:
    with served.client("ada") as ada:
        one = ada.prompts.register(
            "remote-greet",
            "Hello {{ name }}",
            commit_message="first",
            model_config={"model_name": "m", "temperature": 0.3},
            tags={"team": "care"},
        )
        two = ada.prompts.register("remote-greet", [{"role": "user", "content": "Hi {{ name }}"}])
        assert (one.version, two.version, one.created_by) == (1, 2, "ada")
        assert ada.prompts.load("prompts:/remote-greet/1").model_config == {
            "model_name": "m",
            "temperature": 0.3,
        }
        assert ada.prompts.format("prompts:/remote-greet@latest", name="Ada") == [
            {"role": "user", "content": "Hi Ada"}
        ]
        assert "-Hello {{ name }}" in ada.prompts.diff("remote-greet", 1, 2)
        assert [p.name for p in ada.prompts.search("remote-g")] == ["remote-greet"]
        ada.prompts.set_version_tag("remote-greet", 1, "eval", "ok")
        assert ada.prompts.get_version("remote-greet", 1).tags == {"team": "care", "eval": "ok"}
        assert ada.prompts.get("remote-greet").latest_version == 2


def test_a_protected_move_waits_for_an_approver_remotely(served: Served) -> None:
    with served.client("ada") as ada, served.client("bea") as bea:
        ada.prompts.register("remote-flow", "v1")
        change = ada.prompts.set_alias("remote-flow", "production", 1, comment="eval ok")
        assert change.request is not None and change.request.subject_kind == "prompt"
        with pytest.raises(PermissionDenied):  # an editor's token cannot decide
            ada.prompts.approve(change.request.id)
        assert [r.id for r in bea.prompts.requests(prompt="remote-flow")] == [change.request.id]
        done = bea.prompts.approve(change.request.id, "ok")
        assert done.status == "approved"
        assert ada.prompts.load("prompts:/remote-flow@production", cache_ttl=0).version == 1
        # Separation of duties holds through the API too: bea registers, bea may not approve.
        bea.prompts.register("remote-flow", "v2")
        request = bea.prompts.set_alias("remote-flow", "production", 2).request
        assert request is not None
        with pytest.raises(ApprovalNotAllowed, match="registered version 2"):
            bea.prompts.approve(request.id)


def test_roles_and_bad_input_are_refused_remotely(served: Served) -> None:
    with served.client("vic") as vic, served.client("ada") as ada:
        with pytest.raises(PermissionDenied):
            vic.prompts.register("remote-no", "hi")
        with pytest.raises(PermissionDenied):
            ada.prompts.set_policy("remote-no", ApprovalPolicy(rules=(ApprovalRule("alias:x"),)))
        with pytest.raises(InvalidInput, match="prompt name"):
            ada.prompts.get("..")
        with pytest.raises(NotFound, match="prompt 'remote-none' does not exist"):
            vic.prompts.load("prompts:/remote-none@production")
        ada.prompts.register("remote-bad", "hi {{ x }}")
        with pytest.raises(NotFound, match="has no alias 'prod'"):
            vic.prompts.load("prompts:/remote-bad@prod")
    headers = {"Authorization": f"Bearer {served.tokens['ada']}"}
    with httpx.Client(base_url=served.url + "/api/v1", headers=headers) as http:
        malformed = http.post(
            "/prompts/remote-bad/versions",
            content=b"{not json",
            headers={"Content-Type": "application/json"},
        )
        assert malformed.status_code in (400, 422)
        wrong = http.post("/prompts/remote-bad/versions", json={"template": 42})
        assert wrong.status_code in (400, 422)
        huge = http.post("/prompts/remote-bad/versions", json={"template": "x" * 100_001})
        assert huge.status_code in (400, 413, 422)
        assert "cap" in huge.text or "large" in huge.text
        traversal = http.get("/prompts/..%2F..%2Fusers/versions/1")
        assert traversal.status_code in (400, 404, 422)
