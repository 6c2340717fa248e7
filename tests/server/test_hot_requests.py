"""MLflow's hottest requests run on the event loop, yet a locked database never stalls the loop:
they fall back to the thread pool and still answer correctly once the lock is gone."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from conftest import LiveServer, serve
from loopwright.config import resolve_settings
from loopwright.store.database import Database

MLFLOW = "/api/2.0/mlflow"


@pytest.fixture
def sqlite_server(tmp_path: Path) -> Iterator[LiveServer]:
    home = tmp_path / "server-home"
    uri = f"sqlite:///{home / 'store.db'}"
    settings = resolve_settings(home=home, db_uri=uri, user="server-admin")
    with serve(settings, auth=False) as url:
        yield LiveServer(url, home, uri, settings)


@contextmanager
def write_lock(uri: str) -> Iterator[None]:
    """Hold the SQLite write lock from another connection (as a CLI writing would)."""
    db = Database.open(uri)
    conn = db.engine.connect()
    conn.begin()
    conn.exec_driver_sql("UPDATE experiments SET name = name WHERE id = '0'")
    try:
        yield
    finally:
        conn.commit()
        conn.close()
        db.dispose()


def _while_locked(server: LiveServer, request: Callable[[], httpx.Response]) -> httpx.Response:
    """Send ``request`` while the lock is held; the loop must keep answering /health."""
    with ThreadPoolExecutor(1) as pool, httpx.Client(base_url=server.url, timeout=10) as probe:
        with write_lock(server.db_uri):
            pending: Future[httpx.Response] = pool.submit(request)
            time.sleep(0.15)
            assert not pending.done(), "the request did not wait for the lock"
            started = time.monotonic()
            assert probe.get("/health").status_code == 200
            assert time.monotonic() - started < 0.5, "the event loop was blocked"
        return pending.result(timeout=30)


def test_hot_requests_wait_for_a_lock_in_the_thread_pool(sqlite_server: LiveServer) -> None:
    with httpx.Client(base_url=sqlite_server.url, timeout=30) as http:
        created = _while_locked(
            sqlite_server, lambda: http.post(f"{MLFLOW}/runs/create", json={"experiment_id": "0"})
        )
        assert created.status_code == 200, created.text
        run_id = created.json()["run"]["info"]["run_id"]
        point = {"run_id": run_id, "key": "loss", "value": 0.5, "timestamp": 7, "step": 1}
        logged = _while_locked(
            sqlite_server, lambda: http.post(f"{MLFLOW}/runs/log-metric", json=point)
        )
        assert logged.status_code == 200, logged.text
        points = [{"key": "acc", "value": i / 10, "timestamp": 8, "step": i} for i in range(50)]
        batch = _while_locked(
            sqlite_server,
            lambda: http.post(
                f"{MLFLOW}/runs/log-batch", json={"run_id": run_id, "metrics": points}
            ),
        )
        assert batch.status_code == 200, batch.text
        ended = _while_locked(
            sqlite_server,
            lambda: http.post(
                f"{MLFLOW}/runs/update", json={"run_id": run_id, "status": "FINISHED"}
            ),
        )
        assert ended.status_code == 200, ended.text
        assert ended.json()["run_info"]["status"] == "FINISHED"
        run = http.get(f"{MLFLOW}/runs/get", params={"run_id": run_id}).json()["run"]
    assert {m["key"]: m["value"] for m in run["data"]["metrics"]} == {"loss": 0.5, "acc": 4.9}
    db = Database.open(sqlite_server.db_uri)
    try:
        with db.read() as conn:
            rows = conn.execute(
                sa.text("SELECT key, count(*) FROM metrics WHERE run_id = :r GROUP BY key"),
                {"r": run_id},
            ).all()
            runs = conn.execute(sa.text("SELECT count(*) FROM runs")).scalar()
    finally:
        db.dispose()
    assert dict(rows) == {"loss": 1, "acc": 50}  # a point buffered twice is stored once
    assert runs == 1  # the create that fell back to the pool made one run, not two


def test_concurrent_hot_requests_lose_nothing(sqlite_server: LiveServer) -> None:
    """Clients in threads against the loop and the pool at once (one holds the write lock now
    and then): every acknowledged point and run is stored exactly once."""
    with httpx.Client(base_url=sqlite_server.url, timeout=30) as http:
        run_id = http.post(f"{MLFLOW}/runs/create", json={"experiment_id": "0"}).json()["run"][
            "info"
        ]["run_id"]

    def client(worker: int) -> list[int]:
        codes = []
        with httpx.Client(base_url=sqlite_server.url, timeout=30) as http:
            for step in range(40):
                point = {"run_id": run_id, "key": f"w{worker}", "value": step, "timestamp": 1}
                point["step"] = step
                codes.append(http.post(f"{MLFLOW}/runs/log-metric", json=point).status_code)
                if step % 10 == 0:
                    codes.append(
                        http.post(f"{MLFLOW}/runs/create", json={"experiment_id": "0"}).status_code
                    )
        return codes

    stop = threading.Event()

    def locker() -> None:
        while not stop.is_set():
            with write_lock(sqlite_server.db_uri):
                time.sleep(0.01)
            time.sleep(0.02)

    lock_thread = threading.Thread(target=locker)
    lock_thread.start()
    try:
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(client, range(4)))
    finally:
        stop.set()
        lock_thread.join()
    assert all(code == 200 for codes in results for code in codes)
    db = Database.open(sqlite_server.db_uri)
    try:
        with db.read() as conn:
            points = conn.execute(
                sa.text("SELECT count(*) FROM metrics WHERE run_id = :r"), {"r": run_id}
            ).scalar()
            runs = conn.execute(sa.text("SELECT count(*) FROM runs")).scalar()
    finally:
        db.dispose()
    assert points == 4 * 40
    assert runs == 1 + 4 * 4


def test_a_run_in_a_new_experiment_is_made_in_the_thread_pool(sqlite_server: LiveServer) -> None:
    """Creating the experiment is a write before the run's: such a request never runs on the
    loop (its second write could not be run again safely), so it waits for a lock elsewhere."""
    with httpx.Client(base_url=sqlite_server.url, timeout=30) as http:
        made = _while_locked(
            sqlite_server, lambda: http.post("/api/v1/runs", json={"experiment": "fresh"})
        )
        assert made.status_code == 201, made.text
        again = http.post("/api/v1/runs", json={"experiment": "fresh"})  # now on the loop
        assert again.status_code == 201, again.text
        runs = http.get("/api/v1/runs", params={"experiment": "fresh"}).json()
    assert len(runs) == 2
