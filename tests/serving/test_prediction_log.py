"""The prediction log on a real local folder and a real S3 server: what is written, where, and
how it reads back (pandas and DuckDB)."""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pandas as pd
import pytest

import loopwright as lw
from loopwright.errors import InvalidInput
from loopwright.serving._log_files import LogFiles
from loopwright.serving.prediction_log import (
    PredictionLog,
    PredictionRecord,
    is_sampled,
    log_uri,
)
from loopwright.serving.predictions import predictions_view, read_predictions
from loopwright.store.blobs import BlobStore

if TYPE_CHECKING:
    from loopwright.serving.prediction_log import Column

T0 = datetime(2026, 12, 4, 10, 15, 0, tzinfo=UTC)
FAR = 3600.0  # a flush interval no test waits for: only close() or flush() writes


def record(
    request_id: str,
    *,
    deployment: str = "churn",
    at: datetime = T0,
    inputs: Mapping[str, Column] | None = None,
    outputs: Mapping[str, Column] | None = None,
    variant: str = "primary",
    model_version: int | None = 3,
) -> PredictionRecord:
    """A record with two input rows unless ``inputs`` / ``outputs`` say otherwise."""
    return PredictionRecord(
        request_id=request_id,
        deployment=deployment,
        variant=variant,
        model="churn-rf",
        model_version=model_version,
        timestamp=at,
        latency_ms=1.5,
        status=200,
        inputs={"age": [42, 37], "plan": ["pro", "free"]} if inputs is None else inputs,
        outputs={"predict": [1, 0]} if outputs is None else outputs,
    )


def _values(column: pd.Series) -> list[Any]:
    """The column's values with None for every missing one (pandas shows NaN for text)."""
    values: list[Any] = column.astype(object).where(column.notna(), None).tolist()
    return values


def _parts(files: LogFiles, deployment: str) -> list[str]:
    return [found.path for found in files.find(deployment)]


def test_rows_round_trip_with_one_row_per_input_row(blob_uri: str) -> None:
    blobs = BlobStore(blob_uri)
    with PredictionLog(blobs, flush_interval=FAR) as log:
        assert log.append(record("r1", inputs={"age": [42, 37], "plan": ["pro", "free"]}))
        assert log.append(
            record(
                "r2",
                at=T0 + timedelta(seconds=1),
                inputs={"age": [50]},
                outputs={"predict": [1]},
                variant="canary",
                model_version=None,
            )
        )
    frame = read_predictions(blobs, "churn")
    assert list(frame.columns[:9]) == [
        "request_id", "row", "timestamp", "deployment", "variant", "model", "model_version",
        "latency_ms", "status",
    ]  # fmt: skip
    assert frame["request_id"].tolist() == ["r1", "r1", "r2"]
    assert frame["row"].tolist() == [0, 1, 0]
    assert frame["input.age"].tolist() == [42, 37, 50]
    assert _values(frame["input.plan"]) == ["pro", "free", None]
    assert frame["output.predict"].tolist() == [1, 0, 1]
    assert frame["variant"].tolist() == ["primary", "primary", "canary"]
    assert frame["model_version"].isna().tolist() == [False, False, True]
    assert frame["timestamp"].iloc[0] == T0
    assert str(frame["timestamp"].dt.tz) == "UTC"
    stats = log.stats()
    assert (stats.appended, stats.written, stats.rows_written, stats.queued) == (2, 2, 3, 0)
    # The log lives in the blob store's predictions/ folder, beside the blobs.
    assert LogFiles(blobs).uri == f"{blobs.uri}/predictions"
    assert list(blobs.iter_blobs()) == []


