"""Compaction and pruning of the prediction log, on a local folder and on S3: rows are kept
exactly once whatever step a compaction is killed at (a real SIGKILL in a child process), the
next compaction finishes the job, readers racing a compaction see every row once, and open
hours are left to the writers."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from loopwright.errors import InvalidInput
from loopwright.serving._log_files import LogFiles, hour_of
from loopwright.serving._prediction_compaction import compact, prune
from loopwright.serving.prediction_log import PredictionLog, PredictionRecord
from loopwright.serving.predictions import PredictionService, predictions_view
from loopwright.store.blobs import BlobStore

NOW = datetime.now(UTC)
HOUR_A = (NOW - timedelta(hours=6)).replace(minute=5, second=0, microsecond=0)
HOUR_B = (NOW - timedelta(hours=4)).replace(minute=5, second=0, microsecond=0)


def record(request_id: str, at: datetime, **inputs: list[object]) -> PredictionRecord:
    return PredictionRecord(
        request_id=request_id,
        deployment="churn",
        variant="primary",
        model="churn-rf",
        model_version=1,
        timestamp=at,
        latency_ms=1.0,
        status=200,
        inputs=inputs or {"age": [30, 31]},
        outputs={"predict": [0, 1]},
    )


def write_files(location: str, at: datetime, count: int, prefix: str) -> None:
    """``count`` part files in ``at``'s hour, one request each (schemas differ between them)."""
    for i in range(count):
        with PredictionLog(location, flush_interval=3600) as log:
            minute = at + timedelta(minutes=i)
            if i % 2:
                log.append(record(f"{prefix}{i}", minute, age=[30.5, 31.5], plan=["pro", "free"]))
            else:
                log.append(record(f"{prefix}{i}", minute))


@pytest.fixture
def location(blob_uri: str) -> str:
    root = LogFiles(BlobStore(blob_uri)).uri
    write_files(root, HOUR_A, 4, "a")
    write_files(root, HOUR_B, 3, "b")
    return root


def _kinds(files: LogFiles) -> list[tuple[int, int, int]]:
    """(parts, compacts, manifests) per hour, oldest first."""
    return [(len(h.parts), len(h.compacts), len(h.manifests)) for h in files.hours("churn")]


def test_compaction_merges_each_closed_hour_into_one_file(location: str) -> None:
    files = LogFiles(location)
    service = PredictionService(location)
    # The open hour, read at the test's own time (the module may have been imported many
    # minutes earlier, in another hour): writers may still add to it.
    now = hour_of(datetime.now(UTC))
    write_files(location, now, 2, "now")
    before = service.read("churn")
    done = compact(files)
    assert (done.hours, done.files_merged, done.rows) == (2, 7, 14)
    pd.testing.assert_frame_equal(service.read("churn"), before)
    assert before["input.plan"].notna().sum() == 2 * 4  # the files' schemas were united
    assert _kinds(files) == [(0, 1, 0), (0, 1, 0), (2, 0, 0)]
    assert compact(files).hours == 0  # one file an hour: nothing to do
    write_files(location, HOUR_A + timedelta(minutes=30), 1, "late")  # a late writer
    assert (compact(files).hours, _kinds(files)[0]) == (1, (0, 1, 0))  # merged with the rest
    assert len(service.read("churn")) == len(before) + 2
    done = compact(files, before=now + timedelta(hours=1))  # asked for explicitly
    assert (done.hours, _kinds(files)[-1]) == (1, (0, 1, 0))
    with pytest.raises(InvalidInput, match="deployment name"):
        compact(files, "../churn")


CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from loopwright.serving._log_files import LogFiles, hour_of
    from loopwright.serving._prediction_compaction import compact

    root, step = sys.argv[1], sys.argv[2]
    put, remove = LogFiles.put, LogFiles.remove
    removed = []

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    def merged(path):
        return path.rsplit("/", 1)[-1].startswith("compact-") and path.endswith(".parquet")

    def killing_put(self, path, data):
        if step == "before-merged-file" and merged(path):
            die()
        put(self, path, data)
        if step == "after-merged-file" and merged(path):
            die()

    def killing_remove(self, path):
        if step == "before-manifest-removal" and path.endswith(".json"):
            die()
        remove(self, path)
        removed.append(path)
        if step == "mid-deletion" and len(removed) == 2:
            die()

    LogFiles.put, LogFiles.remove = killing_put, killing_remove
    compact(LogFiles(root))
    print("not killed")
    """
)


@pytest.mark.parametrize(
    "step",
    ["before-merged-file", "after-merged-file", "mid-deletion", "before-manifest-removal"],
)
def test_a_compaction_killed_at_any_step_keeps_every_row_once(
    location: str, step: str, tmp_path: Path
) -> None:
    files = LogFiles(location)
    service = PredictionService(location)
    before = service.read("churn")
    script = tmp_path / "compact_child.py"
    script.write_text(CHILD)
    child = subprocess.run(
        [sys.executable, str(script), location, step], capture_output=True, text=True, timeout=120
    )
    assert child.returncode == -9, child.stdout + child.stderr  # killed where asked
    after_kill = service.read("churn")
    pd.testing.assert_frame_equal(after_kill, before)  # every row, and each only once
    with duckdb.connect() as connection:  # the DuckDB view reads the same files
        predictions_view(connection, location, "churn")
        query = "SELECT count(*), count(DISTINCT request_id) FROM predictions"
        counted = connection.execute(query).fetchone()
    assert counted == (len(before), before["request_id"].nunique())
    assert service.deployments()[0].rows == len(before)
    done = compact(files)  # finishes what the killed one left, then merges the rest
    assert _kinds(files) == [(0, 1, 0), (0, 1, 0)]
    assert done.hours >= 1
    pd.testing.assert_frame_equal(service.read("churn"), before)


def test_a_read_racing_a_compaction_sees_every_row_once(
    location: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = PredictionService(location)
    before = service.read("churn")
    read_table = LogFiles.read_table
    raced: list[bool] = []

    def compacting_first(self: LogFiles, path: str, columns: list[str] | None = None) -> object:
        if not raced:  # the reader listed the parts; compaction removes them before it reads
            raced.append(True)
            compact(LogFiles(location))
        return read_table(self, path, columns)

    monkeypatch.setattr(LogFiles, "read_table", compacting_first)
    pd.testing.assert_frame_equal(service.read("churn"), before)
    assert raced == [True]


def test_pruning_deletes_whole_hours_past_the_retention(location: str) -> None:
    files = LogFiles(location)
    service = PredictionService(location)
    compact(files, before=HOUR_A + timedelta(hours=1))  # one hour merged, one in parts
    assert prune(files, timedelta(days=1)).hours == 0
    assert prune(files, timedelta(days=10**8)).hours == 0  # before year 1: nothing that old
    done = prune(files, timedelta(hours=5))  # HOUR_A ended over five hours ago, HOUR_B not
    assert (done.hours, done.files) == (1, 1)
    assert set(service.read("churn")["request_id"]) == {"b0", "b1", "b2"}
    done = prune(files, timedelta(0), deployment="churn")
    assert (done.hours, done.files) == (1, 3)
    assert service.read("churn").empty
    assert service.deployments() == []
    if files.filesystem is None:
        assert not list(Path(location, "deployment=churn").iterdir())  # hour folders gone
    with pytest.raises(InvalidInput, match="older_than"):
        prune(files, 30)  # type: ignore[arg-type]


HOLDER = textwrap.dedent(
    """
    import sys, time
    from loopwright.serving._log_files import LogFiles, hour_of
    from loopwright.serving._log_lease import compaction_lease

    with compaction_lease(LogFiles(sys.argv[1])):
        print("holding", flush=True)
        time.sleep(600)
    """
)


def test_a_second_process_cannot_compact_while_one_does(location: str, tmp_path: Path) -> None:
    """Two compactions of one hour at once would each write a merged file of the same rows."""
    import json
    import os
    import signal
    import time

    from loopwright.errors import Conflict
    from loopwright.serving._log_lease import LEASE_NAME, STALE

    files = LogFiles(location)
    service = PredictionService(location)
    before = service.read("churn")
    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    with subprocess.Popen(
        [sys.executable, str(script), location], stdout=subprocess.PIPE, text=True
    ) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "holding\n"
            with pytest.raises(Conflict, match=f"process {holder.pid} on"):
                compact(files)
            with pytest.raises(Conflict, match="being compacted or pruned"):
                prune(files, timedelta(0))
            assert _kinds(files) == [(4, 0, 0), (3, 0, 0)]  # nothing merged, nothing deleted
        finally:
            os.kill(holder.pid, signal.SIGKILL)
            holder.wait(timeout=60)
    # Its holder was killed on this host: the next compaction takes the lease over.
    assert compact(files).hours == 2
    pd.testing.assert_frame_equal(service.read("churn"), before)
    lease = f"{files.root}/{LEASE_NAME}"
    assert not files.filesystem.exists(lease) if files.filesystem else not os.path.exists(lease)
    # Held from another host: refused until it has gone STALE seconds without a renewal.
    held = {"owner": "x", "host": "elsewhere", "pid": 1, "renewed": time.time()}
    files.put(lease, json.dumps(held).encode())
    with pytest.raises(Conflict, match="process 1 on elsewhere"):
        compact(files)
    files.put(lease, json.dumps({**held, "renewed": time.time() - STALE - 1}).encode())
    assert compact(files).hours == 0
    assert prune(files, timedelta(0)).hours == 2
