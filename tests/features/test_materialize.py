"""Materialization into the online store (SQLite and Redis): windows, incremental runs and their
watermark, late rows, freshness, and a run killed half way."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from loopwright.config import Settings, resolve_settings
from loopwright.data.service import DatasetService
from loopwright.errors import InvalidInput, NotFound
from loopwright.features.definition_store import DefinitionStore
from loopwright.features.definitions import Entity, FeatureView, Field, FileSource, to_specs
from loopwright.features.entities import Materialization
from loopwright.features.materialize import freshness, materialize, watermark
from loopwright.features.online.base import OnlineStore
from loopwright.features.online.redis import RedisOnlineStore
from loopwright.features.online.sqlite import SQLiteOnlineStore
from loopwright.store.home import Store, open_store

T0 = 1_767_225_600_000  # 2026-01-01 UTC, in ms
HOUR = 3_600_000
DAY = 24 * HOUR  # the view's TTL


def write_rows(folder: Path, name: str, rows: list[tuple[int, int, float]]) -> None:
    """(driver_id, event ms, conv_rate) rows as one more Parquet file of the view's source."""
    frame = pd.DataFrame(rows, columns=["driver_id", "event_ms", "conv_rate"])
    frame["event_timestamp"] = pd.to_datetime(frame.pop("event_ms"), unit="ms", utc=True)
    frame.to_parquet(folder / f"{name}.parquet", index=False)


def specs(folder: Path, *, description: str = "", online: bool = True) -> list[dict[str, Any]]:
    driver = Entity("driver", join_keys={"driver_id": "int64"})
    view = FeatureView(
        "driver_stats",
        entities=[driver],
        source=FileSource(str(folder / "*.parquet"), timestamp_field="event_timestamp"),
        schema=[Field("conv_rate", "float64")],
        ttl=timedelta(days=1),
        online=online,
        description=description,
    )
    return to_specs([driver, view])


@dataclass
class Setup:
    folder: Path
    settings: Settings
    store: Store
    definitions: DefinitionStore
    online: OnlineStore

    def run(self, **options: Any) -> list[Materialization]:
        arguments: dict[str, Any] = {"start_ms": None, "end_ms": None, "incremental": False}
        arguments.update(options)
        return materialize(
            self.definitions,
            self.online,
            self.store,
            arguments.pop("views", None),
            datasets=DatasetService(self.store),
            settings=self.settings,
            actor="ada",
            **arguments,
        )

    def rates(self, *drivers: int) -> list[float | None]:
        rows = self.online.read("driver_stats", [(driver,) for driver in drivers])
        return [row and row.values["conv_rate"] for row in rows]


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("sqlite-postgres", marks=pytest.mark.postgres),
    ]
)
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Setup]:
    """A view over a folder of Parquet files, loaded into SQLite or Redis; the metadata (and
    so the watermark) on SQLite, and on PostgreSQL with the SQLite online store."""
    folder = tmp_path / "stats"
    folder.mkdir()
    db_uri = request.getfixturevalue("pg_uri") if request.param.endswith("postgres") else None
    settings = resolve_settings(home=tmp_path / "home", db_uri=db_uri, environ={})
    if request.param.startswith("sqlite"):
        online: OnlineStore = SQLiteOnlineStore(tmp_path / "online.db")
    else:
        online = RedisOnlineStore(request.getfixturevalue("redis_url"))
    with open_store(settings) as store:
        definitions = DefinitionStore(store, actor="ada")
        definitions.apply(specs(folder))
        yield Setup(folder, settings, store, definitions, online)
    online.close()


def test_a_window_loads_the_newest_row_per_driver_and_records_itself(setup: Setup) -> None:
    write_rows(setup.folder, "a", [(1, T0, 0.1), (1, T0 + HOUR, 0.2), (2, T0, 0.3)])
    write_rows(setup.folder, "b", [(3, T0 + 5 * HOUR, 0.4)])  # after the window
    seen: list[int] = []

    [done] = setup.run(end_ms=T0 + HOUR, progress=seen.append)

    assert setup.rates(1, 2, 3) == [0.2, 0.3, None]
    assert (done.view, done.mode, done.start_at, done.end_at) == (
        "driver_stats",
        "window",
        None,
        T0 + HOUR,
    )
    assert (done.rows, done.newest_event_at, done.store, done.created_by) == (
        2,
        T0 + HOUR,
        setup.online.name,
        "ada",
    )
    assert sum(seen) == 2
    row = setup.online.read("driver_stats", [(1,)])[0]
    assert row is not None and row.event_ms == T0 + HOUR and row.view_version == 1


