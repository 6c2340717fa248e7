"""Push (streaming updates) into the online store on SQLite and Redis: accepted shapes, type
checks, late and tied rows, and the record it leaves."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
import sqlalchemy as sa
from _online_views import HOUR, NOW, Online, city_days, driver_stats, online

from loopwright.client import Client
from loopwright.errors import InvalidInput, NotFound
from loopwright.features.definition_store import DefinitionStore
from loopwright.features.definitions import to_specs
from loopwright.features.freshness import recorded
from loopwright.features.materialize import watermark
from loopwright.features.online.sqlite import SQLiteOnlineStore
from loopwright.features.push import push, push_record_id
from loopwright.store import schema as t
from loopwright.store.home import Store

__all__ = ["online"]  # the fixture, imported for the tests below


def rows(**overrides: Any) -> dict[str, list[Any]]:
    """Two drivers' rows for ``driver_stats`` as columns, with ``overrides``."""
    columns: dict[str, list[Any]] = {
        "driver_id": [1, 2],
        "event_timestamp": [NOW - HOUR, NOW],
        "conv_rate": [0.5, 0.7],
        "trips": [10, 20],
        "last_seen": [None, None],
        "badge": [None, None],
    }
    columns.update(overrides)
    return columns


def rates(online: Online, *drivers: int) -> list[float | None]:
    stored = online.online.read("driver_stats", [(driver,) for driver in drivers])
    return [row and row.values["conv_rate"] for row in stored]


def test_a_push_writes_rows_and_records_itself(online: Online) -> None:
    done = online.push("driver_stats", rows())

    assert rates(online, 1, 2, 3) == [0.5, 0.7, None]
    assert (done.mode, done.rows, done.newest_event_at, done.start_at, done.end_at) == (
        "push",
        2,
        NOW,
        None,
        None,
    )
    assert (done.view, done.view_version, done.created_by, done.created_at) == (
        "driver_stats",
        1,
        "ada",
        NOW,
    )
    assert online.online.newest_event_ms("driver_stats") == NOW
    # A push is no materialization of a window: the watermark stays where it was.
    assert watermark(online.store, "driver_stats", online.online.name) is None


@pytest.mark.parametrize("shape", ["columns", "rows", "frame", "arrow", "batch"])
def test_every_accepted_shape(online: Online, shape: str) -> None:
    columns = rows(event_timestamp=[datetime(2026, 1, 1, tzinfo=UTC)] * 2, last_seen=[1, 2])
    columns["last_seen"] = [datetime(2025, 1, 1, tzinfo=UTC)] * 2
    frame = pd.DataFrame(columns)
    given: Any = {
        "columns": columns,
        "rows": frame.to_dict("records"),
        "frame": frame,
        "arrow": pa.Table.from_pandas(frame),
        "batch": pa.RecordBatch.from_pandas(frame),
    }[shape]

    assert online.push("driver_stats", given).rows == 2
    assert rates(online, 1, 2) == [0.5, 0.7]


