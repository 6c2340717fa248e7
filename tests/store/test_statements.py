"""Raw statements on the driver's cursor (store/statements.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from loopwright.config import resolve_settings
from loopwright.errors import InvalidInput, NotFound
from loopwright.store import statements
from loopwright.store.database import Database
from loopwright.store.home import open_store
from loopwright.tracking.entities import RunStatus
from loopwright.tracking.service import TrackingService


@pytest.fixture
def db(db_uri: str) -> Database:
    database = Database.open(db_uri)
    with database.write() as conn:
        conn.exec_driver_sql("CREATE TABLE t (k VARCHAR(10) PRIMARY KEY, n INTEGER)")
    return database


def test_insert_many_chunks_within_the_parameter_limit(db: Database) -> None:
    rows = [(f"k{i}", i) for i in range(20_001)]  # more than one statement's worth
    with db.write() as conn:
        statements.insert_many(conn, "t", ("k", "n"), rows)
        statements.insert_many(conn, "t", ("k", "n"), rows[:5], " ON CONFLICT DO NOTHING")
        assert statements.fetch(conn, "SELECT COUNT(*), SUM(n) FROM t") == [
            (20_001, sum(range(20_001)))
        ]
        assert statements.execute(conn, "UPDATE t SET n = ? WHERE n < ?", (0, 10)) == 10
    db.dispose()


def test_driver_errors_are_sqlalchemy_errors_and_roll_back(db: Database) -> None:
    with pytest.raises(sa.exc.IntegrityError), db.write() as conn:
        statements.execute(conn, "INSERT INTO t (k, n) VALUES (?, ?)", ("a", 1))
        statements.execute(conn, "INSERT INTO t (k, n) VALUES (?, ?)", ("a", 2))
    with db.read() as conn:
        assert statements.fetch(conn, "SELECT k FROM t") == []
    db.dispose()


def test_run_lifecycle_on_raw_statements(db_uri: str, tmp_path: Path) -> None:
    store = open_store(resolve_settings(home=tmp_path / "home", db_uri=db_uri))
    tracking = TrackingService(store, capture=False)
    try:
        run = tracking.create_run(experiment="e", name="r", tags={"t": "1"})
        tracking.log_params(run.id, {"a": 1, "b": "x"})
        with pytest.raises(InvalidInput, match="immutable"):
            tracking.log_params(run.id, {"a": 2})
        tracking.log_metrics(run.id, {"m": 0.5})
        tracking.end_run(run.id)
        stored = tracking.get_run(run.id)
        assert (stored.status, stored.params, stored.tags["t"]) == (
            RunStatus.FINISHED,
            {"a": "1", "b": "x"},
            "1",
        )
        assert stored.metrics["m"].value == 0.5
        with pytest.raises(NotFound):
            tracking.end_run("0" * 32)
    finally:
        tracking.close()
        store.close()


def test_data_commands_do_not_import_tracking(tmp_path: Path) -> None:
    program = (
        "import sys\n"
        "from loopwright._backend import Embedded\n"
        "from loopwright.config import resolve_settings\n"
        f"backend = Embedded(resolve_settings(home={str(tmp_path / 'home')!r}))\n"
        "backend.datasets.list_datasets()\n"
        "backend.close()\n"
        "print(sorted(m for m in sys.modules if m.startswith('loopwright.tracking')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )
    assert "loopwright.tracking.service" not in done.stdout