def test_files_are_partitioned_by_deployment_and_hour(blob_uri: str) -> None:
    blobs = BlobStore(blob_uri)
    last_second = datetime(2026, 12, 4, 10, 59, 59, 999_999, tzinfo=UTC)
    # Another time zone is stored as UTC: 14:30 at +02:00 falls in the 12:00 UTC hour.
    plus_two = datetime(2026, 12, 4, 14, 30, tzinfo=timezone(timedelta(hours=2)))
    with PredictionLog(blobs, flush_interval=FAR) as log:
        log.append(record("a", at=last_second))
        log.append(record("b", at=last_second + timedelta(microseconds=1)))
        log.append(record("c", at=plus_two))
        log.append(record("d", deployment="fraud", at=T0))
    files = LogFiles(blobs)
    hours = {found.path.split("/")[-2] for found in files.find("churn")}
    assert hours == {"hour=2026-12-04T10", "hour=2026-12-04T11", "hour=2026-12-04T12"}
    for found in files.find("churn") + files.find("fraud"):
        deployment_folder, _, name = found.path.split("/")[-3:]
        assert deployment_folder in ("deployment=churn", "deployment=fraud")
        assert name.startswith("part-") and name.endswith(".parquet")
    assert [f.path.split("/")[-2] for f in files.find("fraud")] == ["hour=2026-12-04T10"]
    # Reading one hour opens that hour's files only, and the bounds are exact.
    eleven = datetime(2026, 12, 4, 11, tzinfo=UTC)
    assert [f.hour for f in files.find("churn", eleven, eleven + timedelta(hours=1))] == [eleven]
    frame = read_predictions(blobs, "churn", since=eleven, until=eleven + timedelta(hours=1))
    assert set(frame["request_id"]) == {"b"}
    assert set(read_predictions(blobs, "churn", until=eleven)["request_id"]) == {"a"}
    assert set(read_predictions(blobs, "churn", since=eleven)["request_id"]) == {"b", "c"}
    assert set(read_predictions(blobs, "fraud")["request_id"]) == {"d"}
    assert read_predictions(blobs, "nobody").empty


def test_schemas_that_differ_between_files_read_back_united_by_name(blob_uri: str) -> None:
    blobs = BlobStore(blob_uri)
    with PredictionLog(blobs, flush_interval=FAR) as log:
        log.append(record("r1", inputs={"age": [42]}, outputs={"predict": [1]}))
        assert log.flush(timeout=60)
        # Later traffic: 'age' arrives as a float, a feature is added, a vector output appears.
        log.append(
            record(
                "r2",
                at=T0 + timedelta(seconds=1),
                inputs={"age": [37.5], "tenure": [3]},
                outputs={"predict": [0], "predict_proba": [[0.8, 0.2]]},
            )
        )
        assert log.flush(timeout=60)
        log.append(
            record(
                "r3",
                at=T0 + timedelta(seconds=2),
                inputs={"zip": ["9000"]},
                outputs={"predict": [1]},
            )
        )
    assert len(_parts(LogFiles(blobs), "churn")) == 3
    frame = read_predictions(blobs, "churn")
    assert frame["request_id"].tolist() == ["r1", "r2", "r3"]
    assert frame["input.age"].tolist()[:2] == [42.0, 37.5]
    assert np.isnan(frame["input.age"].iloc[2])
    assert frame["input.tenure"].isna().tolist() == [True, False, True]
    assert _values(frame["input.zip"]) == [None, None, "9000"]
    assert frame["output.predict_proba"].iloc[0] is None
    assert list(frame["output.predict_proba"].iloc[1]) == [0.8, 0.2]

    connection = duckdb.connect()
    assert predictions_view(connection, blobs, "churn") == "predictions"
    rows = connection.execute(
        'SELECT request_id, "input.age", "input.zip", "output.predict_proba"[1] '
        "FROM predictions ORDER BY request_id"
    ).fetchall()
    assert rows == [("r1", 42.0, None, None), ("r2", 37.5, None, 0.8), ("r3", None, "9000", None)]
    since = T0 + timedelta(seconds=1)
    predictions_view(connection, blobs, "churn", since=since, name="recent")
    assert connection.execute("SELECT count(*) FROM recent").fetchone() == (2,)
    predictions_view(connection, blobs, "nobody", name="empty")
    assert connection.execute("SELECT count(*) FROM empty").fetchone() == (0,)
    with pytest.raises(InvalidInput, match="view name"):
        predictions_view(connection, blobs, "churn", name="x; DROP TABLE y")