def test_older_rows_are_skipped_and_created_time_breaks_ties(online: Online) -> None:
    online.push("driver_stats", rows(created=[5, 5]))

    late = online.push(
        "driver_stats",
        rows(event_timestamp=[NOW - 2 * HOUR, NOW], created=[9, 4], conv_rate=[0.0, 0.0]),
    )
    tie = online.push("driver_stats", rows(event_timestamp=[NOW - HOUR, NOW], created=[6, None]))

    assert late.rows == 0
    assert tie.rows == 1  # driver 1: same event, newer created
    assert rates(online, 1, 2) == [0.5, 0.7]
    later = online.push("driver_stats", rows(event_timestamp=[NOW, NOW + 1], conv_rate=[0.1, 0.2]))
    assert later.rows == 2
    assert rates(online, 1, 2) == [0.1, 0.2]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"trips": ["10", "20"]}, "'trips' pushed to 'driver_stats' is string, not int64"),
        ({"trips": [1.5, 2.0]}, "'trips' pushed to 'driver_stats' is double, not int64"),
        ({"conv_rate": ["0.5", "0.7"]}, "'conv_rate' .* is string, not float64"),
        ({"driver_id": ["1", "2"]}, "'driver_id' .* is string, not int64"),
        ({"driver_id": [1, None]}, "'driver_id' .* has 1 null value"),
        ({"event_timestamp": [NOW, None]}, "'event_timestamp' .* has 1 null value"),
        ({"event_timestamp": ["today", "now"]}, "'event_timestamp' .* is string"),
        ({"badge": ["text", "text"]}, "'badge' .* is string, not bytes"),
        ({"last_seen": ["2025-01-01", None]}, "'last_seen' .* is string, not timestamp"),
    ],
)
def test_values_of_another_type_are_refused(
    online: Online, overrides: dict[str, list[Any]], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        online.push("driver_stats", rows(**overrides))
    assert rates(online, 1, 2) == [None, None]  # nothing written


def test_missing_columns_and_other_refusals(online: Online) -> None:
    partial = rows()
    del partial["trips"], partial["event_timestamp"]

    with pytest.raises(InvalidInput, match="lack 'event_timestamp', 'trips'"):
        online.push("driver_stats", partial)
    with pytest.raises(InvalidInput, match="must be a DataFrame"):
        online.push("driver_stats", "driver_id=1")
    with pytest.raises(InvalidInput, match="cannot be read as a table"):
        online.push("driver_stats", {"driver_id": [1, 2], "conv_rate": [0.5]})
    with pytest.raises(InvalidInput, match="offline only"):
        online.push("archive", {"driver_id": [1], "event_timestamp": [NOW], "score": [1.0]})
    with pytest.raises(NotFound, match="nope"):
        online.push("nope", rows())


def test_extra_columns_are_ignored_and_int32_keys_checked(online: Online) -> None:
    city = {"city": ["oslo"], "day": [3], "event_timestamp": [NOW], "demand": [1.25]}

    online.push("city_days", {**city, "label": ["x"], "note": ["ignored"]})
    with pytest.raises(InvalidInput, match=r"'day' .* does not fit int32"):
        online.push("city_days", {**city, "label": ["x"], "day": [2**40]})

    [row] = online.online.read("city_days", [("oslo", 3)])
    assert row is not None and row.values == {"demand": 1.25, "label": "x"}


def _at(ms: int) -> Callable[[], int]:
    return lambda: ms


def _push_rows(store: Store) -> list[dict[str, Any]]:
    table = t.feature_materializations
    with store.db.read() as conn:
        found = conn.execute(sa.select(table).where(table.c.mode == "push")).mappings().all()
    return [dict(row) for row in found]


def test_pushes_keep_one_record_per_view_and_store(
    definitions: DefinitionStore, store: Store, tmp_path: Path
) -> None:
    # Streaming pushes would add a row each (Feast #4440): one row sums them instead.
    definitions.apply(to_specs([driver_stats, city_days]))
    online = SQLiteOnlineStore(tmp_path / "online.db")
    pushed = [
        (NOW, rows(driver_id=[1, 2], event_timestamp=[NOW - HOUR, NOW]), "ada"),
        (NOW + 5, rows(driver_id=[3, 4], event_timestamp=[NOW - 2 * HOUR] * 2), "bob"),
        (NOW + 9, rows(driver_id=[1, 5], event_timestamp=[NOW - 3 * HOUR] * 2), "cy"),
    ]
    done = [
        push(definitions, online, store, "driver_stats", given, actor=actor, clock=_at(at))
        for at, given, actor in pushed
    ]
    city = {"city": ["oslo"], "day": [1], "event_timestamp": [NOW], "demand": [1.0], "label": ["a"]}
    push(definitions, online, store, "city_days", city, actor="ada", clock=_at(1))

    assert [(d.rows, d.newest_event_at) for d in done] == [
        (2, NOW),
        (2, NOW - 2 * HOUR),
        (1, NOW - 3 * HOUR),
    ]
    by_view = {row["view"]: row for row in _push_rows(store)}
    assert sorted(by_view) == ["city_days", "driver_stats"]
    row = by_view["driver_stats"]
    assert row["id"] == push_record_id("driver_stats", online.name) == done[0].id
    assert (row["rows"], row["newest_event_at"], row["created_at"], row["created_by"]) == (
        5, NOW, NOW + 9, "cy",
    )  # fmt: skip
    (fresh,) = recorded(store.db, now_ms=NOW + HOUR, views=["driver_stats"])
    assert (fresh.newest_event_at, fresh.last_loaded_at) == (NOW, NOW + 9)
    online.close()


def test_the_listing_shows_the_push_record_of_the_latest_push(client: Client) -> None:
    client.features.apply(to_specs([driver_stats]))
    first = client.features.push("driver_stats", rows())
    second = client.features.push("driver_stats", rows(driver_id=[3, 4]))

    (listed,) = client.features.materializations("driver_stats")
    assert (listed.id, listed.mode, listed.rows) == (first.id, "push", 4)
    assert (listed.newest_event_at, listed.created_at) == (NOW, second.created_at)


def test_concurrent_pushes_merge_into_one_record(
    definitions: DefinitionStore, store: Store, tmp_path: Path
) -> None:
    definitions.apply(to_specs([driver_stats]))
    online = SQLiteOnlineStore(tmp_path / "online.db")

    def pushes(worker: int) -> None:
        for n in range(10):
            driver = worker * 100 + n
            given = rows(driver_id=[driver], event_timestamp=[NOW - driver], conv_rate=[0.5],
                         trips=[1], last_seen=[None], badge=[None])  # fmt: skip
            push(definitions, online, store, "driver_stats", given, actor=f"w{worker}",
                 clock=lambda: NOW)  # fmt: skip

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(pushes, range(4)))

    (row,) = _push_rows(store)
    assert (row["rows"], row["newest_event_at"]) == (40, NOW)
    online.close()


@pytest.mark.parametrize("unit", [1_000_000, 1_000])  # nanoseconds, microseconds
def test_integer_times_in_another_unit_are_refused(online: Online, unit: int) -> None:
    wrong = rows(event_timestamp=[NOW * unit, NOW * unit])
    with pytest.raises(InvalidInput, match=r"outside the years 1-9999.*divide nanoseconds"):
        online.push("driver_stats", wrong)
    with pytest.raises(InvalidInput, match=r"'created' .* outside the years 1-9999"):
        online.push("driver_stats", rows(event_timestamp=[NOW, NOW], created=[NOW * unit, 1]))
    assert rates(online, 1, 2) == [None, None]  # nothing written
    assert online.push("driver_stats", rows(event_timestamp=[NOW, NOW])).rows == 2
