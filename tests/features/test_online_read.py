"""Online lookups (online_read.lookup) on SQLite and Redis: values, statuses and event times,
TTL at read, missing keys, key types, on-demand features, composite keys."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from _online_views import HOUR, NOW, Online, online

from loopwright.errors import InvalidInput, NotFound
from loopwright.features.online_read import lookup

__all__ = ["online"]  # the fixture, imported for the tests below

SEEN = datetime(2025, 12, 31, 12, 30, 15, 250000, tzinfo=UTC)


def _load(online: Online) -> None:
    online.push(
        "driver_stats",
        [
            {"driver_id": 1, "event_timestamp": NOW - HOUR, "created": None, "conv_rate": 0.5,
             "trips": 10, "last_seen": SEEN, "badge": b"\x00gold"},
            # Three hours old: past the view's two-hour TTL.
            {"driver_id": 2, "event_timestamp": NOW - 3 * HOUR, "created": None, "conv_rate": 0.7,
             "trips": 20, "last_seen": SEEN, "badge": None},
        ],
    )  # fmt: skip


def test_values_statuses_and_event_times_in_the_order_asked(online: Online) -> None:
    _load(online)
    selection = online.definitions.resolve(["driver_stats:conv_rate", "driver_stats:trips"])

    found = lookup(selection, online.online, {"driver_id": [2, 3, 1]}, now_ms=NOW)

    assert found.values == {
        "driver_id": [2, 3, 1],
        "conv_rate": [None, None, 0.5],
        "trips": [None, None, 10],
    }
    assert found.statuses == {
        "conv_rate": ["outside_ttl", "not_found", "present"],
        "trips": ["outside_ttl", "not_found", "present"],
    }
    assert found.event_at == {"driver_stats": [None, None, NOW - HOUR]}


def test_the_ttl_is_applied_at_read_against_now(online: Online) -> None:
    _load(online)
    selection = online.definitions.resolve(["driver_stats:conv_rate"])

    earlier = lookup(selection, online.online, {"driver_id": [2]}, now_ms=NOW - 2 * HOUR)
    later = lookup(selection, online.online, {"driver_id": [1]}, now_ms=NOW + HOUR + 1)

    assert (earlier.values["conv_rate"], earlier.statuses["conv_rate"]) == ([0.7], ["present"])
    assert (later.values["conv_rate"], later.statuses["conv_rate"]) == ([None], ["outside_ttl"])


def test_rows_columns_and_frames_are_all_entity_rows(online: Online) -> None:
    _load(online)
    selection = online.definitions.resolve(["driver_stats:conv_rate"])
    shapes = [
        [{"driver_id": 1}, {"driver_id": 3}],
        {"driver_id": [1, 3]},
        {"driver_id": np.array([1, 3], dtype=np.int64)},
        pd.DataFrame({"driver_id": [1, 3]}),
    ]

    answers = [lookup(selection, online.online, rows, now_ms=NOW).values for rows in shapes]

    assert answers == [{"driver_id": [1, 3], "conv_rate": [0.5, None]}] * 4
    one = lookup(selection, online.online, {"driver_id": 1}, now_ms=NOW)  # type: ignore[dict-item]
    assert one.values == {"driver_id": [1], "conv_rate": [0.5]}
    empty = lookup(selection, online.online, {"driver_id": []}, now_ms=NOW)
    assert empty.values == {"driver_id": [], "conv_rate": []}


def test_timestamps_and_bytes_come_back_as_they_went_in(online: Online) -> None:
    _load(online)
    selection = online.definitions.resolve(["driver_stats:*"], full_feature_names=True)

    found = lookup(selection, online.online, {"driver_id": [1, 2]}, now_ms=NOW - 2 * HOUR)

    assert found.values["driver_stats__last_seen"] == [SEEN, SEEN]
    assert found.values["driver_stats__badge"] == [b"\x00gold", None]
    assert found.statuses["driver_stats__badge"] == ["present", "present"]  # a stored null


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ({"customer": [1]}, "^the entity rows lack 'driver_id'.*given: customer"),
        ([{"driver_id": 1}, {"id": 2}], "^entity row 1 lacks 'driver_id'"),
        (
            {"driver_id": ["1"]},
            "'driver_id' is int64 but entity row 0 has str '1'; pass an int64 value",
        ),
        ({"driver_id": [1, 2.0]}, "entity row 1 has float 2.0"),
        ({"driver_id": [None]}, "has NoneType None"),
        ({"driver_id": [True]}, "has bool True"),
        ("driver_id=1", "must be columns"),
        ([1, 2], "entity row 0 is of type int, not a mapping"),
    ],
)
def test_missing_or_mistyped_join_keys_are_refused(
    online: Online, rows: object, message: str
) -> None:
    selection = online.definitions.resolve(["driver_stats:conv_rate"])
    with pytest.raises(InvalidInput, match=message):
        lookup(selection, online.online, rows, now_ms=NOW)  # type: ignore[arg-type]


def test_composite_keys_and_columns_of_different_lengths(online: Online) -> None:
    online.push(
        "city_days",
        {"city": ["oslo", "oslo"], "day": [1, 2], "event_timestamp": [NOW, NOW],
         "demand": [1.5, 2.5], "label": ["a", "b"]},
    )  # fmt: skip
    selection = online.definitions.resolve(["city_days:demand"])

    found = lookup(
        selection, online.online, {"city": ["oslo", "oslo", "rome"], "day": [2, 1, 1]}, now_ms=NOW
    )

    assert found.values == {
        "city": ["oslo", "oslo", "rome"],
        "day": [2, 1, 1],
        "demand": [2.5, 1.5, None],
    }
    with pytest.raises(InvalidInput, match="differ in length"):
        lookup(selection, online.online, {"city": ["oslo"], "day": [1, 2]}, now_ms=NOW)


def test_a_service_with_an_on_demand_view_computes_it_from_the_request(online: Online) -> None:
    _load(online)
    selection = online.definitions.resolve("driver_model")

    found = lookup(
        selection, online.online, {"driver_id": [1, 3], "val_to_add": [1.0, 2.0]}, now_ms=NOW
    )

    assert found.values == {
        "driver_id": [1, 3],
        "conv_rate": [0.5, None],
        "conv_plus": [1.5, None],
    }
    assert found.statuses["conv_plus"] == ["present", "not_found"]
    assert list(found.event_at) == ["driver_stats"]
    with pytest.raises(InvalidInput, match="lack 'val_to_add'"):
        lookup(selection, online.online, {"driver_id": [1]}, now_ms=NOW)


def test_unknown_views_and_features_are_refused_by_the_resolution(online: Online) -> None:
    with pytest.raises(NotFound, match="nope"):
        online.definitions.resolve(["nope:conv_rate"])
    with pytest.raises(InvalidInput, match="no_such_feature"):
        online.definitions.resolve(["driver_stats:no_such_feature"])


def test_a_row_written_before_a_feature_existed_reads_it_as_not_found(online: Online) -> None:
    _load(online)
    # Driver 7's row as an older version of the view wrote it: no 'trips' in it.
    online.online.write("driver_stats", [(7,)], [NOW - HOUR], [None], [{"conv_rate": 0.9}], 1)
    selection = online.definitions.resolve(["driver_stats:conv_rate", "driver_stats:trips"])

    found = lookup(selection, online.online, {"driver_id": [7, 1]}, now_ms=NOW)

    assert found.values == {"driver_id": [7, 1], "conv_rate": [0.9, 0.5], "trips": [None, 10]}
    assert found.statuses == {
        "conv_rate": ["present", "present"],
        "trips": ["not_found", "present"],
    }
