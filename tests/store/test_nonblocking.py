"""Database.nonblocking on SQLite: what a server's event loop may run without waiting on locks
(PostgreSQL's: test_loop_postgres.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from loopwright.errors import StoreError
from loopwright.store.database import Database, WouldBlock, in_nonblocking_block


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    db = Database.open(f"sqlite:///{tmp_path / 'store.db'}")
    with db.write() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    yield db
    db.dispose()


def _values(db: Database) -> list[int]:
    with db.read() as conn:
        return [row[0] for row in conn.exec_driver_sql("SELECT x FROM t ORDER BY x")]


def _hold_write_lock(db: Database) -> sa.Connection:
    other = db.engine.connect()
    other.begin()
    other.exec_driver_sql("INSERT INTO t VALUES (100)")
    return other


def test_writes_and_reads_of_a_block_commit_on_the_kept_connection(db: Database) -> None:
    with db.nonblocking():
        assert in_nonblocking_block()
        with db.write() as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
            with db.read() as inner:  # a read inside the write shares its transaction
                assert inner.exec_driver_sql("SELECT count(*) FROM t").scalar() == 1
        with db.one_read(), db.read() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 1
    assert not in_nonblocking_block()
    assert _values(db) == [1]


def test_a_held_write_lock_fails_the_block_at_once_and_nothing_is_written(db: Database) -> None:
    other = _hold_write_lock(db)
    try:
        started = time.monotonic()
        with pytest.raises(WouldBlock, match="busy"), db.nonblocking(), db.write() as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        assert time.monotonic() - started < 0.5  # not the 60 s busy timeout
        with db.nonblocking(), db.read() as conn:  # WAL: reads go on beside the writer
            assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 0
    finally:
        other.commit()
        other.close()
    with db.nonblocking(), db.write() as conn:  # the kept connection is usable again
        conn.exec_driver_sql("INSERT INTO t VALUES (2)")
    assert _values(db) == [2, 100]


def test_a_write_inside_a_read_would_block(db: Database) -> None:
    with pytest.raises(WouldBlock), db.nonblocking(), db.read(), db.write():
        pass
    assert _values(db) == []


def test_after_a_write_the_next_transaction_waits_for_the_lock(db: Database) -> None:
    """Running the block again would repeat its first write, so its second one waits (up to a
    second) for a lock taken meanwhile instead of failing."""
    holder: list[sa.Connection] = []

    def hold_briefly() -> None:
        holder.append(_hold_write_lock(db))
        time.sleep(0.2)
        holder[0].commit()
        holder[0].close()

    with db.nonblocking():
        with db.write() as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        thread = threading.Thread(target=hold_briefly)
        thread.start()
        while not holder:
            time.sleep(0.005)
        with db.write() as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (2)")
        thread.join()
    assert _values(db) == [1, 2, 100]


def test_a_would_block_after_a_commit_is_an_error_not_a_retry(db: Database) -> None:
    with pytest.raises(StoreError, match="busy after a write") as caught, db.nonblocking():
        with db.write() as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        with db.read(), db.write():  # would block: but the first write is committed
            pass
    assert not isinstance(caught.value, WouldBlock)
    assert _values(db) == [1]


def test_another_thread_and_nesting_are_refused(db: Database) -> None:
    with db.nonblocking():
        pass
    errors: list[BaseException] = []

    def elsewhere() -> None:
        try:
            with db.nonblocking():
                pass
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join()
    assert len(errors) == 1 and isinstance(errors[0], WouldBlock)
    with pytest.raises(RuntimeError, match="nest"), db.nonblocking(), db.nonblocking():
        pass
