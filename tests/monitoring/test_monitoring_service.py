"""Monitors on real stores (SQLite and PostgreSQL): create, get, list, delete, audit, and every
field of create refused when wrong, naming the fix."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from _deployment_log import DATASET, DEPLOYMENT, Clock, register

from loopwright.config import resolve_settings
from loopwright.errors import AlreadyExists, InvalidInput, NotFound
from loopwright.monitoring.entities import AlertRule
from loopwright.monitoring.service import MonitoringService
from loopwright.serving.predictions import PredictionService
from loopwright.store import schema as t
from loopwright.store.audit import events, verify_chain
from loopwright.store.home import Store, open_store


@pytest.fixture
def store(tmp_path: Path, db_uri: str) -> Iterator[Store]:
    with open_store(resolve_settings(home=tmp_path / "home", db_uri=db_uri)) as s:
        yield s


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def monitoring(store: Store, tmp_path: Path, clock: Clock) -> MonitoringService:
    return MonitoringService(store, PredictionService(tmp_path / "log"), actor="ada", clock=clock)


def test_create_get_list(monitoring: MonitoringService, clock: Clock) -> None:
    created = monitoring.create(
        "churn-drift",
        deployment=DEPLOYMENT,
        window=timedelta(minutes=30),
        every=timedelta(minutes=15),
        tests=["psi", "ks", "psi"],
        columns=["input.age", "output.predict"],
        thresholds={"psi": 0.25, "ks:input.age": 0.1},
        alerts=["drift_share > 0.3", "accuracy<0.8"],
        webhook="https://hooks.example.com/lw",
        webhook_format="slack",
        task="classification",
        description="drift of the churn model",
    )
    assert created.name == "churn-drift" and created.deployment == DEPLOYMENT
    assert created.reference == "auto" and created.reference_id is None
    assert (created.window, created.every) == (timedelta(minutes=30), timedelta(minutes=15))
    assert created.tests == ("psi", "ks")  # repeats dropped
    assert created.columns == ("input.age", "output.predict")
    assert created.thresholds == {"psi": 0.25, "ks:input.age": 0.1}
    assert created.alerts == (AlertRule.parse("drift_share>0.3"), AlertRule.parse("accuracy<0.8"))
    assert (created.webhook, created.webhook_format) == ("https://hooks.example.com/lw", "slack")
    assert created.task == "classification"
    assert created.created_by == "ada" and created.created_at == clock.now
    assert created.last_run_at is None
    assert monitoring.get("churn-drift") == created
    monitoring.create("another", deployment="other-api")
    assert [m.name for m in monitoring.list()] == ["another", "churn-drift"]
    assert [m.name for m in monitoring.list(deployment=DEPLOYMENT)] == ["churn-drift"]
    assert monitoring.list(deployment="nobody") == []


def test_defaults(monitoring: MonitoringService) -> None:
    monitor = monitoring.create("m", deployment=DEPLOYMENT)
    assert monitor.window == timedelta(hours=1) and monitor.every is None
    assert (monitor.tests, monitor.columns, dict(monitor.thresholds)) == ((), (), {})
    assert (monitor.alerts, monitor.webhook, monitor.webhook_format) == ((), None, "json")
    assert monitor.task is None and monitor.description is None


def test_an_explicit_reference_is_built_at_create(
    monitoring: MonitoringService, store: Store, tmp_path: Path
) -> None:
    pytest.importorskip("sklearn")
    register(store, tmp_path)
    monitor = monitoring.create("m", deployment=DEPLOYMENT, reference=f"{DATASET}@v1")
    assert monitor.reference == f"{DATASET}@v1"
    assert monitor.reference_id == monitoring.references()[0].id
    with pytest.raises(NotFound):
        monitoring.create("m2", deployment=DEPLOYMENT, reference="missing@v1")
    assert [m.name for m in monitoring.list()] == ["m"]  # nothing stored for the refused one


def test_names_are_unique(monitoring: MonitoringService) -> None:
    monitoring.create("m", deployment=DEPLOYMENT)
    with pytest.raises(AlreadyExists, match="monitor 'm' already exists"):
        monitoring.create("m", deployment="other")


def test_delete_removes_runs_and_is_audited(monitoring: MonitoringService, store: Store) -> None:
    monitor = monitoring.create("m", deployment=DEPLOYMENT)
    run = monitoring.run("m")  # the log is empty: a no_data run is stored
    assert (run.status, run.rows, run.drift, run.error) == ("no_data", 0, None, None)
    monitoring.delete("m")
    with pytest.raises(NotFound, match="monitor 'm' does not exist"):
        monitoring.get("m")
    with pytest.raises(NotFound):
        monitoring.get_run(run.id)
    with pytest.raises(NotFound):
        monitoring.run("m")
    with pytest.raises(NotFound):
        monitoring.delete("m")
    with store.db.read() as conn:
        for table in (t.monitor_runs, t.monitor_results, t.monitors):
            assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one() == 0
    trail = events(store.db, subject_id=monitor.id)
    assert [(e.action, e.actor) for e in trail] == [
        ("monitor.create", "ada"),
        ("monitor.delete", "ada"),
    ]
    assert trail[0].after is not None and trail[0].after["deployment"] == DEPLOYMENT
    assert trail[0].after["spec"]["window_s"] == 3600
    assert trail[1].before is not None and trail[1].before["runs"] == 1
    verify_chain(store.db)
    monitoring.create("m", deployment=DEPLOYMENT)  # the name is free again


def test_unknown_monitor_names_the_known_ones(monitoring: MonitoringService) -> None:
    monitoring.create("alpha", deployment=DEPLOYMENT)
    with pytest.raises(NotFound, match="monitors: alpha"):
        monitoring.get("beta")
    with pytest.raises(NotFound, match="monitor 'beta'"):
        monitoring.alerts(monitor="beta")


BAD_FIELDS: list[tuple[str, dict[str, Any], str]] = [
    ("name", {"name": "bad name"}, "monitor name"),
    ("name", {"name": ""}, "monitor name"),
    ("name", {"name": "x" * 101}, "monitor name"),
    ("name", {"name": "-lead"}, "monitor name"),
    ("deployment", {"deployment": "a/b"}, "deployment name"),
    ("deployment", {"deployment": ""}, "deployment name"),
    ("reference", {"reference": "latest"}, "NAME@VERSION"),
    ("reference", {"reference": "models:/x"}, "NAME@VERSION"),
    ("window", {"window": timedelta(0)}, "window"),
    ("window", {"window": timedelta(seconds=-5)}, "window"),
    ("window", {"window": timedelta(days=400)}, "window"),
    ("window", {"window": timedelta(seconds=1.5)}, "whole number of seconds"),
    ("window", {"window": 3600}, "must be a timedelta"),
    ("every", {"every": timedelta(0)}, "every"),
    ("every", {"every": "15m"}, "must be a timedelta"),
    ("tests", {"tests": ["psi", "nope"]}, "unknown test"),
    ("tests", {"tests": "psi"}, "list of test names"),
    ("columns", {"columns": ["age"]}, "input.<feature>"),
    ("columns", {"columns": ["input."]}, "input.<feature>"),
    ("columns", {"columns": "input.age"}, "list of the log's columns"),
    ("thresholds", {"thresholds": {"nope": 0.1}}, "TEST or TEST:COLUMN"),
    ("thresholds", {"thresholds": {"psi:age": 0.1}}, "TEST or TEST:COLUMN"),
    ("thresholds", {"thresholds": {"psi": "high"}}, "not a number"),
    ("thresholds", {"thresholds": {"psi": float("nan")}}, "finite"),
    ("thresholds", {"thresholds": {"psi": True}}, "not a number"),
    ("thresholds", {"thresholds": [("psi", 0.1)]}, "must map"),
    ("alerts", {"alerts": ["drift_share >> 1"]}, "METRIC OP NUMBER"),
    ("alerts", {"alerts": "accuracy<0.8"}, "list of rules"),
    ("webhook", {"webhook": "ftp://example.com/x"}, "http\\(s\\) URL"),
    ("webhook", {"webhook": "https://"}, "http\\(s\\) URL"),
    ("webhook", {"webhook": "file:///etc/passwd"}, "http\\(s\\) URL"),
    ("webhook", {"webhook": "https://e.com/" + "x" * 2000}, "http\\(s\\) URL"),
    ("webhook_format", {"webhook_format": "xml"}, "webhook_format"),
    ("task", {"task": "ranking"}, "task"),
    ("description", {"description": 5}, "description"),
]


@pytest.mark.parametrize(
    ("field", "change", "message"),
    BAD_FIELDS,
    ids=[f"{f}-{i}" for i, (f, _, _) in enumerate(BAD_FIELDS)],
)
def test_bad_inputs_are_refused_naming_the_field(
    monitoring: MonitoringService, store: Store, field: str, change: dict[str, Any], message: str
) -> None:
    arguments: dict[str, Any] = {"name": "m", "deployment": DEPLOYMENT, **change}
    with pytest.raises(InvalidInput, match=message):
        monitoring.create(**arguments)
    with store.db.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.monitors)).scalar_one() == 0


def test_bad_reads_are_refused(monitoring: MonitoringService) -> None:
    monitoring.create("m", deployment=DEPLOYMENT)
    for limit in (0, -1, 10_001, True, 2.5):
        with pytest.raises(InvalidInput, match="limit"):
            monitoring.history("m", limit=limit)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="status"):
        monitoring.alerts(status="closed")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="format"):
        monitoring.report("m", format="pdf")  # type: ignore[arg-type]
    with pytest.raises(NotFound, match="has no runs yet"):
        monitoring.report("m")
    with pytest.raises(NotFound, match="monitor run"):
        monitoring.get_run("0" * 32)
    with pytest.raises(InvalidInput, match="datetime"):
        monitoring.run("m", at="yesterday")  # type: ignore[arg-type]
