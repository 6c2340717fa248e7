"""Several processes on one SQLite store: nothing lost, never "database is locked"."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from loopwright.config import resolve_settings
from loopwright.store import schema
from loopwright.store.database import Database
from loopwright.store.home import open_store
from loopwright.store.migrate import ensure_schema

WORKERS = Path(__file__).with_name("_workers.py")


def test_four_processes_write_one_sqlite_store_at_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    runs_each = 60
    start_at = time.time() + 2.0  # all four start together, on a store none has created yet
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(WORKERS),
                "concurrent",
                str(home),
                f"w{n}",
                str(runs_each),
                str(start_at),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    outputs = [proc.communicate(timeout=240) for proc in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert "database is locked" not in err
        assert proc.returncode == 0, err

    store = open_store(resolve_settings(home=home))
    with store.db.read() as conn:
        names = conn.execute(sa.select(schema.runs.c.name)).scalars().all()
        params = conn.execute(sa.select(sa.func.count()).select_from(schema.params)).scalar()
        points = conn.execute(sa.select(sa.func.count()).select_from(schema.metrics)).scalar()
        experiments = conn.execute(sa.select(schema.experiments.c.name)).scalars().all()
    store.close()
    expected = {f"w{n}-{i}" for n in range(4) for i in range(runs_each)}
    assert sorted(names) == sorted(expected)
    assert params == 2 * len(expected)
    assert points == 10 * len(expected)
    assert experiments == ["shared"]


def test_processes_creating_a_new_store_together_all_succeed(tmp_path: Path) -> None:
    """The first open switches the file to WAL and migrates it; racing openers must wait."""
    for attempt in range(6):
        home = tmp_path / f"home{attempt}"
        start_at = time.time() + 1.0
        procs = [
            subprocess.Popen(
                [sys.executable, str(WORKERS), "open", str(home), str(start_at)],
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        for proc in procs:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err


def test_writer_killed_mid_transaction_twenty_times(tmp_path: Path) -> None:
    """SIGKILL during writes: integrity holds, acknowledged batches are whole, others absent."""
    db_uri = f"sqlite:///{tmp_path / 'crash.db'}"
    db = Database.open(db_uri)
    ensure_schema(db)
    with db.write() as conn:
        conn.execute(
            schema.experiments.insert(),
            {
                "id": "crash-exp",
                "name": "crash",
                "lifecycle_stage": "active",
                "created_at": 0,
                "updated_at": 0,
            },
        )
        conn.execute(
            schema.runs.insert(),
            {
                "id": "crash-run",
                "experiment_id": "crash-exp",
                "name": "r",
                "status": "RUNNING",
                "lifecycle_stage": "active",
                "start_time": 0,
            },
        )
    db.dispose()

    rows_per_batch = 400
    acknowledged: set[str] = set()
    rng = random.Random(1234)
    for _ in range(20):
        proc = subprocess.Popen(
            [sys.executable, str(WORKERS), "batches", db_uri, str(rows_per_batch)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        wanted = rng.randint(1, 4)
        for _ in range(wanted):
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else "writer exited"
            acknowledged.add(f"b{line.strip()}")
        time.sleep(rng.uniform(0, 0.03))  # land the kill at a random point of the next batch
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        # Acknowledgements printed before the kill landed count too.
        acknowledged.update(f"b{line.strip()}" for line in proc.stdout.read().splitlines())
        proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()

    db = Database.open(db_uri)
    with db.read() as conn:
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        counts: dict[str, int] = dict(
            conn.execute(
                sa.select(schema.metrics.c.key, sa.func.count()).group_by(schema.metrics.c.key)
            ).all()
        )
    db.dispose()
    assert acknowledged <= set(counts), "an acknowledged commit was lost"
    assert set(counts.values()) == {rows_per_batch}, "a killed transaction left a partial batch"
    assert len(acknowledged) >= 20
