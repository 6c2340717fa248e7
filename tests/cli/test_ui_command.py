"""``loopwright ui``: the dashboard over the local store, as a real process on 127.0.0.1."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def _started(process: subprocess.Popen[str]) -> str:
    """The dashboard URL the command prints once it listens (30 s at most)."""
    assert process.stderr is not None
    line = process.stderr.readline()
    found = re.search(r"http://127\.0\.0\.1:\d+/ui/", line)
    assert found, line
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(found.group(0).replace("/ui/", "/health"), timeout=2).text == "OK":
                return found.group(0)
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("loopwright ui did not answer within 30 s")


def test_ui_serves_the_dashboard_of_the_local_store(tmp_path: Path) -> None:
    env = {**os.environ, "LOOPWRIGHT_HOME": str(tmp_path / "home"), "LOOPWRIGHT_USER": "dana"}
    command = [sys.executable, "-m", "loopwright.cli", "ui", "--port", "0", "--no-browser"]
    with subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True) as process:
        try:
            url = _started(process)
            page = httpx.get(url)
            assert page.status_code == 200
            assert "<h1>Overview</h1>" in page.text
            assert "dana" in page.text  # no tokens: the store's user, as on a tokenless server
        finally:
            process.terminate()
            process.wait(timeout=30)


def test_ui_refuses_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "LOOPWRIGHT_HOME": str(tmp_path / "home")}
        done = subprocess.run(
            [sys.executable, "-m", "loopwright.cli", "ui", "--port", str(port), "--no-browser"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode != 0
    assert f"port {port} on 127.0.0.1 is in use" in done.stderr
    assert "Traceback" not in done.stderr
