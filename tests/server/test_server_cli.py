"""``loopwright server`` and ``loopwright tokens`` as users run them: real processes and HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cli(home: Path, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loopwright.cli", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "300"},
        **kwargs,
    )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def _start(
    home: Path,
    port: int,
    *,
    columns: int = 300,
    extra: tuple[str, ...] = (),
    cwd: Path | None = None,
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "loopwright.cli",
            "--home",
            str(home),
            "server",
            "--port",
            str(port),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "COLUMNS": str(columns)},
        cwd=cwd,
    )


def _wait_until_healthy(url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
        assert process.poll() is None, process.communicate()
    pytest.fail("the server did not answer /health within 60 s")


@pytest.fixture
def served(home: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = _free_port()
    process = _start(home, port)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(url, process)
        yield url, process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.communicate(timeout=30)


def test_without_tokens_the_server_refuses_to_listen_beyond_loopback(home: Path) -> None:
    done = _cli(home, "server", "--host", "0.0.0.0", "--port", str(_free_port()))
    assert done.returncode == 1
    assert "refusing to listen on 0.0.0.0" in " ".join(done.stderr.split())


def test_the_server_starts_answers_health_and_readiness(
    served: tuple[str, subprocess.Popen[str]],
) -> None:
    url, _ = served
    assert httpx.get(f"{url}/health").text == "OK"
    ready = httpx.get(f"{url}/ready").json()
    assert ready["status"] == "ready" and ready["auth"] is False
    missing = httpx.get(f"{url}/no/such/route")
    assert missing.status_code == 404
    assert missing.json()["code"] == "ENDPOINT_NOT_FOUND"
    assert "/health" in httpx.get(f"{url}/openapi.json").json()["paths"]


def test_the_start_banner_keeps_each_line_whole_on_a_narrow_terminal(tmp_path: Path) -> None:
    home = tmp_path / ("a-folder-with-a-long-name-" * 3) / "home"  # paths wider than 80 columns
    port = _free_port()
    process = _start(home, port, columns=80)
    try:
        _wait_until_healthy(f"http://127.0.0.1:{port}", process)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    lines = stderr.splitlines()
    assert lines[0] == f"loopwright server on http://127.0.0.1:{port} (1 worker)"
    assert lines[1].startswith("  db: ") and str(home) in lines[1]
    assert lines[2].startswith("  blobs: ") and str(home) in lines[2]
    assert lines[3] == "  auth: off, as no API tokens exist; listening on loopback only"
    assert lines[4].startswith("  every caller acts as admin ")
    assert lines[5] == "  artifacts: mlflow-artifacts:/ (kept in the blob store)"


def test_artifact_roots_from_the_command_line(tmp_path: Path) -> None:
    """--default-artifact-root (relative: from the working directory) and --artifact-root."""
    shared = tmp_path / "shared"
    port = _free_port()
    process = _start(
        tmp_path / "home",
        port,
        extra=("--default-artifact-root", "./mlruns", "--artifact-root", str(shared)),
        cwd=tmp_path,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(url, process)
        api = f"{url}/api/2.0/mlflow/experiments"
        made = httpx.post(f"{api}/create", json={"name": "e"}).json()["experiment_id"]
        got = httpx.get(f"{api}/get", params={"experiment_id": made}).json()["experiment"]
        assert got["artifact_location"] == (tmp_path / "mlruns" / made).as_uri()
        chosen = httpx.post(f"{api}/create", json={"name": "f", "artifact_location": str(shared)})
        assert chosen.status_code == 200, chosen.text
        refused = httpx.post(f"{api}/create", json={"name": "g", "artifact_location": "/etc"})
        assert refused.status_code == 400
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert f"  artifacts: {tmp_path / 'mlruns'}" in stderr.splitlines()
    assert f"  artifact roots allowed: {shared}" in stderr.splitlines()


def test_an_artifact_root_that_is_no_local_folder_stops_the_server(tmp_path: Path) -> None:
    process = _start(tmp_path / "home", _free_port(), extra=("--default-artifact-root", "s3://b/p"))
    _, stderr = process.communicate(timeout=60)
    assert process.returncode != 0
    assert "default_artifact_root (argument): 's3://b/p' is not supported" in stderr


def test_tokens_cli_creates_lists_and_revokes(home: Path) -> None:
    assert _cli(home, "users", "add", "ada", "--role", "editor").returncode == 0
    created = _cli(home, "tokens", "create", "ada", "--name", "ci")
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert secret.startswith("lw_") and "shown only now" in created.stderr
    import json

    listed = json.loads(_cli(home, "tokens", "list", "--json").stdout)
    assert [(k["user"], k["name"], k["active"]) for k in listed] == [("ada", "ci", True)]
    assert secret not in _cli(home, "tokens", "list").stdout
    assert _cli(home, "tokens", "revoke", listed[0]["id"]).returncode == 0
    assert json.loads(_cli(home, "tokens", "list", "--json").stdout)[0]["active"] is False


def test_with_a_token_the_server_turns_auth_on(home: Path) -> None:
    _cli(home, "users", "add", "ada", "--role", "editor")
    _cli(home, "tokens", "create", "ada")
    port = _free_port()
    process = _start(home, port)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                ready = httpx.get(f"{url}/ready", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        assert ready.json()["auth"] is True
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert "auth: on" in stderr
