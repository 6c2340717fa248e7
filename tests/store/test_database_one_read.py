"""``Database.one_read``: the reads inside the block share its connection and snapshot."""

from __future__ import annotations

import pytest

from loopwright.store.database import Database


def test_reads_inside_one_read_share_its_transaction(db_uri: str) -> None:
    db = Database.open(db_uri)
    try:
        with db.write() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        with db.one_read() as shared:
            with db.read() as first, db.read() as second:
                assert first is shared and second is shared
            with db.one_read() as nested:
                assert nested is shared
        with db.read() as alone, db.read() as other:
            assert alone is not other  # outside the block, each read has its own
    finally:
        db.dispose()


def test_an_error_inside_one_read_ends_the_block(db_uri: str) -> None:
    db = Database.open(db_uri)
    try:
        with pytest.raises(ZeroDivisionError), db.one_read(), db.read():
            1 / 0  # noqa: B018
        with db.one_read() as fresh, db.read() as inner:
            assert inner is fresh
            assert inner.exec_driver_sql("SELECT 1").scalar_one() == 1
    finally:
        db.dispose()
