"""``loopwright serve --deployment NAME`` as users run it: real processes, several workers."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import test_deployment_serving as served
from _served_model import MODEL, serve_command
from test_deployment_serving import NAME, _body
from test_serve_cli import _refused, _running, _serving

from loopwright.client import Client
from loopwright.serving.entities import Variant

# The store of the in-process tests: clf v1..v3 under approval policy none.
settings, client, versions = served.settings, served.client, served.versions


@pytest.fixture
def store_settings(db_uri: str, tmp_path: Path) -> dict[str, str]:
    """The store on SQLite and on PostgreSQL: serving processes poll it while they serve."""
    return {"home": str(tmp_path / "home"), "db_uri": db_uri, "blob_uri": str(tmp_path / "blobs")}


def test_serve_takes_model_uris_or_a_deployment_and_names_a_missing_one(
    store_settings: dict[str, str], client: Client, versions: Any
) -> None:
    both = _refused(store_settings, f"models:/{MODEL}/1", "--deployment", NAME)
    assert "not both" in both
    assert "nothing to serve" in _refused(store_settings)
    assert "ghost" in _refused(store_settings, "--deployment", "ghost")
    client.deployments.create(NAME, f"models:/{MODEL}/3")
    client.registry.delete_version(MODEL, 3)
    # A variant whose version is gone since: the message names it.
    assert f"{MODEL}" in _refused(store_settings, "--deployment", NAME)


def test_workers_follow_the_deployment_report_themselves_and_log_every_answer(
    store_settings: dict[str, str], client: Client, versions: Any
) -> None:
    from loopwright.serving.predictions import read_predictions
    from loopwright.store.blobs import BlobStore

    client.deployments.create(NAME, f"models:/{MODEL}@champion")
    args = ("--deployment", NAME, "--workers", "2", "--refresh-seconds", "0.2")
    answered: dict[str, tuple[str, str]] = {}
    with _serving(store_settings, *args) as (url, proc), httpx.Client(base_url=url) as http:

        def send(count: int, color: str = "red") -> list[tuple[str, str]]:
            got = []
            for _ in range(count):
                request_id = f"r{len(answered)}"
                answer = http.post(
                    f"/v2/models/{NAME}/infer",
                    json=_body(len(answered), color),
                    headers={"X-Request-Id": request_id},
                )
                assert answer.status_code == 200, answer.text
                pair = (answer.headers["x-loopwright-variant"], answer.json()["model_version"])
                answered[request_id] = pair
                got.append(pair)
            return got

        assert set(send(20)) == {("primary", "1")}
        client.registry.set_alias(MODEL, "champion", 2)
        # Each worker follows on its own: within a few rounds every answer is version 2.
        deadline = time.monotonic() + 30
        while set(send(30)) != {("primary", "2")}:
            assert time.monotonic() < deadline, "the workers did not all move to version 2"
        client.deployments.set_traffic(
            NAME,
            [
                Variant("primary", f"models:/{MODEL}@champion", 0.5),
                Variant("canary", f"models:/{MODEL}/3", 0.5),
            ],
        )
        deadline = time.monotonic() + 30
        while ("canary", "3") not in send(20):
            assert time.monotonic() < deadline, "no answer from the canary"
        # Heartbeats: the instances carry the serving address and the workers' pids.
        deadline = time.monotonic() + 30
        while not client.deployments.instances(NAME):
            assert time.monotonic() < deadline, "no heartbeat"
            time.sleep(0.2)
        [instance] = client.deployments.instances(NAME)
        assert instance.url == url
        # One instance: the serve command, however many workers beat for it (every 5 s each).
        time.sleep(6)
        [later] = client.deployments.instances(NAME)
        assert later.pid == instance.pid == proc.pid
        assert later.started_at == instance.started_at and later.seen_at > instance.seen_at
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=60) in (0, -signal.SIGTERM)
        _, banner = proc.communicate()
    assert f"deployment {NAME} revision 1: primary {MODEL} v1 100%" in banner
    # The clean stop flushed both workers' logs: every acknowledged request, once.
    logged = read_predictions(BlobStore(store_settings["blob_uri"]), NAME)
    assert sorted(logged["request_id"]) == sorted(answered)
    rows = zip(logged["request_id"], logged["variant"], logged["model_version"], strict=True)
    assert all(answered[i] == (variant, str(version)) for i, variant, version in rows)


def test_a_deployment_served_through_a_loopwright_server_follows_it_over_http(
    store_settings: dict[str, str], client: Client, versions: Any, tmp_path: Any
) -> None:
    client.deployments.create(NAME, f"models:/{MODEL}@champion")
    server = [*serve_command(store_settings)[:-1], "server"]
    with _running(server, "/health") as (server_url, _):
        remote = [sys.executable, "-m", "loopwright.cli", "--home", str(tmp_path / "elsewhere")]
        serve = [*remote, "--server", server_url, "serve", "--deployment", NAME]
        with (
            _running([*serve, "--refresh-seconds", "0.2"], "/v2/health/ready") as (url, _),
            httpx.Client(base_url=url) as http,
        ):
            first = http.post(f"/v2/models/{NAME}/infer", json=_body(0))
            assert first.json()["model_version"] == "1"
            client.registry.set_alias(MODEL, "champion", 2)
            deadline = time.monotonic() + 30
            while (
                http.post(f"/v2/models/{NAME}/infer", json=_body(0)).json()["model_version"] != "2"
            ):
                assert time.monotonic() < deadline, "the alias move did not reach the server"
                time.sleep(0.05)
            deadline = time.monotonic() + 30
            while not client.deployments.instances(NAME):
                assert time.monotonic() < deadline, "no heartbeat through the server"
                time.sleep(0.2)
            assert [i.url for i in client.deployments.instances(NAME)] == [url]


def test_workers_serve_the_deployment_over_grpc_on_the_shared_port_and_follow_it(
    store_settings: dict[str, str], client: Client, versions: Any
) -> None:
    """--deployment, --workers 2 and --grpc-port together: every worker routes the
    deployment's name over gRPC too, and follows an alias move."""
    triton = pytest.importorskip("tritonclient.grpc")
    from _served_model import free_port
    from test_grpc import _inputs

    client.deployments.create(NAME, f"models:/{MODEL}@champion")
    grpc_port = free_port()
    args = ("--deployment", NAME, "--workers", "2", "--refresh-seconds", "0.2")
    with _serving(store_settings, *args, "--grpc-port", str(grpc_port)) as (_, proc):

        def versions_answering(calls: int) -> set[str]:
            seen = set()
            for _ in range(calls):  # a connection each: both workers are reached
                connection = triton.InferenceServerClient(f"127.0.0.1:{grpc_port}")
                try:
                    seen.add(connection.infer(NAME, _inputs(2)).get_response().model_version)
                finally:
                    connection.close()
            return seen

        deadline = time.monotonic() + 60
        while True:  # the workers' gRPC servers start with their apps, after the REST port
            try:
                assert versions_answering(8) == {"1"}
                break
            except triton.InferenceServerException:
                assert time.monotonic() < deadline, "no gRPC answer"
                time.sleep(0.2)
        client.registry.set_alias(MODEL, "champion", 2)
        deadline = time.monotonic() + 30
        while versions_answering(8) != {"2"}:
            assert time.monotonic() < deadline, "the workers did not all move to version 2"
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=60) in (0, -signal.SIGTERM)
        _, banner = proc.communicate()
    assert f"OIP v2 over gRPC on 127.0.0.1:{grpc_port} in every worker" in banner
