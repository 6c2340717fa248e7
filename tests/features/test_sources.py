"""Feature view sources: files and globs, S3 (moto), dataset versions (local blobs and a remote
blob store), SQL; and ``latest_rows``, the newest row per key that materialization reads."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from _oracle import oracle

from loopwright.client import Client
from loopwright.config import resolve_settings
from loopwright.errors import InvalidInput, NotFound
from loopwright.features._selection import Selection, ViewPick
from loopwright.features._sources import connect, latest_rows, register_source
from loopwright.features.offline import historical

T = datetime(2026, 2, 1, tzinfo=UTC)
KEYS = (("driver_id", "int64"),)
FEATURES = (("rate", "float64"), ("trips", "int32"))


def rows() -> pd.DataFrame:
    """Two drivers, each with rows over three hours, a created tie on driver 1's newest."""
    frame = pd.DataFrame(
        {
            "driver_id": [1, 1, 1, 1, 2, 2],
            "event_timestamp": [
                T,
                T + timedelta(hours=1),
                T + timedelta(hours=2),
                T + timedelta(hours=2),
                T,
                T + timedelta(hours=3),
            ],
            "created": [T, T, T + timedelta(hours=3), T + timedelta(hours=4), T, T],
            "rate": [0.1, 0.2, 0.3, 0.35, 0.4, 0.5],
            "trips": [1, 2, 3, 4, 5, 6],
        }
    )
    frame["event_timestamp"] = frame["event_timestamp"].astype("datetime64[us, UTC]")
    frame["created"] = frame["created"].astype("datetime64[us, UTC]")
    return frame


def pick(source: dict[str, Any]) -> ViewPick:
    return ViewPick(
        name="drivers",
        version=1,
        spec={"name": "drivers"},
        join_keys=KEYS,
        features=FEATURES,
        columns=("rate", "trips"),
        defaults={},
        ttl_seconds=None,
        source={"timestamp_field": "event_timestamp", "created_timestamp_field": "created"}
        | source,
    )


def entities() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "driver_id": [1, 2, 1, 3],
            "event_timestamp": [T + timedelta(hours=h) for h in (2, 2, 0.5, 9)],
        }
    )


def check_join(client: Client, view: ViewPick, tmp_path: Path) -> tuple[str, ...]:
    """Join ``entities()`` against the view; equal to the oracle over ``rows()``."""
    selection = Selection(
        None, (view,), (), ("drivers:rate", "drivers:trips"), ("rate", "trips"), KEYS, ()
    )
    result = historical(
        selection,
        entities(),
        timestamp_field="event_timestamp",
        full_feature_names=False,
        datasets=client.datasets,
        settings=client.settings,
        workdir=tmp_path / "work",
    )
    # only the result is left: spill files and downloaded sources are removed
    assert [path.name for path in (tmp_path / "work").iterdir()] == [result.path.name]
    frame = result.to_pandas()
    expected = oracle(
        entities(),
        [(rows(), ["driver_id"], "event_timestamp", "created", None, ["rate", "trips"])],
        "event_timestamp",
    )
    assert frame["rate"].tolist()[:3] == expected["rate"].tolist()[:3] == [0.35, 0.4, 0.1]
    assert pd.isna(frame["rate"].tolist()[3])
    assert str(frame["trips"].dtype) in ("int32", "Int32", "float64")
    return result.sources


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    with Client(resolve_settings(home=tmp_path / "home")) as client:
        yield client


def test_a_csv_glob(client: Client, tmp_path: Path) -> None:
    frame = rows()
    (tmp_path / "csv").mkdir()
    frame.iloc[:3].to_csv(tmp_path / "csv" / "a.csv", index=False)
    frame.iloc[3:].to_csv(tmp_path / "csv" / "b.csv", index=False)
    assert (
        check_join(client, pick({"kind": "file", "path": str(tmp_path / "csv/*.csv")}), tmp_path)
        == ()
    )


def test_a_relative_path_starts_at_the_working_directory(client: Client, tmp_path: Path) -> None:
    rows().to_parquet("drivers.parquet")  # the test runs in its own working directory
    check_join(client, pick({"kind": "file", "path": "drivers.parquet"}), tmp_path / "other")


def test_a_dataset_version_on_local_blobs(client: Client, tmp_path: Path) -> None:
    version = client.datasets.add("driver_stats", rows())
    sources = check_join(client, pick({"kind": "dataset", "dataset": "driver_stats@v1"}), tmp_path)
    assert sources == (version.id,)


