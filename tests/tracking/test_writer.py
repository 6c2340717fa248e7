"""The background metric writer: cheap for the caller, durable at end of run, bounded loss."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

import loopwright as lw
from loopwright.client import Client
from loopwright.config import resolve_settings
from loopwright.errors import InvalidInput, NotFound, TrackingError
from loopwright.store import schema
from loopwright.tracking import Metric, RunStatus

CHILD = Path(__file__).with_name("_logger_child.py")


@pytest.fixture
def client(tmp_path: Path, db_uri: str) -> Client:
    return Client(resolve_settings(home=tmp_path / "home", db_uri=db_uri))


def _stored_points(client: Client, run_id: str) -> int:
    with client.store.db.read() as conn:
        query = sa.select(sa.func.count()).select_from(schema.metrics)
        return int(conn.execute(query.where(schema.metrics.c.run_id == run_id)).scalar_one())


def test_points_are_buffered_then_durable_when_the_run_ends(client: Client) -> None:
    with client.start_run(experiment="buffer") as run:
        for step in range(5000):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
        run.log_metric("nan", math.nan)
    assert _stored_points(client, run.id) == 5001
    stored = client.get_run(run.id)
    assert stored.metrics["loss"].step == 4999
    assert math.isnan(stored.metrics["nan"].value)
    client.close()


def test_reads_see_buffered_points_without_waiting(client: Client) -> None:
    run = client.start_run(experiment="read-your-writes")
    run.log_metric("acc", 0.5, step=1)
    assert client.get_run(run.id).metrics["acc"].value == 0.5
    assert [m.value for m in client.get_metric_history(run.id, "acc")] == [0.5]
    run.end()
    client.close()


def test_the_background_thread_writes_without_an_explicit_flush(client: Client) -> None:
    run = client.start_run(experiment="interval")
    run.log_metric("x", 1.0)
    deadline = time.monotonic() + 10
    while _stored_points(client, run.id) == 0:
        assert time.monotonic() < deadline, "the writer never flushed on its interval"
        time.sleep(0.05)
    run.end()
    client.close()


def test_bad_points_fail_in_the_caller_not_the_writer(client: Client) -> None:
    with client.start_run(experiment="bad") as run:
        with pytest.raises(InvalidInput, match="must be numbers"):
            run.log_metric("loss", "high")  # type: ignore[arg-type]
        with pytest.raises(InvalidInput, match="metric key"):
            run.log_metric("", 1.0)
        with pytest.raises(NotFound):
            client.tracking.log_metric_points("no-such-run", [Metric("a", 1.0, 0, 0)])
    assert _stored_points(client, run.id) == 0
    client.close()


def test_a_failed_background_write_is_raised_at_the_next_flush(client: Client) -> None:
    run = client.start_run(experiment="vanishing")
    run.log_metric("x", 1.0)
    client.tracking.flush()
    with client.store.db.write() as conn:  # the run disappears under the writer
        conn.execute(schema.metrics.delete().where(schema.metrics.c.run_id == run.id))
        conn.execute(schema.latest_metrics.delete().where(schema.latest_metrics.c.run_id == run.id))
        conn.execute(schema.runs.delete().where(schema.runs.c.id == run.id))
    run.log_metric("x", 2.0, step=1)
    with pytest.raises(TrackingError, match="dropped"):
        client.tracking.flush()
    client.tracking.flush()  # the error is reported once; the writer keeps working
    with pytest.raises(NotFound):
        run.end()
    assert lw.active_run() is None  # a run that cannot end still stops being active
    client.close()


def test_log_batch_writes_params_tags_and_points(client: Client) -> None:
    with client.start_run(experiment="batch") as run:
        run.log_batch(
            metrics=[Metric("m", float(i), i, 1_000 + i) for i in range(1000)],
            params={"lr": 0.1},
            tags={"team": "risk"},
        )
    stored = client.get_run(run.id)
    assert stored.params == {"lr": "0.1"}
    assert stored.tags["team"] == "risk"
    assert stored.metrics["m"].value == 999.0
    assert _stored_points(client, run.id) == 1000
    client.close()


def test_sigkill_mid_logging_loses_at_most_the_last_interval(tmp_path: Path) -> None:
    home = tmp_path / "home"
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(home)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    run_id = child.stdout.readline().strip()
    assert run_id, child.stderr.read() if child.stderr else ""
    time.sleep(2.5)  # a couple of flush intervals
    killed_at = time.time() * 1000
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    child.stdout.close()
    if child.stderr:
        child.stderr.close()

    client = Client(resolve_settings(home=home))
    with client.store.db.read() as conn:
        if client.store.db.dialect == "sqlite":
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        m = schema.metrics.c
        count, last_step, last_time = conn.execute(
            sa.select(sa.func.count(), sa.func.max(m.step), sa.func.max(m.timestamp)).where(
                m.run_id == run_id
            )
        ).one()
    assert count > 0
    assert count == last_step + 1, "flushes must land whole and in order: no gaps"
    lost_ms = killed_at - last_time
    interval_ms = client.tracking.writer.interval * 1000
    # One interval, plus scheduling slack on a shared two-core machine.
    assert lost_ms <= interval_ms + 1500, f"{lost_ms:.0f} ms of points lost"
    stored = client.get_run(run_id)
    assert stored.status is RunStatus.RUNNING
    client.close()


def test_system_metrics_are_sampled_while_the_run_is_open(client: Client) -> None:
    with client.start_run(
        experiment="sys", log_system_metrics=True, system_metrics_interval=0.05
    ) as run:
        time.sleep(0.4)
    stored = client.get_run(run.id)
    assert {"system/cpu_percent", "system/memory_rss_mb", "system/memory_percent"} <= set(
        stored.metrics
    )
    assert stored.metrics["system/memory_rss_mb"].value > 1
    assert len(client.get_metric_history(run.id, "system/memory_rss_mb")) >= 2
    client.close()


def test_a_poisoned_point_is_dropped_alone_and_reported_to_its_run_only(client: Client) -> None:
    """A point that slipped past validation costs itself, not the batch around it: the good
    points are stored, the run still ends, its caller learns what was dropped, and another
    run's reads never see the error."""
    other = client.tracking.create_run(experiment="poison")
    client.tracking.log_metrics(other.id, {"fine": 1.0})
    run = client.start_run(experiment="poison")
    for step in range(1000):
        run.log_metric("loss", 1.0, step=step)
    client.tracking.writer.add((run.id, "loss", 2**63, 0, 1.0, False))  # a BIGINT overflow
    run.log_metric("after", 2.0)
    assert client.get_run(other.id).metrics["fine"].value == 1.0  # others read unharmed
    with pytest.raises(
        TrackingError, match=rf"1 metric point.* of run {run.id} \(loss@step {2**63}\)"
    ):
        run.end()
    stored = client.get_run(run.id)
    assert stored.status is RunStatus.FINISHED
    assert _stored_points(client, run.id) == 1001
    client.tracking.end_run(other.id)  # the drop was reported to its own run only
    client.tracking.flush()  # and only once
    client.close()


