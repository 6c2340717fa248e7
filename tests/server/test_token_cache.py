"""Over HTTP, a server answers a known token from its cache, yet a token revoked elsewhere (the
CLI, another process) is refused within CACHE_SECONDS, and a user disabled through the server at
once."""

from __future__ import annotations

import time

import httpx

from conftest import LiveServer
from loopwright.governance.tokens import CACHE_SECONDS, TokenService
from loopwright.store.home import open_store


def _me(server: LiveServer, user: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {server.tokens[user]}"}
    return httpx.get(f"{server.url}/api/v1/me", headers=headers, timeout=30)


def test_a_token_revoked_elsewhere_is_refused_within_the_window(auth_server: LiveServer) -> None:
    assert _me(auth_server, "ada").status_code == 200
    with open_store(auth_server.settings) as store:
        tokens = TokenService(store, actor="boss")
        (token,) = tokens.list("ada")
        tokens.revoke(token.id)
    time.sleep(CACHE_SECONDS)
    refused = _me(auth_server, "ada")
    assert refused.status_code == 401
    assert "revoked" in refused.json()["message"]
    # The MLflow routes check through the same cache.
    headers = {"Authorization": f"Bearer {auth_server.tokens['ada']}"}
    mlflow = httpx.post(
        f"{auth_server.url}/api/2.0/mlflow/runs/log-metric",
        json={"run_id": "x", "key": "m", "value": 1, "timestamp": 1},
        headers=headers,
        timeout=30,
    )
    assert mlflow.status_code == 401


def test_a_user_disabled_through_the_server_is_refused_at_once(auth_server: LiveServer) -> None:
    assert _me(auth_server, "ada").status_code == 200
    boss = {"Authorization": f"Bearer {auth_server.tokens['boss']}"}
    changed = httpx.patch(
        f"{auth_server.url}/api/v1/users/ada", json={"disabled": True}, headers=boss, timeout=30
    )
    assert changed.status_code == 200, changed.text
    refused = _me(auth_server, "ada")
    assert refused.status_code == 401
    assert "disabled" in refused.json()["message"]
