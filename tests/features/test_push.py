"""Push (streaming updates) into the online store on SQLite and Redis: accepted shapes, type
checks, late and tied rows, and the record it leaves."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from _online_views import HOUR, NOW, Online, online

from loopwright.errors import InvalidInput, NotFound
from loopwright.features.materialize import watermark

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
