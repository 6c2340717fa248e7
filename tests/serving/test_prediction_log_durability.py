"""The prediction log keeps what it acknowledged: everything on a clean stop (close or
interpreter exit), all but the last flush interval when the process is killed (SIGKILL).

Each case runs a real serving-like process that appends to a log and then stops, or is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from loopwright.serving._log_files import LogFiles
from loopwright.serving.predictions import read_predictions
from loopwright.store.blobs import BlobStore

INTERVAL = 0.2  # the child's flush interval, in seconds

CHILD = textwrap.dedent(
    """
    import sys, time
    from datetime import UTC, datetime
    from loopwright.serving.prediction_log import PredictionLog, PredictionRecord
    from loopwright.store.blobs import BlobStore

    blob_uri, interval, mode = sys.argv[1], float(sys.argv[2]), sys.argv[3]

    def record(request_id):
        return PredictionRecord(
            request_id=request_id, deployment="churn", variant="primary", model="churn-rf",
            model_version=1, timestamp=datetime.now(UTC), latency_ms=1.0, status=200,
            inputs={"age": [41, 42], "plan": ["pro", "free"]}, outputs={"predict": [1, 0]})

    log = PredictionLog(BlobStore(blob_uri), flush_interval=interval)
    for i in range(500):
        assert log.append(record(f"before-{i}"))
    if mode == "exit":  # no close(): the interpreter's exit must write them
        sys.exit(0)
    if mode == "close":
        log.close()
        print("closed", flush=True)
        sys.exit(0)
    # mode == "kill": let several flush intervals pass, say so, then keep serving until killed.
    time.sleep(10 * interval)
    print("acknowledged", flush=True)
    i = 0
    while True:
        log.append(record(f"after-{i}"))
        i += 1
        time.sleep(0.0005)
    """
)


def _run_child(blob_uri: str, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, blob_uri, str(INTERVAL), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("mode", ["close", "exit"])
def test_a_clean_stop_keeps_every_acknowledged_row(blob_uri: str, mode: str) -> None:
    with _run_child(blob_uri, mode) as child:
        _, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    frame = read_predictions(BlobStore(blob_uri), "churn")
    assert len(frame) == 1000
    assert sorted(set(frame["request_id"])) == sorted(f"before-{i}" for i in range(500))


def test_sigkill_loses_at_most_the_last_flush_interval(blob_uri: str) -> None:
    with _run_child(blob_uri, "kill") as child:
        try:
            assert child.stdout is not None and child.stderr is not None
            line = child.stdout.readline()
            assert line == "acknowledged\n", child.stderr.read()
            # Let the child serve a few more intervals, so that a write may be under way.
            time.sleep(5 * INTERVAL)
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=60)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    assert child.returncode == -signal.SIGKILL
    # Everything appended more than a flush interval before the kill is there, and every file
    # present reads whole (no half-written Parquet file is ever visible).
    frame = read_predictions(BlobStore(blob_uri), "churn")
    before = frame[frame["request_id"].str.startswith("before-")]
    assert sorted(set(before["request_id"])) == sorted(f"before-{i}" for i in range(500))
    assert len(before) == 1000
    after = frame[frame["request_id"].str.startswith("after-")]
    assert len(after) > 0  # the intervals between the signal and the kill were written too
    assert after.groupby("request_id").size().eq(2).all()  # requests are whole or absent
    files = LogFiles(BlobStore(blob_uri))
    if files.filesystem is None:  # a killed rename leaves at most a dot-named temp file
        hour_folders = Path(files.uri).glob("deployment=churn/hour=*")
        names = [p.name for folder in hour_folders for p in folder.iterdir()]
        assert all(n.startswith("part-") or n.startswith(".part-") for n in names)


FORKING = textwrap.dedent(
    """
    import os, sys
    from datetime import UTC, datetime
    from loopwright.serving.prediction_log import PredictionLog, PredictionRecord
    from loopwright.store.blobs import BlobStore

    def record(request_id):
        return PredictionRecord(
            request_id=request_id, deployment="churn", variant="primary", model="churn-rf",
            model_version=1, timestamp=datetime.now(UTC), latency_ms=1.0, status=200,
            inputs={"age": [41, 42]}, outputs={"predict": [1, 0]})

    log = PredictionLog(BlobStore(sys.argv[1]), flush_interval=3600)
    log.append(record("parent-0"))  # queued in the parent when it forks
    pid = os.fork()
    if pid == 0:
        log.append(record("child-0"))
        log.close()
        os._exit(0 if log.stats().written == 1 else 3)
    _, status = os.waitpid(pid, 0)
    log.append(record("parent-1"))
    log.close()
    sys.exit(os.waitstatus_to_exitcode(status))
    """
)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_worker_writes_its_own_records_once(blob_uri: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", FORKING, blob_uri], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    frame = read_predictions(BlobStore(blob_uri), "churn")
    assert frame.groupby("request_id").size().to_dict() == {
        "child-0": 2,
        "parent-0": 2,
        "parent-1": 2,
    }