def test_a_column_whose_type_conflicts_becomes_text() -> None:
    from loopwright.serving._log_table import to_table

    # In one batch (one file): an int and a string in the same column.
    table = to_table([
        record("r1", inputs={"code": [7]}, outputs={}),
        record("r2", inputs={"code": ["x7"]}, outputs={}),
    ])  # fmt: skip
    assert table.column("input.code").to_pylist() == ["7", "x7"]
    # A list in one request, a number in the next; and a mixed list within one request.
    table = to_table([
        record("r1", inputs={"v": [[1, 2]], "w": [1]}, outputs={}),
        record("r2", inputs={"v": [3], "w": ["a"]}, outputs={}),
        record("r3", inputs={"v": np.array([4.5])}, outputs={}),
    ])  # fmt: skip
    assert table.column("input.v").to_pylist() == ["[1, 2]", "3", "4.5"]
    assert table.column("input.w").to_pylist() == ["1", "a", None]
    mixed = to_table([record("r1", inputs={"m": [1, "b"]}, outputs={})])
    assert mixed.column("input.m").to_pylist() == ["1", "b"]
    # Across files: the reader makes the column text in every file.
    root = Path.cwd() / "log"
    for request_id, code in (("r1", 7), ("r2", "x7")):
        with PredictionLog(root, flush_interval=FAR) as log:
            log.append(record(request_id, inputs={"code": [code]}, outputs={}))
    assert read_predictions(root, "churn")["input.code"].tolist() == ["7", "x7"]


def test_vector_outputs_become_list_columns() -> None:
    from loopwright.serving._log_table import to_table

    proba = np.array([[0.9, 0.1], [0.3, 0.7]])
    table = to_table([
        record("r1", outputs={"predict_proba": proba}),
        record("r2", outputs={"predict_proba": [[0.5, 0.5], [1.0, 0.0]]}),
        record("r3", inputs={"age": np.array([1, 2], dtype=np.int16)}),
    ])  # fmt: skip
    assert str(table.schema.field("output.predict_proba").type) == "list<item: double>"
    assert table.column("output.predict_proba").to_pylist() == [
        [0.9, 0.1], [0.3, 0.7], [0.5, 0.5], [1.0, 0.0], None, None,
    ]  # fmt: skip
    assert table.column("input.age").to_pylist() == [42, 37, 42, 37, 1, 2]


def test_a_request_without_rows_is_still_logged() -> None:
    root = Path.cwd() / "log"
    with PredictionLog(root, flush_interval=FAR) as log:
        log.append(record("empty", inputs={}, outputs={}))
        log.append(record("zero", inputs={"age": []}, outputs={"predict": []}))
    frame = read_predictions(root, "churn")
    assert frame["request_id"].tolist() == ["empty", "zero"]
    assert frame["row"].tolist() == [0, 0]


@pytest.mark.parametrize(
    "name",
    ["../escape", "..", ".", "a/b", "/abs", "", "x\x00y", "%2e%2e", "a\\b", "C:", "~root",
     " edge", "edge ", "a=b", "a\u2215b", "a\uff0fb", "...", "a\nb", "a" * 300, 7],
)  # fmt: skip
def test_unsafe_deployment_names_are_refused_and_create_nothing(name: Any) -> None:
    root = Path.cwd() / "log"
    with PredictionLog(root, flush_interval=FAR) as log:
        with pytest.raises(InvalidInput, match="deployment name"):
            log.append(record("r1", deployment=name))
        assert log.stats().appended == 0
        with pytest.raises(InvalidInput, match="deployment name"):
            read_predictions(root, name)
    assert not root.exists() or list(root.iterdir()) == []
    assert sorted(os.listdir(Path.cwd())) == ([] if not root.exists() else ["log"])


@pytest.mark.parametrize("name", ["Churn-v2.1_eu", "churn model", "modèle", ".hidden", "a.b"])
def test_any_fair_model_name_is_a_deployment_name_kept_as_given(name: str) -> None:
    # A model served on its own logs under its model name, which may hold spaces or accents.
    root = Path.cwd() / "log"
    with PredictionLog(root, flush_interval=FAR) as log:
        log.append(record("r1", deployment=name))
    assert os.listdir(root) == [f"deployment={name}"]
    assert read_predictions(root, name)["deployment"].tolist() == [name, name]
    connection = duckdb.connect()
    predictions_view(connection, root, name)
    assert connection.execute("SELECT count(*) FROM predictions").fetchone() == (2,)


