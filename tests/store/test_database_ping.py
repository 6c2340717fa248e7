"""PostgreSQL connections are pinged on checkout only after sitting idle, and one that died
while idle (a database restart, an administrator's kill) is replaced before it is used."""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa

from loopwright.store import database
from loopwright.store.database import Database


def _backend_pid(db: Database) -> int:
    with db.read() as conn:
        return int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())


def test_a_connection_killed_while_idle_is_replaced(pg_uri: str) -> None:
    db = Database.open(pg_uri)
    admin = sa.create_engine(pg_uri, isolation_level="AUTOCOMMIT")
    try:
        before = _backend_pid(db)
        with admin.connect() as conn:
            conn.exec_driver_sql(f"SELECT pg_terminate_backend({before})")
        time.sleep(database._PING_AFTER_IDLE_S + 0.1)
        after = _backend_pid(db)  # no error: the dead connection was found on checkout
        assert after != before
    finally:
        db.dispose()
        admin.dispose()


def test_a_busy_connection_is_not_pinged(pg_uri: str) -> None:
    db = Database.open(pg_uri)
    pings: list[object] = []
    original = db.engine.dialect.do_ping

    def counting_ping(connection: Any) -> bool:
        pings.append(connection)
        return original(connection)

    db.engine.dialect.do_ping = counting_ping  # type: ignore[method-assign,assignment]
    try:
        for _ in range(5):
            _backend_pid(db)
        assert pings == []
    finally:
        db.dispose()
