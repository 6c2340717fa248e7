"""A metric point the server acknowledges is already committed: another connection reads it at
once, before any background flush (MLflow's log-metric and log-batch, the native metrics and
batch routes)."""

from __future__ import annotations

import httpx
import sqlalchemy as sa

from conftest import LiveServer
from loopwright.store import schema as t
from loopwright.store.home import open_store


def _stored(server: LiveServer, run_id: str) -> set[tuple[str, int]]:
    m = t.metrics.c
    with open_store(server.settings) as store, store.db.read() as conn:
        rows = conn.execute(sa.select(m.key, m.step).where(m.run_id == run_id)).all()
    return {(key, step) for key, step in rows}


def test_every_acknowledged_point_is_committed(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        run = http.post("/api/v1/runs", json={"experiment": "acks"})
        assert run.status_code == 201, run.text
        run_id = run.json()["id"]
        mlflow = "/api/2.0/mlflow/runs"
        replies = [
            http.post(
                f"{mlflow}/log-metric",
                json={"run_id": run_id, "key": "a", "value": 1, "timestamp": 1, "step": 1},
            ),
            http.post(
                f"{mlflow}/log-batch",
                json={"run_id": run_id, "metrics": [{"key": "b", "value": 1, "timestamp": 1}]},
            ),
            http.post(
                f"/api/v1/runs/{run_id}/metrics",
                json={"metrics": [{"key": "c", "value": 1, "step": 3, "timestamp": 1}]},
            ),
            http.post(
                f"/api/v1/runs/{run_id}/batch",
                json={"metrics": [{"key": "d", "value": 1, "step": 4, "timestamp": 1}]},
            ),
        ]
        assert [r.status_code for r in replies] == [200, 200, 204, 204], [r.text for r in replies]
        assert _stored(live_server, run_id) == {("a", 1), ("b", 0), ("c", 3), ("d", 4)}