def test_records_that_cannot_be_stored_are_refused_at_append() -> None:
    root = Path.cwd() / "log"
    with PredictionLog(root, flush_interval=FAR) as log:
        with pytest.raises(InvalidInput, match="time zone"):
            log.append(record("naive", at=datetime(2026, 12, 4, 10)))
        with pytest.raises(InvalidInput, match="different lengths"):
            log.append(record("ragged", inputs={"age": [1, 2]}, outputs={"predict": [1]}))
        fine = record("typed")
        wrong: list[dict[str, Any]] = [
            {"request_id": 7}, {"model_version": "3"}, {"status": "200"}, {"status": True},
            {"latency_ms": None}, {"variant": None}, {"timestamp": "2026-12-04T10:00:00Z"},
        ]  # fmt: skip
        for change in wrong:
            with pytest.raises(InvalidInput, match=f"field {next(iter(change))}"):
                log.append(dataclasses.replace(fine, **change))
        # NumPy scalars are numbers like any other.
        numpy_scalars: dict[str, Any] = {
            "model_version": np.int64(3),
            "status": np.int32(200),
            "latency_ms": np.float32(1.5),
        }
        assert log.append(dataclasses.replace(fine, **numpy_scalars))
    assert (log.stats().appended, log.stats().written) == (1, 1)
    with pytest.raises(InvalidInput, match="closed"):
        log.append(record("late"))
    for bad in ({"sample_rate": 1.5}, {"max_queue": 0}, {"flush_interval": 0}):
        with pytest.raises(InvalidInput):
            PredictionLog(root, **bad)


def test_sampling_is_decided_by_request_id_alone() -> None:
    ids = [f"req-{i}" for i in range(20_000)]
    picked = [i for i in ids if is_sampled(i, 0.25)]
    assert 0.235 < len(picked) / len(ids) < 0.265
    assert [i for i in ids if is_sampled(i, 0.25)] == picked  # the same again
    assert set(picked) <= {i for i in ids if is_sampled(i, 0.5)}  # a higher rate keeps them
    assert not any(is_sampled(i, 0.0) for i in ids[:100])
    assert all(is_sampled(i, 1.0) for i in ids[:100])

    # Two logs (a replay) keep the same requests, with all of their rows.
    kept = []
    for folder in ("first", "replay"):
        root = Path.cwd() / folder
        with PredictionLog(root, sample_rate=0.25, flush_interval=FAR) as log:
            answers = [log.append(record(i)) for i in ids[:2000]]
        assert log.stats().sampled_out == answers.count(False)
        assert [log.keeps(i) for i in ids[:2000]] == answers  # keeps agrees with append
        assert log.stats().sampled_out == 2 * answers.count(False)
        frame = read_predictions(root, "churn")
        assert frame.groupby("request_id").size().eq(2).all()
        kept.append(sorted(set(frame["request_id"])))
    assert kept[0] == kept[1] == sorted(i for i in ids[:2000] if is_sampled(i, 0.25))


def test_a_full_queue_drops_and_counts_instead_of_blocking() -> None:
    root = Path.cwd() / "log"
    # The writer only writes at close: the queue fills up. Were append to wait for room, this
    # test would hang until the pytest timeout.
    log = PredictionLog(root, max_queue=10, flush_interval=FAR)
    answers = [log.append(record(f"r{i:02d}")) for i in range(25)]
    assert answers == [True] * 10 + [False] * 15
    stats = log.stats()
    assert (stats.appended, stats.dropped, stats.queued, stats.written) == (10, 15, 10, 0)
    log.close()
    stats = log.stats()
    assert (stats.written, stats.queued, stats.dropped) == (10, 0, 15)
    frame = read_predictions(root, "churn")
    assert sorted(set(frame["request_id"])) == [f"r{i:02d}" for i in range(10)]


def test_a_big_batch_is_written_before_the_interval() -> None:
    root = Path.cwd() / "log"
    with PredictionLog(root, max_batch=50, flush_interval=FAR) as log:
        for i in range(50):
            log.append(record(f"r{i}"))
        deadline = datetime.now(UTC) + timedelta(seconds=60)
        while log.stats().written < 50 and datetime.now(UTC) < deadline:
            threading.Event().wait(0.01)
        assert log.stats().written == 50
        assert log.stats().files_written == 1