def test_incremental_runs_continue_from_the_watermark(setup: Setup) -> None:
    write_rows(setup.folder, "a", [(1, T0, 0.1), (2, T0, 0.2)])
    [first] = setup.run(incremental=True, end_ms=T0 + HOUR)
    write_rows(setup.folder, "b", [(1, T0 + 2 * HOUR, 0.5)])

    [second] = setup.run(incremental=True, end_ms=T0 + 3 * HOUR)

    assert (first.start_at, first.rows) == (None, 2)
    # From the watermark less the TTL: driver 2's row is read again and rewritten as it was.
    assert (second.mode, second.start_at, second.end_at, second.rows) == (
        "incremental",
        T0 + HOUR - DAY,
        T0 + 3 * HOUR,
        2,
    )
    assert setup.rates(1, 2) == [0.5, 0.2]
    assert watermark(setup.store, "driver_stats", setup.online.name) == T0 + 3 * HOUR


def test_applying_the_view_again_never_resets_the_watermark(setup: Setup) -> None:
    write_rows(setup.folder, "a", [(1, T0, 0.1)])
    setup.run(incremental=True, end_ms=T0 + HOUR)

    plan = setup.definitions.apply(specs(setup.folder, description="conversion stats"))
    [after] = setup.run(incremental=True, end_ms=T0 + 2 * HOUR)

    assert [c.to_version for c in plan.changed] == [2]
    assert after.start_at == T0 + HOUR - DAY
    assert after.view_version == 2


def test_a_version_that_loads_other_rows_starts_from_the_beginning(setup: Setup) -> None:
    write_rows(setup.folder, "a", [(1, T0, 0.1)])
    setup.run(incremental=True, end_ms=T0 + 3 * DAY)
    # The source gains a column, and the view a feature reading it.
    frame = pd.read_parquet(setup.folder / "a.parquet").assign(trips=[7])
    frame.to_parquet(setup.folder / "a.parquet", index=False)
    changed = specs(setup.folder)
    changed[1]["features"].append({"name": "trips", "dtype": "int64", "default": None})
    setup.definitions.apply(changed)

    [first] = setup.run(incremental=True, end_ms=T0 + 4 * DAY)
    [second] = setup.run(incremental=True, end_ms=T0 + 5 * DAY)

    assert (first.view_version, first.start_at, first.rows) == (2, None, 1)
    row = setup.online.read("driver_stats", [(1,)])[0]
    assert row is not None and row.values == {"conv_rate": 0.1, "trips": 7}
    assert second.start_at == T0 + 4 * DAY - DAY  # from version 2's own watermark on
    assert watermark(setup.store, "driver_stats", setup.online.name, 2) == T0 + 5 * DAY


def test_a_window_with_a_start_leaves_the_watermark_alone(setup: Setup) -> None:
    write_rows(setup.folder, "a", [(1, T0, 0.1), (2, T0 + 5 * HOUR, 0.2)])
    setup.run(incremental=True, end_ms=T0 + HOUR)

    setup.run(start_ms=T0 + 4 * HOUR, end_ms=T0 + 6 * HOUR)

    assert watermark(setup.store, "driver_stats", setup.online.name) == T0 + HOUR
    assert setup.rates(1, 2) == [0.1, 0.2]


def test_late_rows_never_overwrite_newer_values(setup: Setup) -> None:
    write_rows(setup.folder, "a", [(1, T0 + 2 * HOUR, 0.9)])
    setup.run(end_ms=T0 + 3 * HOUR)
    # A row that arrives late (its event time before the stored one), loaded by a window.
    write_rows(setup.folder, "late", [(1, T0, 0.1), (2, T0, 0.2)])

    [late] = setup.run(start_ms=T0, end_ms=T0 + HOUR)

    assert setup.rates(1, 2) == [0.9, 0.2]
    assert late.rows == 1  # driver 2 only


def test_an_incremental_run_loads_late_rows_still_within_the_ttl(setup: Setup) -> None:
    write_rows(setup.folder, "a", [(1, T0, 0.1)])
    setup.run(incremental=True, end_ms=T0 + 2 * DAY)
    # Arrived after that run, with event times before its end: within the TTL of the
    # watermark (driver 2) and beyond it (driver 3, unservable from now on anyway).
    write_rows(setup.folder, "late", [(2, T0 + DAY + HOUR, 0.2), (3, T0 + HOUR, 0.3)])

    [late] = setup.run(incremental=True, end_ms=T0 + 3 * DAY)

    assert (late.start_at, late.rows) == (T0 + DAY, 1)
    assert setup.rates(1, 2, 3) == [0.1, 0.2, None]


def test_a_future_end_never_puts_the_watermark_past_now(setup: Setup) -> None:
    write_rows(setup.folder, "a", [(1, T0, 0.1)])
    [first] = setup.run(incremental=True, end_ms=T0 + 365 * DAY, clock=lambda: T0 + 2 * HOUR)
    # Arrives after that run, with an event time after it and before its (future) end.
    write_rows(setup.folder, "b", [(2, T0 + 3 * HOUR, 0.2)])

    [second] = setup.run(incremental=True, clock=lambda: T0 + 4 * HOUR)

    assert first.end_at == T0 + 2 * HOUR
    assert (second.start_at, second.rows) == (T0 + 2 * HOUR - DAY, 2)
    assert setup.rates(1, 2) == [0.1, 0.2]


