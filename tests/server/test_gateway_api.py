"""The gateway's control plane over REST with auth on: each role's rights, secrets never
answered, the remote client on the same routes, and refusals that name the fix."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gateway"))
from _llm_stub import Stub, run_stub

import loopwright as lw
from loopwright.config import Settings, resolve_settings

SECRET = "sk-admin-only-0123456789abcdefghij"


class Server:
    def __init__(self, url: str, tokens: dict[str, str], stub: Stub) -> None:
        self.url, self.tokens, self.stub = url, tokens, stub

    def as_(self, user: str | None) -> httpx.Client:
        headers = {} if user is None else {"Authorization": f"Bearer {self.tokens[user]}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    serve_app: Callable[..., AbstractContextManager[str]],
    pg_database: Callable[[], AbstractContextManager[str]],
    team_of: Callable[[Settings], dict[str, str]],
) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("gateway-auth") / "home"
    with ExitStack() as stack:
        stub = stack.enter_context(run_stub())
        db_uri = stack.enter_context(pg_database()) if request.param == "postgres" else None
        settings = resolve_settings(home=home, db_uri=db_uri, user="boss")
        tokens = team_of(settings)
        url = stack.enter_context(serve_app(settings, auth=True))
        yield Server(url, tokens, stub)


def _route(stub: Stub, **extra: Any) -> dict[str, Any]:
    target = {"name": "primary", "base_url": stub.base("auth"), "model": "m"}
    return {"targets": [target], "backoff_s": 0.001, **extra}


def test_each_role_may_do_what_its_rules_say(server: Server) -> None:
    with server.as_("boss") as boss, server.as_("ada") as ada, server.as_("vic") as vic:
        assert vic.put("/api/v1/gateway/secrets/k", json={"value": SECRET}).status_code == 403
        assert ada.put("/api/v1/gateway/secrets/k", json={"value": SECRET}).status_code == 403
        stored = boss.put("/api/v1/gateway/secrets/k", json={"value": SECRET})
        assert stored.status_code == 200 and stored.json()["mask"] == "****ghij"
        assert SECRET not in stored.text
        assert vic.get("/api/v1/gateway/secrets").status_code == 403
        assert [s["mask"] for s in ada.get("/api/v1/gateway/secrets").json()] == ["****ghij"]

        body = {"name": "roles", "config": _route(server.stub)}
        assert vic.post("/api/v1/gateway/routes", json=body).status_code == 403
        created = ada.post("/api/v1/gateway/routes", json=body)
        assert created.status_code == 201, created.text
        assert [r["name"] for r in vic.get("/api/v1/gateway/routes").json()] == ["roles"]
        assert vic.delete("/api/v1/gateway/routes/roles").status_code == 403
        # A route decides where a secret goes: naming one is an admin's change.
        with_secret = _route(server.stub)
        with_secret["targets"][0]["secret"] = "k"
        sent = ada.post("/api/v1/gateway/routes", json={"name": "leak", "config": with_secret})
        assert sent.status_code == 403 and "needs the admin role" in sent.text
        moved = ada.put("/api/v1/gateway/routes/roles", json={"config": with_secret})
        assert moved.status_code == 403
        assert boss.put("/api/v1/gateway/routes/roles", json={"config": with_secret}).is_success
        assert boss.put("/api/v1/gateway/routes/roles", json={"config": body["config"]})
        assert boss.delete("/api/v1/gateway/secrets/k").status_code == 204


def test_calls_need_a_token_and_the_routes_role(server: Server) -> None:
    with server.as_("ada") as ada, server.as_("vic") as vic, server.as_(None) as anyone:
        config = _route(server.stub, min_role="editor")
        assert ada.post("/api/v1/gateway/routes", json={"name": "editors", "config": config})
        chat = {"model": "editors", "messages": [{"role": "user", "content": "hi"}]}
        refused = anyone.post("/v1/chat/completions", json=chat)
        assert refused.status_code == 401
        assert anyone.get("/v1/models").status_code == 401
        denied = vic.post("/v1/chat/completions", json=chat)
        assert denied.status_code == 403 and "needs the editor role" in denied.text
        assert "editors" not in {m["id"] for m in vic.get("/v1/models").json()["data"]}
        assert ada.post("/v1/chat/completions", json=chat).status_code == 200
        assert "editors" in {m["id"] for m in ada.get("/v1/models").json()["data"]}
        assert server.stub.calls["auth"] >= 1


def test_a_viewer_sees_only_their_own_usage(server: Server) -> None:
    with server.as_("ada") as ada, server.as_("vic") as vic:
        ada.post("/api/v1/gateway/routes", json={"name": "shared", "config": _route(server.stub)})
        chat = {"model": "shared", "messages": [{"role": "user", "content": "hi"}]}
        assert ada.post("/v1/chat/completions", json=chat).status_code == 200
        assert vic.post("/v1/chat/completions", json=chat).status_code == 200
        mine = vic.get("/api/v1/gateway/usage", params={"route": "shared", "user": "ada"}).json()
        assert {row["user"] for row in mine} == {"vic"}
        everyone = ada.get("/api/v1/gateway/usage", params={"route": "shared"}).json()
        assert {row["user"] for row in everyone} == {"ada", "vic"}


def test_refusals_name_the_fix(server: Server) -> None:
    with server.as_("boss") as boss:
        missing = boss.get("/api/v1/gateway/routes/nope")
        assert missing.status_code == 404 and "gateway routes create" in missing.text

        def at(url: str) -> dict[str, Any]:
            return {"name": "bad", "config": {"targets": [{"name": "p", "model": "m",
                                                           "base_url": url}]}}  # fmt: skip

        answer = boss.post("/api/v1/gateway/routes", json=at("ftp://x"))
        assert answer.status_code == 400 and "http:// or https://" in answer.text
        with_credentials = boss.post("/api/v1/gateway/routes", json=at("http://u:pw@x/v1"))
        assert "secrets set" in with_credentials.text
        unknown = {"name": "bad", "config": {**_route(server.stub), "colour": "red"}}
        assert "unknown field(s) ['colour']" in boss.post("/api/v1/gateway/routes",
                                                          json=unknown).text  # fmt: skip
        no_secret = _route(server.stub)
        no_secret["targets"][0]["secret"] = "absent"
        answer = boss.post("/api/v1/gateway/routes", json={"name": "x", "config": no_secret})
        assert answer.status_code == 404 and "absent" in answer.text
        guard = {**_route(server.stub), "guardrails": [{"check": "telepathy"}]}
        answer = boss.post("/api/v1/gateway/routes", json={"name": "x", "config": guard})
        assert answer.status_code == 400 and "register_check" in answer.text
        boss.put("/api/v1/gateway/secrets/used", json={"value": "v"})
        uses = _route(server.stub)
        uses["targets"][0]["secret"] = "used"
        assert boss.post("/api/v1/gateway/routes", json={"name": "uses", "config": uses})
        in_use = boss.delete("/api/v1/gateway/secrets/used")
        assert in_use.status_code == 409 and "uses" in in_use.text
        stale = boss.put("/api/v1/gateway/routes/uses", json={"config": uses, "expect_revision": 5})
        assert stale.status_code == 409 and "revision 1" in stale.text
        control = boss.put("/api/v1/gateway/secrets/x", json={"value": "a\nb"})
        assert control.status_code == 400


def test_the_remote_client_drives_the_same_routes(server: Server) -> None:
    with lw.connect(server.url, token=server.tokens["boss"]) as client:
        stored = client.gateway.set_secret("remote-key", SECRET)
        assert stored.mask == "****ghij"
        config = _route(server.stub)
        config["targets"][0]["secret"] = "remote-key"
        route = client.gateway.create_route("remote", config)
        assert (route.revision, route.config.targets[0].secret) == (1, "remote-key")
        config["retries"] = 0
        assert client.gateway.update_route("remote", config, expect_revision=1).revision == 2
        assert client.gateway.get_route("remote").config.retries == 0
        assert "remote" in [r.name for r in client.gateway.list_routes()]
        assert "remote-key" in [s.name for s in client.gateway.list_secrets()]
        assert isinstance(client.gateway.usage(route="remote"), list)
        client.gateway.delete_route("remote")
        client.gateway.delete_secret("remote-key")
        with pytest.raises(LookupError, match="does not exist"):
            client.gateway.get_route("remote")
