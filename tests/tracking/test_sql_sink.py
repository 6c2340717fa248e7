"""The SQL sink marks a run that gets points alive, at most once per HEARTBEAT_INTERVAL_S (not
in every commit), while the writer's own heartbeats always go through."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from loopwright.config import resolve_settings
from loopwright.store import schema as t
from loopwright.store.home import Store, open_store
from loopwright.tracking._sql_sink import SqlSink
from loopwright.tracking._writer import HEARTBEAT_INTERVAL_S
from loopwright.tracking.service import TrackingService


@pytest.fixture
def store(tmp_path: Path, db_uri: str) -> Iterator[Store]:
    with open_store(resolve_settings(home=tmp_path / "home", db_uri=db_uri)) as s:
        yield s


def _heartbeat(store: Store, run_id: str, value: int | None = None) -> int | None:
    r = t.runs.c
    with store.db.write() as conn:
        if value is not None:
            conn.execute(sa.update(t.runs).where(r.id == run_id).values(heartbeat_at=value))
        return conn.execute(sa.select(r.heartbeat_at).where(r.id == run_id)).scalar_one()  # type: ignore[no-any-return]


def test_points_mark_their_run_alive_once_per_interval(store: Store) -> None:
    tracking = TrackingService(store, capture=False)
    run_id = tracking._record_run(tracking.get_or_create_experiment("beats").id).id
    tracking.close()
    clock = [1000.0]
    sink = SqlSink(store.db, clock=lambda: clock[0])

    _heartbeat(store, run_id, 1)
    sink.write([(run_id, "m", 0, 1, 0.5, False)], (), None)
    assert (_heartbeat(store, run_id) or 0) > 1  # first points: alive

    _heartbeat(store, run_id, 1)
    clock[0] += HEARTBEAT_INTERVAL_S - 1
    sink.write([(run_id, "m", 1, 1, 0.5, False)], (), None)
    assert _heartbeat(store, run_id) == 1  # within the interval: the row is left alone

    sink.write([], [run_id], None)
    assert (_heartbeat(store, run_id) or 0) > 1  # the writer's own heartbeat always goes

    _heartbeat(store, run_id, 1)
    clock[0] += HEARTBEAT_INTERVAL_S
    sink.write([(run_id, "m", 2, 1, 0.5, False)], (), None)
    assert (_heartbeat(store, run_id) or 0) > 1  # an interval later: alive again