def test_every_online_view_by_default_and_refusals(setup: Setup) -> None:
    write_rows(setup.folder, "a", [(1, T0, 0.1)])
    assert [done.view for done in setup.run(end_ms=T0)] == ["driver_stats"]

    with pytest.raises(InvalidInput, match="either a start or incremental"):
        setup.run(incremental=True, start_ms=T0)
    with pytest.raises(InvalidInput, match="after end"):
        setup.run(start_ms=T0 + HOUR, end_ms=T0)
    with pytest.raises(NotFound, match="no_such_view"):
        setup.run(views=["no_such_view"])
    setup.definitions.apply(specs(setup.folder, online=False))
    with pytest.raises(InvalidInput, match="offline only"):
        setup.run(views=["driver_stats"])
    assert setup.run() == []  # no online view left


def test_a_source_that_cannot_be_read_records_nothing(setup: Setup) -> None:
    (setup.folder / "broken.parquet").write_text("not parquet")

    with pytest.raises(InvalidInput, match="source of feature view 'driver_stats' cannot be read"):
        setup.run(incremental=True)

    assert watermark(setup.store, "driver_stats", setup.online.name) is None


def test_freshness_reports_the_newest_event_and_the_last_load(setup: Setup) -> None:
    [before] = freshness(setup.definitions, setup.online, setup.store, None, now_ms=T0)
    write_rows(setup.folder, "a", [(1, T0, 0.1), (2, T0 + HOUR, 0.2)])
    [done] = setup.run(end_ms=T0 + HOUR, clock=lambda: T0 + 2 * HOUR)

    [after] = freshness(
        setup.definitions, setup.online, setup.store, ["driver_stats"], now_ms=T0 + 3 * HOUR
    )

    assert (before.newest_event_at, before.last_loaded_at, before.age_seconds) == (None,) * 3
    assert (after.newest_event_at, after.last_loaded_at) == (T0 + HOUR, done.created_at)
    assert after.age_seconds == 2 * 3600
    assert after.ttl_seconds == 86_400
    assert after.store == setup.online.name


_KILLED_RUN = """
import os, signal, sys
from loopwright.config import resolve_settings
from loopwright.data.service import DatasetService
from loopwright.features.definition_store import DefinitionStore
from loopwright.features.materialize import materialize
from loopwright.features.online.sqlite import SQLiteOnlineStore
from loopwright.store.home import open_store

settings = resolve_settings(home=sys.argv[1], environ={})
online = SQLiteOnlineStore(sys.argv[2])
with open_store(settings) as store:
    def killed(rows):  # the first batch is in; the process dies before the next
        os.kill(os.getpid(), signal.SIGKILL)
    materialize(
        DefinitionStore(store), online, store, None, start_ms=None, end_ms=int(sys.argv[3]),
        incremental=True, datasets=DatasetService(store), settings=settings, actor="ada",
        progress=killed, batch_rows=10,
    )
"""


def test_a_run_killed_half_way_leaves_a_readable_store_and_is_redone(tmp_path: Path) -> None:
    folder = tmp_path / "stats"
    folder.mkdir()
    settings = resolve_settings(home=tmp_path / "home", environ={})
    online = SQLiteOnlineStore(tmp_path / "online.db")
    with open_store(settings) as store:
        definitions = DefinitionStore(store, actor="ada")
        definitions.apply(specs(folder))
        setup = Setup(folder, settings, store, definitions, online)
        write_rows(folder, "a", [(driver, T0, 0.0) for driver in range(50)])
        setup.run(incremental=True, end_ms=T0)
        write_rows(folder, "b", [(d, T0 + HOUR, d + 100.0) for d in range(50)])

        killed = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(_KILLED_RUN), str(tmp_path / "home"),
             str(tmp_path / "online.db"), str(T0 + HOUR)],
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
            capture_output=True,
            timeout=120,
            check=False,
        )  # fmt: skip

        assert killed.returncode == -9, killed.stderr.decode()
        rates = setup.rates(*range(50))  # readable: one batch new, the rest as before
        assert (rates.count(0.0), len([r for r in rates if r and r >= 100])) == (40, 10)
        assert watermark(store, "driver_stats", online.name) == T0  # the killed run: no record
        [redone] = setup.run(incremental=True, end_ms=T0 + HOUR)
        assert (redone.start_at, redone.rows) == (T0 - DAY, 50)
        assert setup.rates(*range(50)) == [d + 100.0 for d in range(50)]
    online.close()