def test_a_dataset_version_of_small_packed_files(client: Client, tmp_path: Path) -> None:
    """A folder of small files is stored in one pack file, not as loose blobs: copied out."""
    folder = tmp_path / "small"
    folder.mkdir()
    rows().iloc[:3].to_csv(folder / "a.csv", index=False)
    rows().iloc[3:].to_csv(folder / "b.csv", index=False)
    version = client.datasets.add("driver_csv", str(folder))
    source = {"kind": "dataset", "dataset": version.ref}
    assert check_join(client, pick(source), tmp_path) == (version.id,)


def test_sqlite_table_and_query(client: Client, tmp_path: Path) -> None:
    db = tmp_path / "features.db"
    frame = rows()
    # SQLite keeps times as text: read back and parsed as UTC
    frame["event_timestamp"] = frame["event_timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S.%f+00:00")
    frame["created"] = frame["created"].dt.strftime("%Y-%m-%d %H:%M:%S")
    with sqlite3.connect(db) as conn:
        frame.to_sql("driver_stats", conn, index=False)
    uri = f"sqlite:///{db}"
    check_join(client, pick({"kind": "sql", "uri": uri, "table": "driver_stats"}), tmp_path)
    query = "SELECT * FROM driver_stats WHERE driver_id IN (1, 2)"
    check_join(client, pick({"kind": "sql", "uri": uri, "query": query}), tmp_path / "q")


def test_sql_errors_name_the_view(client: Client, tmp_path: Path) -> None:
    con = connect(client.settings, tmp_path / "spill")
    uri = f"sqlite:///{tmp_path / 'empty.db'}"
    with pytest.raises(InvalidInput, match="cannot read the SQL source of view 'v'"):
        register_source(
            con,
            {"kind": "sql", "uri": uri, "table": "missing"},
            name="v",
            datasets=client.datasets,
            settings=client.settings,
        )
    with pytest.raises(InvalidInput, match="either a table or a query"):
        register_source(
            con,
            {"kind": "sql", "uri": uri},
            name="v",
            datasets=client.datasets,
            settings=client.settings,
        )
    with pytest.raises(InvalidInput, match="source kind 'kafka'"):
        register_source(
            con, {"kind": "kafka"}, name="v", datasets=client.datasets, settings=client.settings
        )
    con.close()


def test_a_feature_of_the_wrong_type_is_refused(client: Client, tmp_path: Path) -> None:
    frame = rows()
    frame["rate"] = frame["rate"].astype(str)
    frame.to_parquet(tmp_path / "bad.parquet")
    view = pick({"kind": "file", "path": str(tmp_path / "bad.parquet")})
    with pytest.raises(
        InvalidInput, match="feature 'rate' in the source of view 'drivers' is VARCHAR"
    ):
        check_join(client, view, tmp_path)


def test_a_file_of_unknown_format_is_refused(client: Client, tmp_path: Path) -> None:
    (tmp_path / "rows.txt").write_text("x")
    view = pick({"kind": "file", "path": str(tmp_path / "rows.txt")})
    with pytest.raises(InvalidInput, match=r"cannot tell the format.*parquet or \.csv"):
        check_join(client, view, tmp_path)


def test_latest_rows_newest_per_key_in_the_window(client: Client, tmp_path: Path) -> None:
    rows().to_parquet(tmp_path / "d.parquet")
    view = pick({"kind": "file", "path": str(tmp_path / "d.parquet")})
    ms = int(T.timestamp() * 1000)

    def latest(start: int | None, end: int | None) -> list[dict[str, Any]]:
        batches = list(
            latest_rows(
                view.source,
                view,
                start_ms=start,
                end_ms=end,
                datasets=client.datasets,
                settings=client.settings,
            )
        )
        table = pa.Table.from_batches(batches) if batches else None
        found = table.to_pylist() if table is not None else []
        return sorted(found, key=lambda row: row["driver_id"])

    everything = latest(None, None)
    assert [(r["driver_id"], r["rate"], r["trips"]) for r in everything] == [
        (1, 0.35, 4),
        (2, 0.5, 6),
    ]
    assert everything[0]["__event_ms"] == ms + 2 * 3_600_000
    assert everything[0]["__created_ms"] == ms + 4 * 3_600_000
    # an inclusive window that ends at driver 1's second row and starts after driver 2's first
    window = latest(ms + 1, ms + 3_600_000)
    assert [(r["driver_id"], r["rate"]) for r in window] == [(1, 0.2)]
    assert latest(ms + 10 * 3_600_000, None) == []


