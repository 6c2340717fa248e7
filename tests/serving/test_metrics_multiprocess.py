"""Metric files of processes that are gone: a killed worker's levels, an earlier run's counts.

A child interpreter writes into the folder as a serving worker does (prometheus-client in
multiprocess mode) and leaves with ``os._exit``, as a killed worker would: no clean-up.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from loopwright.serving.metrics import MULTIPROC_VARIABLE, ServingMetrics, multiprocess_dir
from loopwright.serving.repository import ModelRepository

_WORKER = """
import os
from prometheus_client import Counter, Gauge
Gauge("loopwright_queue_rows", "", ("model", "version"), multiprocess_mode="livesum").labels(
    "clf", "1"
).set(500)
Counter("loopwright_requests", "", ("protocol", "route", "status")).labels(
    "oip", "/v2/models/{name}/infer", "200"
).inc(7)
os._exit(0)
"""


def _killed_worker(folder: Path) -> None:
    env = {**os.environ, MULTIPROC_VARIABLE: str(folder)}
    subprocess.run([sys.executable, "-c", _WORKER], env=env, check=True, timeout=60)


def _scrape(metrics: ServingMetrics) -> str:
    async def run() -> str:
        metrics.start()
        try:
            return bytes((await metrics.scrape(None)).body).decode()  # type: ignore[arg-type]
        finally:
            await metrics.stop()

    return asyncio.run(run())


def test_a_killed_workers_queue_level_leaves_the_sums_when_a_worker_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "metrics"
    folder.mkdir()
    _killed_worker(folder)
    monkeypatch.setenv(MULTIPROC_VARIABLE, str(folder))
    text = _scrape(ServingMetrics(ModelRepository([])))
    assert 'loopwright_queue_rows{model="clf",version="1"} 500.0' not in text
    # Its counts are this run's history: they stay in the sums.
    assert 'status="200"} 7.0' in text


def test_a_given_folder_is_cleared_of_an_earlier_runs_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "metrics"
    folder.mkdir()
    _killed_worker(folder)
    (folder / "notes.txt").write_text("not a metrics file")
    monkeypatch.setenv(MULTIPROC_VARIABLE, str(folder))
    with multiprocess_dir() as given:
        assert given == str(folder)
        assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    assert folder.is_dir()  # the user's folder is kept
