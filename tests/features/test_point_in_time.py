"""Point-in-time joins on DuckDB equal the brute-force oracle, on every case it has.

The anchor's eight cases (featurestore.md §2.1, A to H) by name, then seeded generated data with
a TTL, late rows in another file, created-time ties, entity rows before the first feature row,
missing entities, two views with different keys and repeated entity rows; compared exactly.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from _oracle import oracle

from loopwright.client import Client
from loopwright.config import Settings, resolve_settings
from loopwright.errors import InvalidInput
from loopwright.features._selection import Selection, ViewPick
from loopwright.features.offline import historical


def view_pick(
    name: str,
    source: dict[str, Any],
    keys: Sequence[tuple[str, str]],
    features: Sequence[tuple[str, str]],
    *,
    ttl: int | None = None,
    prefix: bool = False,
) -> ViewPick:
    columns = tuple(f"{name}__{f}" if prefix else f for f, _ in features)
    return ViewPick(
        name=name,
        version=1,
        spec={"name": name},
        join_keys=tuple(keys),
        features=tuple(features),
        columns=columns,
        defaults={},
        ttl_seconds=ttl,
        source=source,
    )


def selection(*views: ViewPick) -> Selection:
    join_keys: list[tuple[str, str]] = []
    for view in views:
        join_keys += [key for key in view.join_keys if key not in join_keys]
    return Selection(
        service=None,
        views=views,
        on_demand=(),
        feature_refs=tuple(f"{v.name}:{f}" for v in views for f, _ in v.features),
        columns=tuple(c for v in views for c in v.columns),
        join_keys=tuple(join_keys),
        request_fields=(),
    )


def file_source(path: Path | str, created: str | None = "created") -> dict[str, Any]:
    return {
        "kind": "file",
        "path": str(path),
        "timestamp_field": "event_timestamp",
        "created_timestamp_field": created,
    }


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return resolve_settings(home=tmp_path / "home")


@pytest.fixture
def client(settings: Settings) -> Iterator[Client]:
    with Client(settings) as client:
        yield client


def run(
    client: Client, sel: Selection, entities: Any, tmp_path: Path, **kwargs: Any
) -> pd.DataFrame:
    result = historical(
        sel,
        entities,
        timestamp_field=kwargs.pop("timestamp_field", "event_timestamp"),
        full_feature_names=False,
        datasets=client.datasets,
        settings=client.settings,
        workdir=tmp_path / "work",
        **kwargs,
    )
    frame = result.to_pandas()
    assert result.rows == len(frame)
    assert tuple(frame.columns) == result.columns
    return frame


def assert_same(actual: pd.DataFrame, expected: pd.DataFrame, features: Sequence[str]) -> None:
    """Equal row for row: entity columns as given, features equal or both null."""
    assert list(actual.columns) == list(expected.columns)
    assert len(actual) == len(expected)
    for column in expected.columns:
        got, want = actual[column].tolist(), expected[column].tolist()
        if column in features:
            got = [None if pd.isna(v) else v for v in got]
            want = [None if pd.isna(v) else v for v in want]
            mismatches = [
                (i, g, w)
                for i, (g, w) in enumerate(zip(got, want, strict=True))
                if not (g is None and w is None)
                and (g is None or w is None or not np.isclose(g, w, rtol=0, atol=0))
            ]
            assert not mismatches, f"{column}: {len(mismatches)} mismatches, e.g. {mismatches[:5]}"
        else:
            assert [None if pd.isna(v) else v for v in got] == [
                None if pd.isna(v) else v for v in want
            ], column


T = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
ANCHOR_CASES = {
    # name: (feature rows as (event, created, value), expected value)
    "A_feature_at_exactly_t": ([(T, T, 1.0)], 1.0),
    "B_feature_at_t_minus_ttl_inclusive": ([(T - timedelta(hours=1), T, 2.0)], 2.0),
    "C_feature_just_outside_ttl": ([(T - timedelta(hours=1, seconds=1), T, 3.0)], None),
    "D_only_feature_after_t": ([(T + timedelta(seconds=1), T, 4.0)], None),
    "E_created_tie_break": (
        [
            (T - timedelta(minutes=30), T - timedelta(minutes=29), 5.0),
            (T - timedelta(minutes=30), T - timedelta(minutes=15), 6.0),
            (T - timedelta(minutes=30), T - timedelta(minutes=20), 7.0),
        ],
        6.0,
    ),
    "F_latest_event_wins": (
        [(T - timedelta(minutes=40), T, 8.0), (T - timedelta(minutes=10), T, 9.0)],
        9.0,
    ),
    "G_created_after_t_not_filtered": (
        [(T - timedelta(minutes=5), T + timedelta(hours=2), 10.0)],
        10.0,
    ),
    "H_no_feature_rows": ([], None),
}


@pytest.mark.parametrize("case", sorted(ANCHOR_CASES))
def test_anchor_case(case: str, client: Client, tmp_path: Path) -> None:
    rows, expected = ANCHOR_CASES[case]
    features = pd.DataFrame(
        {
            "driver_id": pd.Series([1] * len(rows), dtype="int64"),
            "event_timestamp": pd.Series([r[0] for r in rows], dtype="datetime64[us, UTC]"),
            "created": pd.Series([r[1] for r in rows], dtype="datetime64[us, UTC]"),
            "value": pd.Series([r[2] for r in rows], dtype="float64"),
        }
    )
    # another entity's row at t, which must never leak into driver 1's
    features.loc[len(features)] = [2, T, T, 99.0]
    path = tmp_path / "features.parquet"
    features.to_parquet(path)
    entities = pd.DataFrame({"driver_id": [1], "event_timestamp": [T]})
    view = view_pick(
        "stats", file_source(path), [("driver_id", "int64")], [("value", "float64")], ttl=3600
    )
    frame = run(client, selection(view), entities, tmp_path)
    assert len(frame) == 1
    got = frame["value"][0]
    assert (None if pd.isna(got) else got) == expected
    want = oracle(
        entities,
        [(features, ["driver_id"], "event_timestamp", "created", 3600, ["value"])],
        "event_timestamp",
    )
    assert_same(frame, want, ["value"])


def generated(seed: int, tmp_path: Path) -> tuple[pd.DataFrame, list[Any], list[ViewPick]]:
    """Entity rows and three views (one with two keys) over seeded random data; returns the
    entity rows, the oracle's views and the picks."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2026-01-01", tz="UTC")
    span_us = 10 * 86_400 * 1_000_000

    def times(n: int, low: int = 0) -> pd.Series:
        micros = rng.integers(low, span_us, n)
        return pd.Series(start + pd.to_timedelta(micros, unit="us")).astype("datetime64[us, UTC]")

    # driver view: created ties (a tenth of rows repeat an earlier key and event time with
    # another created time and value), late rows in a second file
    n = 3000
    drivers = pd.DataFrame({"driver_id": rng.integers(0, 50, n).astype("int64")})
    drivers["event_timestamp"] = times(n, low=span_us // 10)  # nothing in the first day
    drivers["created"] = drivers["event_timestamp"] + pd.to_timedelta(
        rng.integers(0, 3_600_000_000, n), unit="us"
    )
    drivers["rate"] = rng.random(n).astype("float32")
    drivers["trips"] = rng.integers(0, 1000, n).astype("int64")
    repeat = drivers.sample(n // 10, random_state=seed).copy()
    repeat["created"] = repeat["created"] + pd.to_timedelta(
        rng.integers(-1_800_000_000, 1_800_000_000, len(repeat)), unit="us"
    )
    repeat["rate"] = rng.random(len(repeat)).astype("float32")
    repeat["trips"] = rng.integers(0, 1000, len(repeat)).astype("int64")
    drivers = pd.concat([drivers, repeat], ignore_index=True)
    late = drivers.sample(frac=0.2, random_state=seed + 1)
    folder = tmp_path / "drivers"
    folder.mkdir()
    drivers.drop(late.index).to_parquet(folder / "part-0.parquet")
    late.assign(  # older than rows already there, arriving later in another file
        event_timestamp=late["event_timestamp"] - pd.Timedelta(days=1)
    ).to_parquet(folder / "part-1.parquet")
    drivers.loc[late.index, "event_timestamp"] -= pd.Timedelta(days=1)

    # customer view: string keys, unique event times, no created column, no TTL
    m = 800
    customers = pd.DataFrame({"customer_id": [f"c{i}" for i in rng.integers(0, 40, m)]})
    customers["event_timestamp"] = (
        start + pd.to_timedelta(rng.choice(span_us, m, replace=False), unit="us")
    ).astype("datetime64[us, UTC]")
    customers["score"] = rng.normal(size=m)
    customers.to_parquet(tmp_path / "customers.parquet")

    # a view keyed by driver and customer
    k = 1500
    pairs = pd.DataFrame(
        {
            "driver_id": rng.integers(0, 50, k).astype("int64"),
            "customer_id": [f"c{i}" for i in rng.integers(0, 40, k)],
            "event_timestamp": times(k),
        }
    )
    pairs["created"] = pairs["event_timestamp"]
    pairs["rides"] = rng.integers(0, 5, k).astype("int32")
    pairs.to_csv(tmp_path / "pairs.csv", index=False)

    e = 2000
    entities = pd.DataFrame(
        {
            "driver_id": rng.integers(0, 60, e).astype("int64"),  # 50..59 have no rows
            "customer_id": [f"c{i}" for i in rng.integers(0, 45, e)],
            # naive times are UTC; some before any feature row
            "event_timestamp": times(e).dt.tz_localize(None) - pd.Timedelta(hours=12),
            "label": rng.integers(0, 2, e),
        }
    )
    entities = pd.concat([entities, entities.iloc[:50]], ignore_index=True)  # repeated rows
    entities = entities.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    entities.loc[:99, "event_timestamp"] = (
        drivers["event_timestamp"].iloc[:100].dt.tz_localize(None).to_numpy()
    )  # exactly at a feature row's time
    entities.loc[:99, "driver_id"] = drivers["driver_id"].iloc[:100].to_numpy()

    picks = [
        view_pick(
            "drivers",
            file_source(folder / "*.parquet"),
            [("driver_id", "int64")],
            [("rate", "float32"), ("trips", "int64")],
            ttl=86_400,
        ),
        view_pick(
            "customers",
            file_source(tmp_path / "customers.parquet", created=None),
            [("customer_id", "string")],
            [("score", "float64")],
        ),
        view_pick(
            "pairs",
            file_source(tmp_path / "pairs.csv"),
            [("driver_id", "int64"), ("customer_id", "string")],
            [("rides", "int32")],
            ttl=3 * 86_400,
        ),
    ]
    views = [
        (drivers, ["driver_id"], "event_timestamp", "created", 86_400, ["rate", "trips"]),
        (customers, ["customer_id"], "event_timestamp", None, None, ["score"]),
        (pairs, ["driver_id", "customer_id"], "event_timestamp", "created", 3 * 86_400, ["rides"]),
    ]
    return entities, views, picks


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_generated_data_equals_the_oracle(seed: int, client: Client, tmp_path: Path) -> None:
    entities, views, picks = generated(seed, tmp_path)
    frame = run(client, selection(*picks), entities, tmp_path)
    expected = oracle(entities, views, "event_timestamp")
    features = ["rate", "trips", "score", "rides"]
    assert_same(frame, expected, features)
    # the data has what the test claims: nulls from TTL and missing keys, and matches
    assert frame["rate"].isna().sum() > 100
    assert frame["rate"].notna().sum() > 100
    assert frame["rides"].notna().sum() > 10
    assert str(frame["rate"].dtype) == "float32"
    assert str(frame["trips"].dtype) in ("int64", "Int64", "float64")


def test_created_ties_are_broken_by_the_newest_created_time(client: Client, tmp_path: Path) -> None:
    """Many rows share (key, event time); only the newest created one may be picked."""
    rng = np.random.default_rng(7)
    n = 20_000
    event = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(
        rng.integers(0, 100, n), unit="s"
    )
    created = event + pd.to_timedelta(rng.permutation(n), unit="us")
    features = pd.DataFrame(
        {
            "driver_id": rng.integers(0, 5, n).astype("int64"),
            "event_timestamp": event.astype("datetime64[us, UTC]"),
            "created": created.astype("datetime64[us, UTC]"),
            "value": np.arange(n, dtype="float64"),
        }
    )
    path = tmp_path / "ties.parquet"
    features.to_parquet(path)
    entities = pd.DataFrame(
        {
            "driver_id": np.repeat(np.arange(5), 100),
            "event_timestamp": np.tile(
                pd.date_range("2026-01-01", periods=100, freq="s", tz="UTC"), 5
            ),
        }
    )
    view = view_pick("v", file_source(path), [("driver_id", "int64")], [("value", "float64")])
    frame = run(client, selection(view), entities, tmp_path)
    expected = oracle(
        entities,
        [(features, ["driver_id"], "event_timestamp", "created", None, ["value"])],
        "event_timestamp",
    )
    assert_same(frame, expected, ["value"])


def test_tied_rows_with_null_features_null_created_and_a_ttl_edge(
    client: Client, tmp_path: Path
) -> None:
    """The newest created row among an event time's ties is taken whole: its null feature
    stays null (no other tied row fills it in), a missing created time loses the tie, and a
    tie exactly at ``t - ttl`` is inside; a view with two join keys and no created column
    beside it keeps every entity row in its order."""
    t0 = pd.Timestamp("2026-01-01 10:00", tz="UTC")
    at = [t0, t0, t0, t0, t0 + pd.Timedelta(seconds=5), t0 + pd.Timedelta(seconds=5)]
    created = [t0, None, t0 + pd.Timedelta(seconds=2), t0 + pd.Timedelta(seconds=1), None, t0]
    features = pd.DataFrame(
        {
            "driver_id": pd.Series([1, 1, 1, 2, 2, 2], dtype="int64"),
            "event_timestamp": pd.Series(at, dtype="datetime64[us, UTC]"),
            "created": pd.Series(created, dtype="datetime64[us, UTC]"),
            "a": [1.0, 2.0, None, 4.0, 5.0, 6.0],
            "b": [10.0, 20.0, 30.0, None, 50.0, None],
        }
    )
    path = tmp_path / "tied.parquet"
    features.to_parquet(path)
    pairs = pd.DataFrame(
        {
            "driver_id": pd.Series([1, 2, 2], dtype="int64"),
            "rider_id": pd.Series([7, 7, 8], dtype="int64"),
            "event_timestamp": pd.Series([t0, t0, t0], dtype="datetime64[us, UTC]"),
            "c": [0.5, 0.25, 0.125],
        }
    )
    pairs_path = tmp_path / "pairs.parquet"
    pairs.to_parquet(pairs_path)
    entities = pd.DataFrame(
        {
            "driver_id": pd.Series([2, 1, 1, 1, 1, 3, 2], dtype="int64"),
            "rider_id": pd.Series([7, 7, 7, 8, 9, 7, 7], dtype="int64"),
            "event_timestamp": pd.Series(
                [t0, t0, t0 + pd.Timedelta(seconds=60), t0 + pd.Timedelta(seconds=61),
                 t0 - pd.Timedelta(seconds=1), t0, t0 + pd.Timedelta(seconds=5)],
                dtype="datetime64[us, UTC]",
            ),
        }
    )  # fmt: skip
    tied = view_pick(
        "tied", file_source(path), [("driver_id", "int64")], [("a", "float64"), ("b", "float64")],
        ttl=60,
    )  # fmt: skip
    paired = view_pick(
        "paired",
        file_source(pairs_path, created=None),
        [("driver_id", "int64"), ("rider_id", "int64")],
        [("c", "float64")],
    )
    frame = run(client, selection(tied, paired), entities, tmp_path)
    expected = oracle(
        entities,
        [
            (features, ["driver_id"], "event_timestamp", "created", 60, ["a", "b"]),
            (pairs, ["driver_id", "rider_id"], "event_timestamp", None, None, ["c"]),
        ],
        "event_timestamp",
    )
    assert_same(frame, expected, ["a", "b", "c"])
    # spelled out: driver 1 at t0 is its row created at +2 s (a null), still inside the TTL
    # at t0 + 60 s and outside it at + 61 s; driver 2 at t0 + 5 s is the row with a created
    # time (b null), not the one without
    nan = float("nan")
    expect = {
        "a": [4.0, nan, nan, nan, nan, nan, 6.0],
        "b": [nan, 30.0, 30.0, nan, nan, nan, nan],
        "c": [0.25, 0.5, 0.5, nan, nan, nan, 0.25],
    }
    for column, values in expect.items():
        assert frame[column].tolist() == pytest.approx(values, nan_ok=True), column


def test_entity_rows_from_a_parquet_file_keep_their_order(client: Client, tmp_path: Path) -> None:
    entities, views, picks = generated(4, tmp_path)
    path = tmp_path / "entities.parquet"
    entities.to_parquet(path, row_group_size=300)  # several row groups, read in parallel
    frame = run(client, selection(*picks), path, tmp_path)
    assert_same(
        frame, oracle(entities, views, "event_timestamp"), ["rate", "trips", "score", "rides"]
    )


def test_entity_rows_from_a_dataset_version(client: Client, tmp_path: Path) -> None:
    entities, views, picks = generated(5, tmp_path)
    version = client.datasets.add("spine", entities)
    result = historical(
        selection(*picks),
        version.ref,
        timestamp_field="event_timestamp",
        full_feature_names=False,
        datasets=client.datasets,
        settings=client.settings,
        workdir=tmp_path / "work",
    )
    assert result.sources == (version.id,)
    assert_same(
        result.to_pandas(),
        oracle(entities, views, "event_timestamp"),
        ["rate", "trips", "score", "rides"],
    )


def test_aware_entity_times_in_another_zone(client: Client, tmp_path: Path) -> None:
    features = pd.DataFrame({"k": [1], "event_timestamp": [T], "created": [T], "value": [1.5]})
    features.to_parquet(tmp_path / "f.parquet")
    entities = pd.DataFrame({"k": [1, 1], "event_timestamp": [T, T - timedelta(microseconds=1)]})
    entities["event_timestamp"] = entities["event_timestamp"].dt.tz_convert("Asia/Tokyo")
    view = view_pick(
        "v", file_source(tmp_path / "f.parquet"), [("k", "int64")], [("value", "float64")]
    )
    frame = run(client, selection(view), entities, tmp_path)
    assert frame["value"].tolist()[0] == 1.5
    assert pd.isna(frame["value"].tolist()[1])  # one microsecond earlier: no row yet
    assert str(frame["event_timestamp"].dt.tz) == "Asia/Tokyo"  # entity columns as given


def test_progress_counts_every_row(client: Client, tmp_path: Path) -> None:
    entities, _, picks = generated(6, tmp_path)
    seen: list[int] = []
    run(client, selection(*picks), entities, tmp_path, progress=seen.append)
    assert sum(seen) == len(entities)


# --- unhappy paths -------------------------------------------------------------------------


def _one_view(tmp_path: Path, **columns: Any) -> ViewPick:
    data = {"k": [1], "event_timestamp": [T], "created": [T], "value": [1.0]} | columns
    pd.DataFrame(data).to_parquet(tmp_path / "one.parquet")
    return view_pick(
        "one", file_source(tmp_path / "one.parquet"), [("k", "int64")], [("value", "float64")]
    )


def test_a_missing_join_key_is_named(client: Client, tmp_path: Path) -> None:
    view = _one_view(tmp_path)
    entities = pd.DataFrame({"driver": [1], "event_timestamp": [T]})
    with pytest.raises(InvalidInput, match="join key 'k' is missing from the entity rows"):
        run(client, selection(view), entities, tmp_path)


def test_a_missing_timestamp_column_is_named(client: Client, tmp_path: Path) -> None:
    view = _one_view(tmp_path)
    entities = pd.DataFrame({"k": [1], "ts": [T]})
    with pytest.raises(
        InvalidInput, match=r"no timestamp column 'event_timestamp'.*timestamp_field"
    ):
        run(client, selection(view), entities, tmp_path)


def test_a_join_key_of_the_wrong_type_is_refused(client: Client, tmp_path: Path) -> None:
    view = _one_view(tmp_path)
    entities = pd.DataFrame({"k": ["one"], "event_timestamp": [T]})
    with pytest.raises(InvalidInput, match=r"join key 'k' in the entity rows is VARCHAR.*int64"):
        run(client, selection(view), entities, tmp_path)


def test_a_timestamp_of_the_wrong_type_is_refused(client: Client, tmp_path: Path) -> None:
    view = _one_view(tmp_path)
    entities = pd.DataFrame({"k": [1], "event_timestamp": [1.5]})
    with pytest.raises(InvalidInput, match=r"timestamp column 'event_timestamp'.*DOUBLE"):
        run(client, selection(view), entities, tmp_path)


def test_a_source_missing_a_feature_is_named(client: Client, tmp_path: Path) -> None:
    view = _one_view(tmp_path)
    pd.DataFrame({"k": [1], "event_timestamp": [T], "created": [T]}).to_parquet(
        tmp_path / "one.parquet"
    )
    entities = pd.DataFrame({"k": [1], "event_timestamp": [T]})
    with pytest.raises(
        InvalidInput, match="feature 'value' is missing from the source of view 'one'"
    ):
        run(client, selection(view), entities, tmp_path)


def test_entity_columns_named_like_features_are_refused(client: Client, tmp_path: Path) -> None:
    view = _one_view(tmp_path)
    entities = pd.DataFrame({"k": [1], "event_timestamp": [T], "value": [0.0]})
    with pytest.raises(InvalidInput, match=r"named like features.*'value'.*full_feature_names"):
        run(client, selection(view), entities, tmp_path)


def test_a_source_without_files_is_not_found(client: Client, tmp_path: Path) -> None:
    from loopwright.errors import NotFound

    view = view_pick(
        "none",
        file_source(tmp_path / "nothing-*.parquet"),
        [("k", "int64")],
        [("value", "float64")],
    )
    entities = pd.DataFrame({"k": [1], "event_timestamp": [T]})
    with pytest.raises(NotFound, match=r"nothing-\*\.parquet' has no files"):
        run(client, selection(view), entities, tmp_path)
    assert not list((tmp_path / "work").glob("*.parquet"))  # no half-written result


ON_DEMAND_CODE = """
import pandas as pd


def adjusted(df: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame()
    out["adjusted"] = df["rate"] * df["bonus"] + df["score"].fillna(0)
    out["has_score"] = df["score"].notna()
    return out
"""


def test_on_demand_views_run_their_code_over_every_batch(client: Client, tmp_path: Path) -> None:
    """An on-demand view over a visible view, a hidden one and a request field, on more rows
    than one Arrow batch; the hidden view's features are not in the result."""
    from loopwright.features._selection import OnDemandPick

    entities, views, picks = generated(8, tmp_path)
    entities = pd.concat([entities] * 40, ignore_index=True)  # > one 64k-row batch
    entities["bonus"] = np.arange(len(entities)) % 3
    drivers, customers = picks[0], picks[1]
    hidden = ViewPick(**{**customers.__dict__, "hidden": True})
    odfv = OnDemandPick(
        name="adjusted_view",
        version=2,
        spec={"name": "adjusted_view", "function": "adjusted", "code": ON_DEMAND_CODE},
        features=(("adjusted", "float64"), ("has_score", "bool")),
        columns=("adjusted", "has_score"),
        request_fields=(("bonus", "int64"),),
        sources=("drivers", "customers"),
    )
    sel = Selection(
        service="svc@v1",
        views=(drivers, hidden),
        on_demand=(odfv,),
        feature_refs=(
            "drivers:rate",
            "drivers:trips",
            "adjusted_view:adjusted",
            "adjusted_view:has_score",
        ),
        columns=("rate", "adjusted", "trips", "has_score"),
        join_keys=(("driver_id", "int64"), ("customer_id", "string")),
        request_fields=(("bonus", "int64"),),
    )
    frame = run(client, sel, entities, tmp_path)
    assert list(frame.columns) == [*entities.columns, "rate", "adjusted", "trips", "has_score"]
    expected = oracle(entities, views[:2], "event_timestamp")
    rate = expected["rate"].astype("float64")
    score = expected["score"].astype("float64")
    want = rate.astype("float32").astype("float64") * entities["bonus"] + score.fillna(0)
    got = frame["adjusted"].astype("float64")
    assert ((got - want).abs().fillna(0) < 1e-9).all()
    assert (got.isna() == want.isna()).all()
    assert frame["has_score"].tolist() == score.notna().tolist()


def test_on_demand_views_need_their_request_fields(client: Client, tmp_path: Path) -> None:
    from loopwright.features._selection import OnDemandPick

    view = _one_view(tmp_path)
    odfv = OnDemandPick(
        "adjusted_view",
        1,
        {"name": "adjusted_view", "function": "adjusted", "code": ON_DEMAND_CODE},
        (("adjusted", "float64"),),
        ("adjusted",),
        (("bonus", "int64"),),
        ("one",),
    )
    sel = Selection(
        None,
        (view,),
        (odfv,),
        ("adjusted_view:adjusted",),
        ("value", "adjusted"),
        (("k", "int64"),),
        (("bonus", "int64"),),
    )
    entities = pd.DataFrame({"k": [1], "event_timestamp": [T]})
    with pytest.raises(InvalidInput, match="needs request field 'bonus'"):
        run(client, sel, entities, tmp_path)


def test_null_times_and_keys_never_match(client: Client, tmp_path: Path) -> None:
    """A feature row without an event time or key, and an entity row without a time, match
    nothing (a null inside the join's ordering key would otherwise sort somewhere)."""
    features = pd.DataFrame(
        {
            "k": pd.array([1, 1, None, 2], dtype="Int64"),
            "event_timestamp": [T - timedelta(hours=1), None, T, T],
            "created": [T, T, T, None],
            "value": [1.0, 2.0, 3.0, 4.0],
        }
    )
    features["event_timestamp"] = pd.to_datetime(features["event_timestamp"], utc=True)
    features["created"] = pd.to_datetime(features["created"], utc=True)
    features.to_parquet(tmp_path / "nulls.parquet")
    entities = pd.DataFrame(
        {
            "k": pd.array([1, 1, None, 2, 2], dtype="Int64"),
            "event_timestamp": pd.to_datetime([T, None, T, T, T - timedelta(days=1)], utc=True),
        }
    )
    view = view_pick(
        "v", file_source(tmp_path / "nulls.parquet"), [("k", "int64")], [("value", "float64")]
    )
    frame = run(client, selection(view), entities, tmp_path)
    values = [None if pd.isna(v) else v for v in frame["value"]]
    assert values == [1.0, None, None, 4.0, None]
    expected = oracle(
        entities,
        [(features, ["k"], "event_timestamp", "created", None, ["value"])],
        "event_timestamp",
    )
    assert_same(frame, expected, ["value"])


def test_entity_rows_from_a_dataset_of_several_files(client: Client, tmp_path: Path) -> None:
    """Rows come back file by file (in path order), each file's rows in order."""
    entities, views, picks = generated(9, tmp_path)
    folder = tmp_path / "spine"
    folder.mkdir()
    entities.iloc[:700].to_parquet(folder / "part-0.parquet", row_group_size=100)
    entities.iloc[700:].to_parquet(folder / "part-1.parquet", row_group_size=100)
    version = client.datasets.add("spine", str(folder))
    frame = run(client, selection(*picks), version.ref, tmp_path)
    expected = oracle(entities, views, "event_timestamp")
    assert_same(frame, expected, ["rate", "trips", "score", "rides"])


def test_entity_rows_from_a_csv_file(client: Client, tmp_path: Path) -> None:
    entities, views, picks = generated(10, tmp_path)
    path = tmp_path / "entities.csv"
    entities.assign(
        event_timestamp=entities["event_timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S.%f")
    ).to_csv(path, index=False)
    frame = run(client, selection(*picks), path, tmp_path)
    expected = oracle(entities, views, "event_timestamp")
    assert_same(
        frame.drop(columns="event_timestamp"),
        expected.drop(columns="event_timestamp"),
        ["rate", "trips", "score", "rides"],
    )


@pytest.mark.parametrize("aware", [True, False])
def test_nanosecond_times_compare_at_microseconds(
    aware: bool, client: Client, tmp_path: Path
) -> None:
    """Times finer than a microsecond are cut to it (floor, before 1970 too), then compared:
    a feature row later than the entity row by less than a microsecond still matches."""
    base = [10**15, 10**15 + 999, 10**15 + 1400, -(10**9) - 600]
    later = [10**15 + 900, 10**15 + 1899, 10**15 + 1600, -(10**9) - 400]  # rounding: 3, 4 miss
    features = pd.DataFrame(
        {
            "k": [1, 2, 3, 4],
            "event_timestamp": pd.to_datetime(later, unit="ns", utc=aware),
            "value": [1.0, 2.0, 3.0, 4.0],
        }
    )
    entities = pd.DataFrame(
        {"k": [1, 2, 3, 4], "event_timestamp": pd.to_datetime(base, unit="ns", utc=aware)}
    )
    assert str(features["event_timestamp"].dtype).startswith("datetime64[ns")
    features.to_parquet(tmp_path / "ns.parquet")
    view = view_pick(
        "v", file_source(tmp_path / "ns.parquet", created=None), [("k", "int64")],
        [("value", "float64")],
    )  # fmt: skip
    frame = run(client, selection(view), entities, tmp_path)
    expected = oracle(
        entities, [(features, ["k"], "event_timestamp", None, None, ["value"])], "event_timestamp"
    )
    assert_same(frame, expected, ["value"])
    assert [None if pd.isna(v) else v for v in frame["value"]] == [1.0, None, 3.0, 4.0]


def test_unparsable_text_times_are_invalid_input(client: Client, tmp_path: Path) -> None:
    pd.DataFrame(
        {"k": [1], "event_timestamp": ["yesterday"], "created": [T], "value": [1.0]}
    ).to_parquet(tmp_path / "text.parquet")
    view = view_pick(
        "v", file_source(tmp_path / "text.parquet"), [("k", "int64")], [("value", "float64")]
    )
    entities = pd.DataFrame({"k": [1], "event_timestamp": [T]})
    with pytest.raises(InvalidInput, match=r"cannot build the training set.*yesterday"):
        run(client, selection(view), entities, tmp_path)


def test_a_missing_entity_file_is_not_found(client: Client, tmp_path: Path) -> None:
    from loopwright.errors import NotFound

    view = _one_view(tmp_path)
    with pytest.raises(NotFound, match=r"entity rows file .*nothing\.parquet' does not exist"):
        run(client, selection(view), tmp_path / "nothing.parquet", tmp_path)
