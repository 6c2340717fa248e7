"""An artifact downloaded through MLflow's routes never runs as a page of the server's origin
(the dashboard's): HTML and SVG files come in a sandbox of their own."""

from __future__ import annotations

from typing import Any

import httpx


def test_an_html_artifact_is_served_sandboxed(live_server: Any) -> None:
    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        experiment = http.post(
            "/api/2.0/mlflow/experiments/create", json={"name": "sandboxed"}
        ).json()["experiment_id"]
        run = http.post("/api/2.0/mlflow/runs/create", json={"experiment_id": experiment}).json()
        run_id = run["run"]["info"]["run_id"]
        page = b"<script>fetch('/ui/approvals')</script>"
        put = http.put(
            f"/api/2.0/mlflow-artifacts/artifacts/{experiment}/{run_id}/artifacts/x.html",
            content=page,
        )
        assert put.status_code == 200, put.text
        for path in (
            f"/get-artifact?path=x.html&run_uuid={run_id}",
            f"/api/2.0/mlflow-artifacts/artifacts/{experiment}/{run_id}/artifacts/x.html",
        ):
            got = http.get(path)
            assert got.status_code == 200 and got.content == page, path
            assert got.headers["content-security-policy"] == "sandbox"
            assert got.headers["x-content-type-options"] == "nosniff"
