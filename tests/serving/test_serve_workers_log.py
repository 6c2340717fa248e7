"""A clean stop of ``loopwright serve --workers 2`` keeps every answered request in the
prediction log: the signal goes to the parent only (as ``docker stop`` sends it), which stops
its workers, whose shutdown writes what they queued."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

import httpx
from _served_model import MODEL, free_port, training_frame

from loopwright.serving.predictions import read_predictions
from loopwright.store.blobs import BlobStore


def test_sigterm_to_the_parent_keeps_every_workers_answers(
    store_settings: dict[str, str], model: Any
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable, "-m", "loopwright.cli", "--home", store_settings["home"],
        "--db-uri", store_settings["db_uri"], "--blob-uri", store_settings["blob_uri"],
        "serve", f"models:/{MODEL}/1", "--workers", "2", "--port", str(port),
    ]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    X, _ = training_frame()
    body = {"dataframe_records": X[:2].to_dict(orient="records")}
    answered = []
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "serve did not get ready within 90 s"
            try:
                if httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        # A connection each, spread over the workers; the log writes every second, so
        # most of these are still queued in the workers when the signal comes.
        for i in range(40):
            with httpx.Client(base_url=url, timeout=30) as http:
                answer = http.post("/invocations", json=body, headers={"x-request-id": f"q{i}"})
            assert answer.status_code == 200
            answered.append(answer.headers["x-request-id"])
        os.kill(process.pid, signal.SIGTERM)  # the parent only
        assert process.wait(timeout=60) in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=30)
    logged = read_predictions(BlobStore(store_settings["blob_uri"]), MODEL)
    assert sorted(set(logged["request_id"])) == sorted(answered)
    assert logged.groupby("request_id").size().eq(2).all()
