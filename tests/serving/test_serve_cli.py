"""``loopwright serve`` as users run it: a real process (or several) answering on a free port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from _served_model import MODEL, free_port, running, serve_command, training_frame


@contextmanager
def _serving(store: dict[str, str], *args: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    with _running(serve_command(store, *args), "/v2/health/ready") as running:
        yield running


@contextmanager
def _running(command: list[str], ready: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``command --port <free port>`` until the block ends, once ``ready`` answers 200."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        return httpx.get(f"{url}{ready}", timeout=2).status_code == 200

    with running([*command, "--port", str(port)], answers) as process:
        yield url, process


def _records(rows: int = 2) -> dict[str, Any]:
    X, _ = training_frame()
    return {"dataframe_records": X[:rows].to_dict(orient="records")}


def test_serve_answers_oip_and_mlflow_and_logs_until_sigterm(
    store_settings: dict[str, str], model: Any
) -> None:
    from loopwright.serving.predictions import read_predictions
    from loopwright.store.blobs import BlobStore

    X, _ = training_frame()
    with _serving(store_settings, f"models:/{MODEL}/1", "--max-batch-size", "8") as (url, proc):
        assert httpx.get(f"{url}/v2/models/{MODEL}/ready").status_code == 200
        scored = httpx.post(f"{url}/invocations", json=_records(2))
        assert scored.json() == {"predictions": model.predict(X[:2]).tolist()}
        os.killpg(proc.pid, signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
        _, banner = proc.communicate()
    assert f"{MODEL} version 1  <- models:/{MODEL}/1" in banner
    assert "batching up to 8 rows" in banner
    # The shutdown flushed the prediction log into the store's blob store (its predictions/).
    logged = read_predictions(BlobStore(store_settings["blob_uri"]), MODEL)
    assert logged["request_id"].tolist() == [scored.headers["x-request-id"]] * 2


def test_workers_two_gives_two_processes_that_answer(
    store_settings: dict[str, str], model: Any
) -> None:
    psutil = pytest.importorskip("psutil")
    with _serving(store_settings, f"models:/{MODEL}/1", "--workers", "2", "--no-log") as (
        url,
        proc,
    ):
        port = int(url.rsplit(":", 1)[1])
        deadline = time.monotonic() + 60
        while True:
            workers = [
                child
                for child in psutil.Process(proc.pid).children(recursive=True)
                if any(c.laddr.port == port for c in child.net_connections("tcp"))
            ]
            if len(workers) == 2 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert len(workers) == 2
        # Hold many connections open at once; both workers must be serving some of them.
        clients = [httpx.Client(base_url=url, timeout=30) for _ in range(24)]
        try:
            for http in clients:
                assert http.post("/invocations", json=_records(1)).status_code == 200
            answering = {
                worker.pid
                for worker in workers
                for c in worker.net_connections("tcp")
                if c.laddr.port == port and c.status == psutil.CONN_ESTABLISHED
            }
        finally:
            for http in clients:
                http.close()
        assert len(answering) == 2, "only one worker accepted connections"


def test_serve_refuses_what_it_cannot_serve_in_one_line(
    store_settings: dict[str, str], model: Any, tmp_path: Any
) -> None:
    cases = [
        ([f"models:/{MODEL}/9"], "has no version 9"),
        (["models:/ghost@blue"], "ghost"),
        ([str(tmp_path / "nowhere")], "does not exist"),
        ([f"models:/{MODEL}/1", f"models:/{MODEL}/1"], "is given twice"),
        (["bad name=" + str(tmp_path)], "does not exist"),
    ]
    for args, fragment in cases:
        stderr = _refused(store_settings, *args)
        assert fragment in stderr, (args, stderr)


def _refused(store: dict[str, str], *args: str) -> str:
    """What ``serve *args`` says on stderr as it exits 1 (never with a traceback)."""
    done = subprocess.run(
        serve_command(store, *args),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "300"},
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr, (args, done.stderr)
    return done.stderr


def test_a_package_that_runs_code_needs_trusted(
    store_settings: dict[str, str], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    import pandas as pd

    from loopwright.registry.packaging.package import save_model

    source = tmp_path / "src"
    source.mkdir()
    (source / "doubler_model.py").write_text(
        "class Doubler:\n    def predict(self, frame):\n        return frame['a'].to_numpy() * 2\n"
    )
    monkeypatch.syspath_prepend(str(source))
    doubler = importlib.import_module("doubler_model").Doubler()
    save_model(doubler, tmp_path / "pkg", input_example=pd.DataFrame({"a": [1.0, 2.0]}))
    refused = subprocess.run(
        serve_command(store_settings, f"doubler={tmp_path / 'pkg'}"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "300"},
    )
    assert refused.returncode == 1
    assert "imports Python code it ships" in refused.stderr and "--trusted" in refused.stderr
    with _serving(store_settings, f"doubler={tmp_path / 'pkg'}", "--trusted", "--no-log") as (
        url,
        _,
    ):
        scored = httpx.post(f"{url}/invocations", json={"inputs": {"a": [1.5, 4.0]}})
        assert scored.json() == {"predictions": [3.0, 8.0]}


def test_serve_through_a_loopwright_server(
    store_settings: dict[str, str], model: Any, tmp_path: Any
) -> None:
    X, _ = training_frame()
    server = [*serve_command(store_settings)[:-1], "server"]
    with _running(server, "/health") as (server_url, _):
        remote = [sys.executable, "-m", "loopwright.cli", "--home", str(tmp_path / "elsewhere")]
        serve = [*remote, "--server", server_url, "serve", f"models:/{MODEL}/1"]
        with _running(serve, "/v2/health/ready") as (url, _):
            scored = httpx.post(f"{url}/invocations", json=_records(3))
            assert scored.json() == {"predictions": model.predict(X[:3]).tolist()}
    # The package came over HTTP into the serving side's own cache, verified on load.
    assert list((tmp_path / "elsewhere" / "cache" / "models").iterdir())


def test_serve_resolves_an_alias_on_each_metadata_store(db_uri: str, tmp_path: Any) -> None:
    from _served_model import train

    from loopwright.client import Client
    from loopwright.config import resolve_settings

    store = {
        "home": str(tmp_path / "home"),
        "db_uri": db_uri,
        "blob_uri": str(tmp_path / "blobs"),
    }
    X, _ = training_frame()
    fitted = train()
    settings = resolve_settings(
        home=store["home"], db_uri=db_uri, blob_uri=store["blob_uri"], user="ada"
    )
    with Client(settings) as client:
        with client.start_run(experiment="serving") as run:
            run.log_model(fitted, "model", input_example=X[:3], registered_model_name=MODEL)
        client.registry.set_alias(MODEL, "blue", 1)
    with _serving(store, f"models:/{MODEL}@blue", "--no-log") as (url, _):
        meta = httpx.get(f"{url}/v2/models/{MODEL}").json()
        assert meta["versions"] == ["1"]
        scored = httpx.post(f"{url}/invocations", json=_records(2))
        assert scored.json() == {"predictions": fitted.predict(X[:2]).tolist()}


@pytest.mark.parametrize(
    ("host", "warned"),
    [
        ("127.0.0.1", False),
        ("127.0.0.2", False),
        ("::1", False),
        ("localhost", False),
        ("0.0.0.0", True),
        ("192.168.1.5", True),
        ("serving.example", True),
    ],
)
def test_the_banner_warns_when_listening_beyond_loopback(host: str, warned: bool) -> None:
    from loopwright.cli.serve import _banner
    from loopwright.serving.server import ServeConfig

    lines = _banner(host, 8080, 1, ServeConfig(sources=()), [])
    assert lines[0].startswith(f"loopwright serve on http://{host}:8080")
    assert any("anyone who can connect" in line for line in lines) is warned


def test_the_worker_configuration_round_trips_through_json() -> None:
    """Worker processes rebuild the configuration from LOOPWRIGHT_SERVE_CONFIG."""
    from loopwright.serving.server import ServeConfig
    from loopwright.serving.sources import ModelSource

    config = ServeConfig(
        sources=(
            ModelSource("clf", "models:/clf@champion", 3, "/cache/clf/3", "ab" * 32, True),
            ModelSource("local", "./pkg", None, "/work/pkg"),
        ),
        max_batch_size=32,
        max_batch_latency_ms=2.5,
        log_root="s3://bucket/predictions",
        log_sample_rate=0.1,
        registry=True,
        trusted=True,
    )
    assert ServeConfig.from_json(config.to_json()) == config
    assert ServeConfig.from_json(ServeConfig(sources=()).to_json()) == ServeConfig(sources=())