def test_concurrent_appenders_lose_nothing(blob_uri: str) -> None:
    blobs = BlobStore(blob_uri)
    threads, per_thread = 8, 1500

    def serve(worker: int) -> None:
        for i in range(per_thread):
            at = T0 + timedelta(minutes=(worker * per_thread + i) % 120)  # across two hours
            assert log.append(record(f"w{worker}-{i}", at=at))

    with PredictionLog(blobs, flush_interval=0.05, max_batch=1000) as log:
        workers = [threading.Thread(target=serve, args=(w,)) for w in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    stats = log.stats()
    assert (stats.appended, stats.written, stats.dropped, stats.queued) == (12_000, 12_000, 0, 0)
    frame = read_predictions(blobs, "churn")
    assert len(frame) == 2 * threads * per_thread
    assert frame["request_id"].nunique() == threads * per_thread
    rows = frame.groupby("request_id")["row"].apply(lambda r: tuple(sorted(r)))
    assert set(rows) == {(0, 1)}


def test_a_storage_that_refuses_writes_is_retried_then_counted_as_failed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    blocked = Path.cwd() / "file-not-folder"
    blocked.write_text("a file where the log's folder should be")
    log = PredictionLog(blocked, flush_interval=0.05)
    log.append(record("r1"))
    assert log.flush(timeout=60) is False  # the first attempt failed: retried later
    log.close()
    stats = log.stats()
    assert (stats.appended, stats.written, stats.failed, stats.queued) == (1, 0, 1, 0)
    assert "gave up 1 prediction records" in caplog.text


def test_a_file_that_cannot_be_written_does_not_hold_back_the_others() -> None:
    root = Path.cwd() / "log"
    root.mkdir()
    (root / "deployment=blocked").write_text("a file where a folder should be")
    with PredictionLog(root, flush_interval=0.05) as log:
        log.append(record("stuck", deployment="blocked"))
        log.append(record("fine", deployment="churn"))
        log.flush(timeout=60)
        assert log.stats().written == 1
    stats = log.stats()
    assert (stats.written, stats.failed, stats.queued) == (1, 1, 0)
    assert set(read_predictions(root, "churn")["request_id"]) == {"fine"}
    assert read_predictions(root, "blocked").empty


def test_client_predictions_reads_the_embedded_log() -> None:
    client = lw.connect(home=Path.cwd() / "home")
    try:
        with PredictionLog(client.store.blobs, flush_interval=FAR) as log:
            log.append(record("old", at=datetime.now(UTC) - timedelta(hours=3)))
        # `loopwright serve` on this store opens the log by URI: the same folder.
        with PredictionLog(log_uri(client.settings.blob_uri), flush_interval=FAR) as log:
            log.append(record("new", at=datetime.now(UTC)))
        assert set(client.predictions("churn")["request_id"]) == {"old", "new"}
        recent = client.predictions("churn", since=timedelta(hours=1))
        assert recent["request_id"].tolist() == ["new", "new"]
    finally:
        client.close()


def test_chunks_converted_apart_are_written_as_one_file_of_common_types() -> None:
    """The writer converts records to Arrow every few hundred (so the GC does not walk a
    second's worth of records); chunks whose columns differ still make one file per hour."""
    root = Path.cwd() / "log"
    with PredictionLog(root, flush_interval=FAR) as log:
        for i in range(300):  # the first chunk: ints, and a column the others lack
            log.append(record(f"a{i}", inputs={"age": [i], "plan": ["pro"]}, outputs={}))
        for i in range(300):  # later: floats, and text where numbers were
            log.append(record(f"b{i}", inputs={"age": [i + 0.5]}, outputs={"score": ["high"]}))
        for i in range(300):
            log.append(record(f"c{i}", inputs={"age": [1]}, outputs={"score": [0.25]}))
    assert log.stats().files_written == 1
    frame = read_predictions(root, "churn")
    assert len(frame) == 900
    assert frame["input.age"].dtype == np.float64
    assert frame.set_index("request_id").loc["b7", "input.age"] == 7.5
    assert frame["input.plan"].isna().sum() == 600
    assert set(frame["output.score"].dropna()) == {"high", "0.25"}


def test_columns_named_in_another_order_keep_their_values() -> None:
    root = Path.cwd() / "log"
    with PredictionLog(root, flush_interval=FAR) as log:
        log.append(record("r1", inputs={"age": [1], "plan": ["a"]}, outputs={}))
        log.append(record("r2", inputs={"plan": ["b"], "age": [2]}, outputs={}))
        log.append(record("r3", inputs={"age": [3], "plan": ["c"]}, outputs={}))
    frame = read_predictions(root, "churn")
    assert frame[["input.age", "input.plan"]].values.tolist() == [[1, "a"], [2, "b"], [3, "c"]]


def test_a_failing_write_is_retried_per_interval_not_per_full_batch() -> None:
    """Past max_batch the writer writes early, but not while a write is failing: a brief
    outage under load must not use up a group's attempts within milliseconds."""
    blocked = Path.cwd() / "file-not-folder"
    blocked.write_text("a file where the log's folder should be")
    log = PredictionLog(blocked, flush_interval=5.0, max_batch=10)
    for i in range(10):
        log.append(record(f"first-{i}"))  # a full batch: written at once, and refused
    threading.Event().wait(0.3)
    for burst in range(6):  # several chunks' worth, each one waking the writer
        for i in range(100):
            log.append(record(f"more-{burst}-{i}"))
        threading.Event().wait(0.1)
    assert log.stats().failed == 0  # still being retried, once per interval
    log.close()
    assert log.stats().failed == 610


def test_a_read_lists_only_the_hour_folders_of_its_window(monkeypatch: pytest.MonkeyPatch) -> None:
    root = Path.cwd() / "log"
    with PredictionLog(root, flush_interval=FAR) as log:
        for hour in range(12):
            log.append(record(f"h{hour}", at=T0 + timedelta(hours=hour)))
    listed: list[str] = []
    original = LogFiles._list

    def counting(self: LogFiles, folder: str) -> list[str]:
        listed.append(folder)
        return original(self, folder)

    monkeypatch.setattr(LogFiles, "_list", counting)
    frame = read_predictions(root, "churn", since=T0 + timedelta(hours=11))
    assert set(frame["request_id"]) == {"h11"}
    assert len(listed) == 2  # the deployment's folder, then its one hour in the window


def test_a_timestamp_past_the_calendar_in_utc_is_refused_and_the_writer_keeps_going() -> None:
    root = Path.cwd() / "log"
    with PredictionLog(root, flush_interval=FAR) as log:
        for edge in (
            datetime(1, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))),
            datetime(9999, 12, 31, 23, 30, tzinfo=timezone(timedelta(hours=-1))),
        ):
            with pytest.raises(InvalidInput, match="outside the years 1-9999 in UTC"):
                log.append(record("edge", at=edge))
        # Still writable at either end: the writer's partition of these is the hour in UTC.
        assert log.append(record("first", at=datetime(1, 1, 1, 0, 30, tzinfo=UTC)))
        assert log.append(record("r1"))
        assert log.flush(timeout=60)
    assert log.stats().written == 2
    assert sorted(set(read_predictions(root, "churn")["request_id"])) == ["first", "r1"]


def test_a_batch_the_writer_cannot_convert_is_counted_and_the_writer_goes_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Whatever the writer thread meets, it must not stop: a stopped writer would leave every
    later record queued, then dropped, until the process ends."""
    import loopwright.serving.prediction_log as module
    from loopwright.serving._log_files import hour_of

    cursed = datetime(2001, 1, 1, tzinfo=UTC)

    def failing(moment: datetime) -> datetime:
        if moment == cursed:
            raise RuntimeError("unexpected")
        return hour_of(moment)

    monkeypatch.setattr(module, "hour_of", failing)
    root = Path.cwd() / "log"
    with PredictionLog(root, flush_interval=FAR) as log:
        assert log.append(record("cursed", at=cursed))
        assert log.flush(timeout=60)
        assert log.append(record("fine"))
    stats = log.stats()
    assert (stats.failed, stats.written, stats.queued) == (1, 1, 0)
    assert "could not convert 1 prediction records" in caplog.text
    assert set(read_predictions(root, "churn")["request_id"]) == {"fine"}
