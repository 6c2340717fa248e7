"""Tracking over HTTP: what only the remote path does (client context, heartbeats, streamed and
verified artifacts, the buffered metric writer), against a real server."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import loopwright as lw
from loopwright.client import Client
from loopwright.errors import Conflict, InvalidInput, TrackingError, UnsafePath
from loopwright.tracking.capture import capture_environment

LiveServer = Any  # tests/server/conftest.py's fixture: .url, .settings …


@pytest.fixture
def client(live_server: LiveServer, tmp_path: Path) -> Iterator[Client]:
    with lw.connect(live_server.url, home=tmp_path / "client-home") as remote:
        yield remote


def _api(live_server: LiveServer, path: str) -> str:
    return f"{live_server.url}/api/v1{path}"


def test_a_remote_run_records_the_clients_context(client: Client) -> None:
    with client.start_run(experiment="ctx") as run:
        pass
    stored = client.get_run(run.id)
    env = capture_environment()
    assert stored.environment_id == env.id  # recomputed by the server from the packages sent
    assert client.tracking.get_environment(env.id).packages == env.packages
    assert stored.user == "server-admin"  # auth off: the server's user
    assert stored.heartbeat_at is not None


def test_heartbeats_and_metric_points_travel_in_batches(
    client: Client, live_server: LiveServer
) -> None:
    run = client.start_run(experiment="beats")
    before = client.get_run(run.id).heartbeat_at
    assert httpx.post(_api(live_server, f"/runs/{run.id}/heartbeat")).status_code == 204
    assert (client.get_run(run.id).heartbeat_at or 0) >= (before or 0)
    for step in range(2500):
        run.log_metric("loss", 1 / (step + 1), step=step)
    run.log_metric("nan", math.nan)
    run.end()
    history = client.get_metric_history(run.id, "loss")
    assert len(history) == 2500 and history[-1].step == 2499
    assert math.isnan(client.get_run(run.id).metrics["nan"].value)
    ended = httpx.post(_api(live_server, f"/runs/{run.id}/heartbeat"))
    assert ended.status_code == 204  # an ended run: nothing to keep alive, no error


def test_points_for_a_deleted_run_raise_at_the_next_flush(client: Client) -> None:
    run = client.start_run(experiment="gone")
    run.log_metric("loss", 1.0)
    client.tracking.flush()
    client.tracking.set_lifecycle(run.id, "deleted")
    run.log_metric("loss", 2.0)  # an append: the server refuses the batch
    with pytest.raises(TrackingError, match=r"dropped: run .* is deleted"):
        client.tracking.flush()
    with pytest.raises(Conflict, match="deleted"):  # asked again: this client deleted it
        client.tracking.log_metrics(run.id, {"loss": 3.0})
    client.tracking.set_lifecycle(run.id, "active")
    run.end()


def test_unreachable_servers_keep_points_for_a_retry(tmp_path: Path) -> None:
    client = lw.connect("http://127.0.0.1:9", home=tmp_path)
    client.tracking.require_loggable = lambda run_id: None  # type: ignore[method-assign]
    client.tracking.log_metrics("0" * 32, {"loss": 1.0})
    with pytest.raises(Exception, match="cannot reach"):
        client.tracking.flush()
    assert client.tracking.writer._buffer  # kept, not dropped
    client.tracking.writer._buffer.clear()
    client.close()


def test_artifact_uploads_are_verified_and_paths_checked(
    client: Client, live_server: LiveServer, tmp_path: Path
) -> None:
    with client.start_run(experiment="files") as run:
        url = _api(live_server, f"/runs/{run.id}/artifacts/files/report.txt")
        wrong = httpx.put(url, content=b"hello", headers={"X-Content-Blake3": "0" * 64})
        assert wrong.status_code == 400 and "hashes to" in wrong.json()["message"]
        assert client.list_artifacts(run.id) == []
        escaped = httpx.put(
            _api(live_server, f"/runs/{run.id}/artifacts/files/a/%2e%2e/%2e%2e/x"),
            content=b"x",
        )
        assert escaped.status_code == 400
        assert escaped.json()["code"] in ("UNSAFE_PATH", "ENDPOINT_NOT_FOUND")
        ok = httpx.put(url, content=b"hello")
        assert ok.status_code == 200 and ok.json()["size"] == 5
        with pytest.raises(UnsafePath):
            run.log_artifact(_file(tmp_path), "../up")
    fetched = httpx.get(url)
    assert fetched.content == b"hello"
    assert fetched.headers["X-Content-Blake3"] == client.list_artifacts(run.id)[0].blob_hash
    with pytest.raises(InvalidInput, match="not a file"):
        client.tracking.log_artifact(run.id, tmp_path / "missing.txt")


def test_a_failed_batch_is_reported_not_lost_silently(client: Client) -> None:
    with pytest.raises(TrackingError, match="dropped"):
        client.tracking.writer.add(("0" * 32, "loss", 0, 1, 1.0, False))
        client.tracking.flush()


def _file(folder: Path) -> Path:
    path = folder / "x.txt"
    path.write_text("x")
    return path
