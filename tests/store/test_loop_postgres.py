"""A PostgreSQL nonblocking block: its round trips awaited on the event loop's own connections."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from sqlalchemy.util.concurrency import greenlet_spawn

from loopwright.errors import StoreError
from loopwright.server._hot import run_hot
from loopwright.store._loop_postgres import LoopPool
from loopwright.store.database import Database, WouldBlock, in_nonblocking_block
from loopwright.tracking._round_trip import read_all, write_all, write_returning

pytestmark = pytest.mark.postgres

T = TypeVar("T")


@pytest.fixture
def db(pg_uri: str) -> Iterator[Database]:
    db = Database.open(pg_uri)
    with db.write() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x BIGINT PRIMARY KEY)")
    yield db
    db.dispose()


def _in_block(db: Database, work: Callable[[], T]) -> Callable[[], T]:
    def block() -> T:
        with db.nonblocking():
            return work()

    return block


def _write(db: Database, queries: list[tuple[str, list[Any]]]) -> Awaitable[list[int]]:
    """``write_all(db, queries)`` in a block, awaited on the running loop."""
    return greenlet_spawn(_in_block(db, lambda: write_all(db, queries)))


def _on_loop(db: Database, work: Callable[[], T]) -> T:
    return asyncio.run(greenlet_spawn(_in_block(db, work)))


def _values(db: Database) -> list[int]:
    return [row[0] for row in read_all(db, [("SELECT x FROM t ORDER BY x", [])])[0]]


def test_a_block_awaits_its_round_trips_on_the_loop_and_they_commit(db: Database) -> None:
    def work() -> Any:
        assert in_nonblocking_block() and db.loop_round_trips() is not None
        changed = write_all(
            db, [("INSERT INTO t VALUES (?)", [1]), ("INSERT INTO t VALUES (?)", [2])]
        )
        returned = write_returning(db, [("UPDATE t SET x = x + 10 WHERE x = ? RETURNING x", [2])])
        return changed, returned, read_all(db, [("SELECT count(*) FROM t", [])])

    changed, returned, counted = _on_loop(db, work)
    assert changed == [1, 1] and returned == [[(12,)]] and counted == [[(2,)]]
    assert _values(db) == [1, 12]  # committed: seen from the engine's own connections
    assert db.loop_round_trips() is None  # the block is over


def test_a_transaction_of_the_ordinary_kind_would_block_and_nothing_is_written(
    db: Database,
) -> None:
    for transaction in (db.read, db.write, db.one_read):

        def work(transaction: Callable[[], Any] = transaction) -> None:
            with transaction() as conn:
                conn.exec_driver_sql("INSERT INTO t VALUES (1)")

        with pytest.raises(WouldBlock, match="wait on the event loop"):
            _on_loop(db, work)
    assert _values(db) == []


def test_after_a_write_that_changed_rows_a_would_block_is_an_error_not_a_retry(
    db: Database,
) -> None:
    def nothing_changed() -> None:
        assert write_all(db, [("UPDATE t SET x = 2 WHERE x = ?", [1])]) == [0]
        with db.read():
            pass

    with pytest.raises(WouldBlock):  # running it again would repeat nothing: a retry is safe
        _on_loop(db, nothing_changed)

    def wrote() -> None:
        write_all(db, [("INSERT INTO t VALUES (?)", [1])])
        with db.read():
            pass

    with pytest.raises(StoreError, match="after a write") as raised:
        _on_loop(db, wrote)
    assert not isinstance(raised.value, WouldBlock)
    assert _values(db) == [1]


def test_a_block_runs_only_in_a_greenlet_and_does_not_nest(db: Database) -> None:
    with pytest.raises(RuntimeError, match="greenlet_spawn"), db.nonblocking():
        pass

    def nested() -> None:
        with db.nonblocking():
            pass

    with pytest.raises(RuntimeError, match="nest"):
        _on_loop(db, nested)


def test_errors_are_sqlalchemys_and_the_connection_is_reused_after_them(db: Database) -> None:
    async def main() -> None:
        def repeat() -> None:
            write_all(db, [("INSERT INTO t VALUES (?)", [1]), ("INSERT INTO t VALUES (?)", [1])])

        with pytest.raises(sa.exc.IntegrityError):
            await greenlet_spawn(_in_block(db, repeat))
        with pytest.raises(sa.exc.ProgrammingError):
            await greenlet_spawn(_in_block(db, lambda: read_all(db, [("SELECT nope", [])])))
        pool = db._loop_pools[asyncio.get_running_loop()]
        assert len(pool._idle) == 1  # an error leaves the connection idle: it goes back
        await _write(db, [("INSERT INTO t VALUES (?)", [3])])
        assert len(pool._idle) == 1

    asyncio.run(main())
    assert _values(db) == [3]  # the refused pair left nothing


def test_a_value_the_driver_refuses_stops_the_round_trip_before_anything_is_sent(
    db: Database,
) -> None:
    async def main() -> None:
        with pytest.raises(sa.exc.DataError, match="NUL"):
            await _write(
                db, [("INSERT INTO s VALUES (?)", ["ok"]), ("INSERT INTO s VALUES (?)", ["a\x00b"])]
            )
        # Every value is adapted before the first statement goes: nothing was sent, and the
        # connection, untouched, is reused.
        pool = db._loop_pools[asyncio.get_running_loop()]
        ((link, _),) = pool._idle
        # A value PostgreSQL refuses (out of BIGINT's range): the Sync undoes the pair, and the
        # connection, idle again, is reused.
        with pytest.raises(sa.exc.DataError, match="out of range"):
            await _write(
                db, [("INSERT INTO t VALUES (?)", [1]), ("INSERT INTO t VALUES (?)", [2**70])]
            )
        assert [kept for kept, _ in pool._idle] == [link] and not link.closed

    with db.write() as conn:
        conn.exec_driver_sql("CREATE TABLE s (v TEXT)")
    asyncio.run(main())
    assert _values(db) == []
    assert read_all(db, [("SELECT count(*) FROM s", [])]) == [[(0,)]]


def test_statements_are_prepared_once_and_kept_through_errors(db: Database) -> None:
    insert = "INSERT INTO t VALUES (?)"

    async def main() -> None:
        await _write(db, [(insert, [1]), (insert, [2])])  # one Parse, run twice
        pool = db._loop_pools[asyncio.get_running_loop()]
        ((link, _),) = pool._idle
        assert len(link.names) == 1
        # A Parse answered in a round trip that then fails (a repeated key) still stands: the
        # statements prepared by it are used after, and nothing of the failed pair stays.
        select = ("SELECT x FROM t WHERE x = ?", [1])
        with pytest.raises(sa.exc.IntegrityError):
            await greenlet_spawn(
                _in_block(db, lambda: write_returning(db, [select, (insert, [2])]))
            )
        assert len(link.names) == 2
        await _write(db, [(insert, [3])])
        found = await greenlet_spawn(_in_block(db, lambda: read_all(db, [select])))
        assert found == [[(1,)]] and len(link.names) == 2
        # A statement refused by its Parse is not kept, and the rest of its round trip is
        # refused with it.
        with pytest.raises(sa.exc.ProgrammingError):
            await _write(db, [(insert, [4]), ("INSERT INTO nowhere VALUES (?)", [1])])
        assert len(link.names) == 2 and pool._idle[0][0] is link

    asyncio.run(main())
    assert _values(db) == [1, 2, 3]


def test_a_table_changed_under_a_prepared_statement_costs_one_error_not_a_broken_pool(
    db: Database,
) -> None:
    read = ("SELECT * FROM t WHERE x = ?", [1])

    async def main() -> None:
        await _write(db, [("INSERT INTO t VALUES (?)", [1])])
        assert await greenlet_spawn(_in_block(db, lambda: read_all(db, [read]))) == [[(1,)]]
        ((link, _),) = db._loop_pools[asyncio.get_running_loop()]._idle
        with db.write() as conn:  # another process's migration, say
            conn.exec_driver_sql("ALTER TABLE t ADD COLUMN y TEXT DEFAULT 'new'")
        with pytest.raises(sa.exc.NotSupportedError, match="cached plan"):
            await greenlet_spawn(_in_block(db, lambda: read_all(db, [read])))
        assert link.closed  # its prepared statements may be stale: closed, not reused
        assert await greenlet_spawn(_in_block(db, lambda: read_all(db, [read]))) == [[(1, "new")]]

    asyncio.run(main())


def test_a_round_trip_larger_than_the_sockets_buffers_goes_and_comes_back_whole(
    db: Database,
) -> None:
    # ~8 MB out in 2,000 statements, ~8 MB of rows back: more than a socket buffers either way.
    text = "ü" * 2_000

    async def main() -> list[Any]:
        await _write(db, [("INSERT INTO s VALUES (?, ?)", [i, text * 2]) for i in range(2_000)])
        return await greenlet_spawn(
            _in_block(db, lambda: read_all(db, [("SELECT n, v FROM s ORDER BY n", [])]))
        )

    with db.write() as conn:
        conn.exec_driver_sql("CREATE TABLE s (n INT, v TEXT)")
    (rows,) = asyncio.run(main())
    assert rows == [(i, text * 2) for i in range(2_000)]


def test_answers_coming_back_while_the_statements_still_go_out_are_read_meanwhile(
    db: Database,
) -> None:
    # 2,000 reads of ~8 kB each way: PostgreSQL answers the first while the last are still being
    # sent (16 MB in all, more than both sockets buffer), so answers must be taken in while
    # the statements go out (libpq reads when a write would block; the wait wakes on either).
    queries = [("SELECT ?::text || ?", [f"{i}:" + "é" * 2_000, "!"]) for i in range(2_000)]

    async def main() -> list[Any]:
        return await asyncio.wait_for(
            greenlet_spawn(_in_block(db, lambda: read_all(db, queries))), timeout=60
        )

    found = asyncio.run(main())
    assert found == [[(values[0] + "!",)] for _, values in queries]


def test_past_the_limit_statements_go_unnamed(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loopwright.store import _loop_postgres

    monkeypatch.setattr(_loop_postgres, "_PREPARED_MAX", 3)

    async def main() -> None:
        for i in range(8):  # eight texts: three named, five sent unnamed each time
            await _write(db, [(f"INSERT INTO t SELECT ? + {i * 100}", [i])])
            await _write(db, [(f"INSERT INTO t SELECT ? + {i * 100}", [i + 50])])
        ((link, _),) = db._loop_pools[asyncio.get_running_loop()]._idle
        assert len(link.names) == 3

    asyncio.run(main())
    assert _values(db) == sorted([i * 101 for i in range(8)] + [i * 101 + 50 for i in range(8)])


def test_a_cancelled_request_leaves_no_connection_half_used(db: Database) -> None:
    async def main() -> None:
        slow = greenlet_spawn(_in_block(db, lambda: read_all(db, [("SELECT pg_sleep(30)", [])])))
        task = asyncio.create_task(slow)
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        pool = db._loop_pools[asyncio.get_running_loop()]
        assert pool._idle == []  # the cancelled query's connection was closed
        await _write(db, [("INSERT INTO t VALUES (?)", [5])])

    asyncio.run(main())
    assert _values(db) == [5]


def test_many_blocks_at_once_share_at_most_the_pools_size_of_connections(db: Database) -> None:
    size = db.engine.pool.size()  # type: ignore[attr-defined]
    seen: list[int] = []

    async def main() -> None:
        def one(i: int) -> Callable[[], list[int]]:
            return lambda: write_all(db, [("INSERT INTO t SELECT ? FROM pg_sleep(0.05)", [i])])

        await asyncio.gather(*(greenlet_spawn(_in_block(db, one(i))) for i in range(40)))
        seen.append(len(db._loop_pools[asyncio.get_running_loop()]._idle))

    asyncio.run(main())
    assert _values(db) == list(range(40))
    assert 1 < seen[0] <= size


def test_a_connection_gone_while_idle_is_replaced_by_the_ping(db: Database) -> None:
    async def main() -> None:
        pool = LoopPool(db.engine, size=2, ping_after_idle_s=0.0)
        await pool.run([("INSERT INTO t VALUES (%s)".replace("%s", "?"), [1])], rows=False)
        ((link, _),) = pool._idle
        with db.engine.connect() as admin:
            admin.exec_driver_sql(f"SELECT pg_terminate_backend({link.conn.info.backend_pid})")
        await asyncio.sleep(0.2)
        assert await pool.run([("SELECT count(*) FROM t", [])], rows=True) == [[(1,)]]
        assert pool._idle[0][0] is not link and link.closed
        pool.close_now()

    asyncio.run(main())


def test_dispose_closes_the_loops_connections(db: Database) -> None:
    async def main() -> None:
        await greenlet_spawn(_in_block(db, lambda: read_all(db, [("SELECT 1", [])])))
        pool = db._loop_pools[asyncio.get_running_loop()]
        ((link, _),) = pool._idle
        db.dispose()
        assert link.closed and pool.closed and not db._loop_pools
        # The database still works after: a new pool for the loop.
        await _write(db, [("INSERT INTO t VALUES (?)", [9])])

    asyncio.run(main())
    assert _values(db) == [9]


def test_run_hot_awaits_on_the_loop_and_goes_to_the_thread_pool_when_it_would_wait(
    db: Database,
) -> None:
    import threading

    loop_thread: list[int] = []
    ran_in: list[int] = []

    def hot() -> list[int]:
        ran_in.append(threading.get_ident())
        return write_all(db, [("INSERT INTO t VALUES (?)", [len(ran_in)])])

    def reads_first() -> int:
        ran_in.append(threading.get_ident())
        with db.read() as conn:  # would wait on the loop: this one runs in a thread
            return int(conn.exec_driver_sql("SELECT count(*) FROM t").scalar_one())

    async def main() -> tuple[list[int], int]:
        loop_thread.append(threading.get_ident())
        return await run_hot(db, hot), await run_hot(db, reads_first)

    assert asyncio.run(main()) == ([1], 1)
    assert ran_in[0] == loop_thread[0]  # the write, awaited on the loop
    assert ran_in[1] == loop_thread[0] and ran_in[2] != loop_thread[0]  # tried, then a thread


def test_a_closed_loops_connections_are_closed_when_another_loop_comes(db: Database) -> None:
    kept: list[Any] = []  # the first loop stays referenced: only the pruning can close its pool

    async def first() -> None:
        await _write(db, [("INSERT INTO t VALUES (?)", [len(kept)])])
        kept.extend([asyncio.get_running_loop(), db._loop_pools[asyncio.get_running_loop()]])

    asyncio.run(first())
    loop, pool = kept[:2]
    ((link, _),) = pool._idle
    assert loop.is_closed() and not link.closed
    asyncio.run(first())  # a second loop: a pool of its own, the closed loop's pool closed
    assert link.closed and pool.closed and loop not in db._loop_pools
