"""The serving tests' model and live server (imported by bare name, like registry's helpers).

The model takes two numbers and a text column (``a``, ``b``, ``color``) and has
``predict_proba``; its encoder refuses colors it never saw, which gives a model that raises on
input its signature accepts (``"purple"``).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx

MODEL = "clf"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def live(app: Any) -> Iterator[str]:
    """Run ``app`` under uvicorn on a free port until the block ends; yields its URL."""
    import uvicorn

    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="serving-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "the server thread stopped while starting"
        assert time.monotonic() < deadline, "the server did not start within 30 s"
        time.sleep(0.02)
    url = f"http://127.0.0.1:{port}"
    assert httpx.get(f"{url}/v2/health/ready", timeout=5).status_code == 200
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def training_frame() -> tuple[Any, Any]:
    import pandas as pd

    frame = pd.DataFrame(
        {
            "a": [0.1, 0.4, 0.35, 0.8, 0.9, 0.2, 0.7, 0.05],
            "b": [1.0, 2.0, 1.5, 3.0, 3.5, 0.5, 2.5, 0.7],
            "color": ["red", "blue", "red", "green", "blue", "red", "green", "red"],
        }
    )
    return frame, [0, 1, 0, 1, 1, 0, 1, 0]


def train() -> Any:
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    X, y = training_frame()
    encode = make_column_transformer((OneHotEncoder(), ["color"]), remainder="passthrough")
    return make_pipeline(encode, LogisticRegression()).fit(X, y)


def serve_command(store: dict[str, str], *args: str) -> list[str]:
    """``loopwright serve ARGS`` on ``store`` (the ``store_settings`` fixture), to run."""
    return [
        sys.executable,
        "-m",
        "loopwright.cli",
        "--home",
        store["home"],
        "--db-uri",
        store["db_uri"],
        "--blob-uri",
        store["blob_uri"],
        "serve",
        *args,
    ]


@contextmanager
def running(command: list[str], ready: Callable[[], bool]) -> Iterator[subprocess.Popen[str]]:
    """``command`` in a session of its own until the block ends, once ``ready()`` is true (an
    exception counts as not yet); then SIGTERM, SIGKILL past 30 s. Exiting first, or not ready
    within 90 s, fails with its output."""
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "COLUMNS": "300"},
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, f"{command} did not get ready within 90 s"
            try:
                if ready():
                    break
            except Exception:
                pass
            time.sleep(0.05)
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=30)
