"""Shared by the schedule and scheduler tests (imported by bare name): a client on a store, a
monitor whose alerts open and resolve through monitoring's alert book, dataset versions."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from loopwright._ids import new_id
from loopwright.client import Client
from loopwright.config import resolve_settings
from loopwright.monitoring._alerts import AlertBook
from loopwright.monitoring.entities import DriftResult, Monitor, MonitorRun, Performance, TestResult
from loopwright.store import schema as t

MONITOR = "churn-drift"
RULES = ("drift_share>0.3", "accuracy<0.8")


def client_on(home: Path, db_uri: str | None = None) -> Client:
    return Client(resolve_settings(home=home, db_uri=db_uri))


def make_monitor(client: Client, name: str = MONITOR) -> Monitor:
    """A monitor of ``churn-api`` with a drift rule and a performance rule."""
    return client.monitoring.create(name, deployment="churn-api", alerts=list(RULES))


def monitor_run(client: Client, monitor: Monitor, *, share: float, accuracy: float) -> None:
    """Store a monitor run with these figures and let the alert book open or resolve alerts
    (as ``MonitoringService.run`` does after scoring a window)."""
    tests = (TestResult("input.age", "psi", share, 0.2, share > 0.2),)
    drift = DriftResult(tests, share > 0.3, (), share, "share >= 0.3", None, 100, 100)
    performance = Performance("classification", {"accuracy": accuracy}, 50, 100, 0.5)
    run = MonitorRun(
        id=new_id(),
        monitor=monitor.name,
        started_at=1,
        finished_at=2,
        window_start=0,
        window_end=2,
        status="ok",
        rows=100,
        model_versions=("churn/1",),
        drift=drift,
        performance=performance,
    )
    store = client.store
    with store.db.write() as conn:
        monitor_id = conn.execute(
            sa.select(t.monitors.c.id).where(t.monitors.c.name == monitor.name)
        ).scalar_one()
        conn.execute(
            t.monitor_runs.insert(),
            {
                "id": run.id,
                "monitor_id": monitor_id,
                "started_at": 1,
                "finished_at": 2,
                "window_start": 0,
                "window_end": 2,
                "status": "ok",
                "rows": 100,
                "summary_json": "{}",
            },
        )
    AlertBook(store, actor="ada").evaluate(client.monitoring.get(monitor.name), run)


def add_version(client: Client, tmp: Path, name: str, content: str) -> str:
    """A new version of dataset ``name`` holding one file with ``content``; its id."""
    folder = tmp / f"{name}-{new_id()}"
    folder.mkdir()
    (folder / "rows.csv").write_text(content)
    return client.datasets.add(name, folder, message=content[:20]).id
