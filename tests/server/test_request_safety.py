"""What a hostile request gets back: no credential echoed, and one path rule for both APIs."""

from __future__ import annotations

from typing import Any

import httpx
import pytest


@pytest.mark.parametrize(
    "header",
    [
        "lw_s3cr3t-token-without-a-scheme",
        "Token lw_s3cr3t-token-without-a-scheme",
        "lw_s3cr3t-token-without-a-scheme trailing",
    ],
)
def test_a_401_never_echoes_the_authorization_header(auth_server: Any, header: str) -> None:
    for path in ("/api/v1/me", "/api/2.0/mlflow/experiments/search?max_results=1"):
        answer = httpx.get(f"{auth_server.url}{path}", headers={"Authorization": header})
        assert answer.status_code == 401
        assert "s3cr3t" not in answer.text
        assert "Bearer" in answer.json()["message"]


@pytest.mark.parametrize("inside", ["/abs/file.txt", "/file.txt", "//two/file.txt"])
def test_mlflow_artifact_paths_follow_the_native_rule(live_server: Any, inside: str) -> None:
    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        run = http.post("/api/v1/runs", json={"experiment": "paths"}).json()
        native = http.put(f"/api/v1/runs/{run['id']}/artifacts/files/{inside}", content=b"x")
        base = f"/api/2.0/mlflow-artifacts/artifacts/{run['experiment_id']}/{run['id']}/artifacts"
        mlflow = http.put(f"{base}/{inside}", content=b"x")
        assert native.status_code == mlflow.status_code == 400, (native.text, mlflow.text)
        assert http.get(f"/api/v1/runs/{run['id']}/artifacts").json() == []
        # A plain relative path is stored alike by both.
        assert http.put(f"{base}/dir/file.txt", content=b"x").status_code == 200
        listed = http.get(f"/api/v1/runs/{run['id']}/artifacts").json()
        assert [a["path"] for a in listed] == ["dir/file.txt"]