def test_latest_rows_without_a_created_column(client: Client, tmp_path: Path) -> None:
    rows().drop(columns="created").iloc[[0, 1, 4]].to_parquet(tmp_path / "d.parquet")
    view = pick(
        {"kind": "file", "path": str(tmp_path / "d.parquet"), "created_timestamp_field": None}
    )
    batches = list(
        latest_rows(
            view.source,
            view,
            start_ms=None,
            end_ms=None,
            datasets=client.datasets,
            settings=client.settings,
        )
    )
    found = sorted(pa.Table.from_batches(batches).to_pylist(), key=lambda r: r["driver_id"])
    assert [(r["driver_id"], r["rate"], r["__created_ms"]) for r in found] == [
        (1, 0.2, None),
        (2, 0.4, None),
    ]


# --- S3 (moto in CI: LOOPWRIGHT_TEST_S3_ENDPOINT) -----------------------------------------


@pytest.fixture
def s3_folder(s3_blob_uri: str) -> str:
    """``s3://bucket/features`` with two Parquet files of ``rows()`` and an unrelated file."""
    import boto3

    bucket = s3_blob_uri.removeprefix("s3://").split("/")[0]
    s3 = boto3.client("s3")
    frame = rows()
    for name, part in (("part-0.parquet", frame.iloc[:3]), ("part-1.parquet", frame.iloc[3:])):
        body = part.to_parquet()
        s3.put_object(Bucket=bucket, Key=f"features/{name}", Body=body)
    s3.put_object(Bucket=bucket, Key="features/README.md", Body=b"not data")
    return f"s3://{bucket}/features"


@pytest.mark.s3
def test_an_s3_glob(client: Client, tmp_path: Path, s3_folder: str) -> None:
    check_join(client, pick({"kind": "file", "path": f"{s3_folder}/*.parquet"}), tmp_path)


@pytest.mark.s3
def test_one_s3_object(client: Client, tmp_path: Path, s3_folder: str) -> None:
    view = pick({"kind": "file", "path": f"{s3_folder}/part-0.parquet"})
    batches = list(
        latest_rows(
            view.source,
            view,
            start_ms=None,
            end_ms=None,
            datasets=client.datasets,
            settings=client.settings,
        )
    )
    assert sorted(pa.Table.from_batches(batches).column("rate").to_pylist()) == [0.3]


@pytest.mark.s3
def test_an_s3_glob_without_objects_is_not_found(
    client: Client, tmp_path: Path, s3_folder: str
) -> None:
    view = pick({"kind": "file", "path": f"{s3_folder}/none-*.parquet"})
    with pytest.raises(NotFound, match="has no files"):
        check_join(client, view, tmp_path)


@pytest.mark.s3
def test_a_dataset_version_on_s3_blobs_is_downloaded(tmp_path: Path, s3_blob_uri: str) -> None:
    settings = resolve_settings(home=tmp_path / "home", blob_uri=s3_blob_uri)
    with Client(settings) as client:
        version = client.datasets.add("driver_stats", rows())
        sources = check_join(client, pick({"kind": "dataset", "dataset": "driver_stats"}), tmp_path)
    assert sources == (version.id,)


@pytest.mark.postgres
def test_a_postgresql_table(client: Client, tmp_path: Path, pg_uri: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(pg_uri)
    try:
        with engine.begin() as conn:
            rows().to_sql("driver_stats", conn, index=False)  # timestamptz columns
    finally:
        engine.dispose()
    check_join(client, pick({"kind": "sql", "uri": pg_uri, "table": "driver_stats"}), tmp_path)


def test_latest_rows_with_two_keys_and_a_missing_created_time(
    client: Client, tmp_path: Path
) -> None:
    """Per (driver, city): the newest event, ties to the newest created time, a missing created
    time losing to any; rows with a missing key or event time are left out."""
    frame = pd.DataFrame(
        {
            "driver_id": pd.array([1, 1, 1, 1, 2, None], dtype="Int64"),
            "city": ["a", "a", "b", "b", "a", "a"],
            "event_timestamp": pd.to_datetime([T, T, T, None, T, T], utc=True),
            "created": pd.to_datetime([None, T, None, T, None, T], utc=True),
            "rate": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        }
    )
    frame.to_parquet(tmp_path / "two.parquet")
    view = ViewPick(
        name="pairs", version=1, spec={}, join_keys=(("driver_id", "int64"), ("city", "string")),
        features=(("rate", "float64"),), columns=("rate",), defaults={}, ttl_seconds=None,
        source={"kind": "file", "path": str(tmp_path / "two.parquet"),
                "timestamp_field": "event_timestamp", "created_timestamp_field": "created"},
    )  # fmt: skip
    batches = latest_rows(
        view.source, view, start_ms=None, end_ms=None, datasets=client.datasets,
        settings=client.settings,
    )  # fmt: skip
    found = sorted((r["driver_id"], r["city"], r["rate"]) for b in batches for r in b.to_pylist())
    assert found == [(1, "a", 2.0), (1, "b", 3.0), (2, "a", 5.0)]
