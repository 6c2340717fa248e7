"""Monitoring keeps what it committed, on SQLite and PostgreSQL: a run killed (SIGKILL) inside
its write leaves no partial rows and the next run is fine; two runs of one monitor at once both
land with one open alert; concurrent label writers lose nothing; a reference whose sketch blob
is gone or damaged gives a failed run that names it, not a crash."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from test_api import AT, DEPLOYMENT, add_reference, fill_log

from loopwright.client import Client
from loopwright.config import Settings, resolve_settings
from loopwright.monitoring._labels import LabelBook
from loopwright.store import schema as t
from loopwright.store.home import open_store

SHIFTED = AT.replace(hour=11)  # the window [10:00, 11:00) is the shifted hour


@pytest.fixture
def settings(tmp_path: Path, db_uri: str) -> Iterator[Settings]:
    """Stores holding dataset ``ref`` v1, two hours of ``scorer-api``'s log and monitor
    ``mon`` (alert when a third of the columns drift)."""
    blobs = tmp_path / "blobs"
    found = resolve_settings(home=tmp_path / "home", blob_uri=str(blobs), db_uri=db_uri)
    with Client(found) as client:
        add_reference(client, tmp_path / "ref")
        client.monitoring.create(
            "mon",
            deployment=DEPLOYMENT,
            reference="ref@v1",
            columns=["input.x", "input.c"],
            alerts=["drift_share>0.3"],
        )
    fill_log(blobs)
    yield found


def _counts(client: Client) -> tuple[int, int]:
    with client.store.db.read() as conn:
        runs = conn.execute(sa.select(sa.func.count()).select_from(t.monitor_runs)).scalar_one()
        results = conn.execute(
            sa.select(sa.func.count()).select_from(t.monitor_results)
        ).scalar_one()
    return int(runs), int(results)


CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from datetime import datetime
    from loopwright.client import Client
    from loopwright.config import resolve_settings
    from loopwright.monitoring import _runs

    home, blobs, db_uri, at = sys.argv[1:5]
    original = _runs.insert_run

    def insert_then_die(conn, monitor_id, run):
        original(conn, monitor_id, run)  # the run's rows are written, not committed
        print("inserted", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    _runs.insert_run = insert_then_die
    with Client(resolve_settings(home=home, blob_uri=blobs, db_uri=db_uri)) as client:
        client.monitoring.run("mon", at=datetime.fromisoformat(at))
    print("not killed", flush=True)
    """
)


def test_a_run_killed_inside_its_write_leaves_nothing(settings: Settings) -> None:
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            str(settings.home),
            str(settings.blob_uri),
            str(settings.db_uri),
            SHIFTED.isoformat(),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert child.returncode == -signal.SIGKILL, (child.stdout, child.stderr)
    assert child.stdout.split() == ["inserted"], child.stderr
    with Client(settings) as client:
        assert _counts(client) == (0, 0)
        assert client.monitoring.get("mon").last_run_at is None
        assert client.monitoring.history("mon") == []
        run = client.monitoring.run("mon", at=SHIFTED)
        assert run.status == "ok" and run.drift is not None and run.drift.dataset_drift
        assert [r.id for r in client.monitoring.history("mon")] == [run.id]
        assert _counts(client)[0] == 1
        assert [a.rule for a in client.monitoring.alerts(monitor="mon")] == ["drift_share>0.3"]


def test_two_concurrent_runs_of_one_monitor_both_land(settings: Settings) -> None:
    runs: list[object] = []
    errors: list[BaseException] = []

    def one() -> None:
        try:
            with Client(settings) as client:
                runs.append(client.monitoring.run("mon", at=SHIFTED))
        except BaseException as exc:  # reported below with its traceback's message
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert errors == [] and len(runs) == 2
    with Client(settings) as client:
        history = client.monitoring.history("mon")
        assert len(history) == 2 and {r.status for r in history} == {"ok"}
        open_alerts = client.monitoring.alerts(monitor="mon", status="open")
        assert [a.rule for a in open_alerts] == ["drift_share>0.3"]  # one, not two