def test_out_of_range_points_are_refused_at_the_call(client: Client) -> None:
    with client.start_run(experiment="ranges") as run:
        for bad in ({"step": 2**63}, {"step": -(2**63) - 1}, {"timestamp": 2**63}):
            with pytest.raises(InvalidInput, match="64 bits"):
                run.log_metric("loss", 1.0, **bad)
        with pytest.raises(InvalidInput, match="must be an integer"):
            run.log_metric("loss", 1.0, step=math.inf)  # type: ignore[arg-type]
        with pytest.raises(InvalidInput, match="64-bit float"):
            run.log_metric("loss", 10**400)
        with pytest.raises(InvalidInput, match="lone surrogate"):
            run.log_metric("loss\ud800", 1.0)
        with pytest.raises(InvalidInput, match="NUL"):
            run.log_metrics({"a\x00b": 1.0})
        with pytest.raises(InvalidInput, match="64 bits"):
            run.log_batch(metrics=[Metric("m", 1.0, 2**64, 0)], params={"p": 1})
        run.log_metric("edge", math.inf, step=2**63 - 1, timestamp=-(2**63))
        run.log_metric("edge", -math.inf, step=-(2**63))
    stored = client.get_run(run.id)
    assert stored.params == {}, "a refused batch writes none of its params"
    assert [(m.step, m.value) for m in client.get_metric_history(run.id, "edge")] == [
        (-(2**63), -math.inf),
        (2**63 - 1, math.inf),
    ]
    assert _stored_points(client, run.id) == 2
    client.close()
