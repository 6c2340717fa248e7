"""One user's bad metric cannot fail another user's request (issue 11, defect 1).

The server buffers every user's points in one writer; a point the database cannot hold must be
refused with a 400 before it enters that buffer, or it would fail the flush of every request
after it (get run, search, end run) for every user, and lose their acknowledged points.
"""

from __future__ import annotations

import json

import httpx

from conftest import LiveServer


def _client(server: LiveServer, user: str) -> httpx.Client:
    headers = {"Authorization": f"Bearer {server.tokens[user]}"}
    return httpx.Client(base_url=f"{server.url}/api/v1", headers=headers, timeout=60)


def _metrics(http: httpx.Client, run_id: str, points: list[dict[str, object]]) -> httpx.Response:
    body = json.dumps({"metrics": points})  # integers beyond 64 bits sent whole
    return http.post(
        f"/runs/{run_id}/metrics", content=body, headers={"Content-Type": "application/json"}
    )


def test_a_bad_point_is_refused_before_it_can_fail_other_users(auth_server: LiveServer) -> None:
    with _client(auth_server, "ada") as ada, _client(auth_server, "boss") as boss:
        ada_run = ada.post("/runs", json={"experiment": "shared"}).json()["id"]
        boss_run = boss.post("/runs", json={"experiment": "shared"}).json()["id"]
        good = [{"key": "loss", "value": 0.5, "step": s, "timestamp": 1000} for s in range(1000)]
        assert _metrics(ada, ada_run, good).status_code == 204
        for bad in ({"step": 2**63}, {"timestamp": 2**63}, {"value": 10**400}):
            refused = _metrics(ada, ada_run, [{**good[0], **bad}])
            assert refused.status_code == 400, refused.text
            assert refused.json()["code"] == "INVALID_PARAMETER_VALUE"
        lone = _metrics(ada, ada_run, [{**good[0], "key": "k\ud800"}])
        assert lone.status_code == 400, lone.text

        assert _metrics(boss, boss_run, good[:1]).status_code == 204
        seen = boss.get(f"/runs/{boss_run}")
        assert seen.status_code == 200, seen.text
        assert seen.json()["metrics"]["loss"]["value"] == 0.5
        assert boss.post("/runs/search", json={}).status_code == 200
        assert boss.post(f"/runs/{boss_run}/end", json={}).status_code == 200

        history = ada.get(f"/runs/{ada_run}/metric-history", params={"key": "loss"})
        assert history.status_code == 200 and len(history.json()) == 1000
        ended = ada.post(f"/runs/{ada_run}/end", json={})
        assert ended.status_code == 200 and ended.json()["status"] == "FINISHED"
