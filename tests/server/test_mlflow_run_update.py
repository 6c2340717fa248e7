"""MLflow's runs/update (what ``mlflow.end_run()`` sends): the change, its reply built from the
updated row, and its refusals, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any, cast

import httpx
import pytest

import loopwright as lw
from loopwright.server.mlflow._convert import run_info_json

LiveServer = Any  # tests/server/conftest.py
API = "/api/2.0/mlflow"


def _answer(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


@pytest.fixture
def run_id(http: httpx.Client) -> str:
    experiment = _answer(http.post(f"{API}/experiments/create", json={"name": "ending"}))
    body = {"experiment_id": experiment["experiment_id"], "start_time": 1_000, "user_id": "u"}
    return str(_answer(http.post(f"{API}/runs/create", json=body))["run"]["info"]["run_id"])


def _native_info(live_server: LiveServer, run_id: str) -> Any:
    with lw.connect(live_server.db_uri, home=live_server.home) as native:
        run = native.get_run(run_id)
        location = cast(Any, native.tracking)._location_of(run.experiment_id)
    return run_info_json(run, location)


def test_update_replies_with_the_run_as_stored(
    http: httpx.Client, live_server: LiveServer, run_id: str
) -> None:
    update = f"{API}/runs/update"
    ended = _answer(http.post(update, json={"run_id": run_id, "status": "FINISHED"}))
    info = ended["run_info"]
    assert info["status"] == "FINISHED" and info["end_time"] >= info["start_time"] == 1_000
    assert info == _native_info(live_server, run_id)
    # By number, with an end time; then back to RUNNING keeps the end time, as before.
    again = {"run_uuid": run_id, "status": 4, "end_time": 5_000}
    assert _answer(http.post(update, json=again))["run_info"]["end_time"] == 5_000
    info = _answer(http.post(update, json={"run_id": run_id, "status": "RUNNING"}))["run_info"]
    assert (info["status"], info["end_time"]) == ("RUNNING", 5_000)
    assert info == _native_info(live_server, run_id)
    # Only an end time, then only a name (which also sets the name tag).
    info = _answer(http.post(update, json={"run_id": run_id, "end_time": 7_000}))["run_info"]
    assert (info["status"], info["end_time"]) == ("RUNNING", 7_000)
    named = _answer(http.post(update, json={"run_id": run_id, "run_name": "renamed"}))
    assert named["run_info"]["run_name"] == "renamed"
    run = _answer(http.get(f"{API}/runs/get", params={"run_id": run_id}))["run"]
    assert {"key": "mlflow.runName", "value": "renamed"} in run["data"]["tags"]
    assert named["run_info"] == run["info"] == _native_info(live_server, run_id)


def test_update_refuses_unknown_deleted_and_bad_requests(http: httpx.Client, run_id: str) -> None:
    update = f"{API}/runs/update"
    missing = _answer(http.post(update, json={"run_id": "0" * 32, "status": "FINISHED"}), 404)
    assert missing["error_code"] == "RESOURCE_DOES_NOT_EXIST" and "0" * 32 in missing["message"]
    bad = _answer(http.post(update, json={"run_id": run_id, "status": "DONE"}), 400)
    assert bad["error_code"] == "INVALID_PARAMETER_VALUE" and "DONE" in bad["message"]
    nameless = _answer(http.post(update, json={"status": "FINISHED"}), 400)
    assert "run_id" in nameless["message"]
    _answer(http.post(f"{API}/runs/delete", json={"run_id": run_id}))
    deleted = _answer(http.post(update, json={"run_id": run_id, "status": "FINISHED"}), 400)
    assert deleted["error_code"] == "INVALID_STATE" and "deleted" in deleted["message"]
    _answer(http.post(f"{API}/runs/restore", json={"run_id": run_id}))
    run = _answer(http.get(f"{API}/runs/get", params={"run_id": run_id}))["run"]
    assert run["info"]["status"] == "RUNNING"  # the refused updates changed nothing