def test_concurrent_label_writers_lose_nothing(settings: Settings) -> None:
    errors: list[BaseException] = []
    writers, per_writer, shared = 4, 500, 100

    def write(k: int) -> None:
        try:
            with open_store(settings) as store:
                book = LabelBook(store, actor="ada")
                own = {f"w{k}-{i}": i for i in range(per_writer)}
                both = {f"s-{i}": k for i in range(shared)}  # every writer replaces these
                for start in range(0, per_writer, 100):
                    part = dict(list(own.items())[start : start + 100])
                    book.log(DEPLOYMENT, part | both)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert errors == [], errors
    with open_store(settings) as store:
        read = LabelBook(store).read(DEPLOYMENT)
    assert len(read) == writers * per_writer + shared
    assert read["request_id"].is_unique
    shared_labels = read[read["request_id"].str.startswith("s-")]["label"]
    assert shared_labels.nunique() == 1 and int(shared_labels.iloc[0]) in range(writers)
    own = read[read["request_id"].str.startswith("w1-")].sort_values("row")
    assert dict(zip(own["request_id"], own["label"], strict=True)) == {
        f"w1-{i}": i for i in range(per_writer)
    }


def _sketch_path(client: Client) -> Path:
    reference = client.monitoring.references()[0]
    return Path(client.store.blobs._path(reference.sketch_blob))


def test_a_lost_or_damaged_sketch_gives_a_failed_run_naming_it(settings: Settings) -> None:
    if not str(settings.blob_uri).startswith("/"):
        pytest.skip("the sketch blob is damaged through the local blob folder")
    with Client(settings) as client:
        path = _sketch_path(client)
        original = path.read_bytes()
        path.chmod(0o644)
        path.write_bytes(b"LWSKETCH\x01" + b"\xff" * 40)
        damaged = client.monitoring.run("mon", at=SHIFTED)
        assert damaged.status == "failed" and damaged.error is not None
        assert "reference 'dataset:ref@v1' is damaged" in damaged.error, damaged.error
        path.unlink()
        lost = client.monitoring.run("mon", at=SHIFTED)
        assert lost.status == "failed" and lost.error is not None
        assert "missing from the blob store" in lost.error, lost.error
        assert client.monitoring.alerts(monitor="mon") == []  # failed runs open nothing
        path.write_bytes(original)
        assert client.monitoring.run("mon", at=SHIFTED).status == "ok"
        assert [r.status for r in client.monitoring.history("mon")] == ["ok", "failed", "failed"]


def test_a_reference_outlives_its_dataset_files(settings: Settings, tmp_path: Path) -> None:
    """The monitor runs on its stored sketch: the dataset's own files are not read again."""
    with Client(settings) as client:
        reference = client.monitoring.references()[0]
        blobs = Path(str(settings.blob_uri))
        if not blobs.is_dir():
            pytest.skip("local blob folder only")
        removed = 0
        for path in blobs.rglob("*"):
            if (
                path.is_file()
                and path.name != reference.sketch_blob
                and "predictions" not in str(path.relative_to(blobs))
                and path != _sketch_path(client)
            ):
                path.chmod(0o644)
                path.unlink()
                removed += 1
        assert removed > 0
        run = client.monitoring.run("mon", at=SHIFTED)
        assert run.status == "ok", run.error


def test_two_creates_of_one_name_at_once_give_one_monitor(settings: Settings) -> None:
    from loopwright.errors import AlreadyExists

    outcomes: list[object] = []
    barrier = threading.Barrier(3)

    def create() -> None:
        with Client(settings) as client:
            barrier.wait(timeout=60)
            try:
                outcomes.append(client.monitoring.create("twin", deployment=DEPLOYMENT))
            except BaseException as exc:  # the loser's error is the assertion's subject
                outcomes.append(exc)

    threads = [threading.Thread(target=create) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(outcomes) == 3 and len(errors) == 2, outcomes
    for error in errors:
        assert isinstance(error, AlreadyExists) and "twin" in str(error), repr(error)
    with Client(settings) as client:
        assert [m.name for m in client.monitoring.list()].count("twin") == 1
