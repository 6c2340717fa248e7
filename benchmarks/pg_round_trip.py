"""One PostgreSQL round trip on an event loop: this process's CPU and the wall time it costs.

    .venv/bin/python benchmarks/pg_round_trip.py [--pg-uri URI] [--trips 3000] [--repeat 3]

The workload is a server's hot request's database work, reduced: an ``INSERT`` of a metric point
(text, float, integer) committed, then a primary-key read of one row, each its own round trip,
on one connection, on uvloop (as ``loopwright server`` runs). Three ways, each timed in turn
(``--repeat`` rounds, the median per way):

- ``loop pool``: Loopwright's :class:`~loopwright.store._loop_postgres.LoopPool`, which the server's
  hot requests use (psycopg's libpq wrapper, below its cursors: prepared statements from the first
  use, psycopg's own adapters);
- ``psycopg cursor``: an ``AsyncConnection`` in autocommit and its cursors, as the pool sent before
  (psycopg prepares a statement after its fifth use);
- ``asyncpg``: its ``execute`` and ``fetch``, when asyncpg is installed (it is no dependency of
  ours: the reference a Python async PostgreSQL driver is measured against).

``--pg-uri`` defaults to ``$LOOPWRIGHT_TEST_PG_URI`` (``eval "$(scripts/services.sh env)"``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

INSERT = "INSERT INTO lw_bench_trip (k, v, s) VALUES (?, ?, ?)"
READ = "SELECT id, k, v, s FROM lw_bench_trip WHERE id = ?"
Trip = Callable[[int], Awaitable[Any]]


async def _ways(uri: str) -> dict[str, Trip]:
    import psycopg
    import sqlalchemy as sa

    from loopwright.store._loop_postgres import LoopPool

    engine = sa.create_engine(uri.replace("postgresql://", "postgresql+psycopg://", 1))
    pool = LoopPool(engine, size=1, ping_after_idle_s=60.0)

    async def loop_pool(i: int) -> Any:
        await pool.run([(INSERT, ("loss", 0.5 * i, i))], rows=False)
        return await pool.run([(READ, (i % 100 + 1,))], rows=True)

    plain = uri.replace("postgresql+psycopg://", "postgresql://", 1)
    conn = await psycopg.AsyncConnection.connect(plain, autocommit=True)

    async def psycopg_cursor(i: int) -> Any:
        async with conn.cursor() as cursor:
            await cursor.execute(INSERT.replace("?", "%s"), ("loss", 0.5 * i, i))
        async with conn.cursor() as cursor:
            await cursor.execute(READ.replace("?", "%s"), (i % 100 + 1,))
            return await cursor.fetchall()

    ways: dict[str, Trip] = {"loop pool": loop_pool, "psycopg cursor": psycopg_cursor}
    try:
        import asyncpg
    except ImportError:
        return ways
    apg = await asyncpg.connect(plain)
    numbered = (
        "INSERT INTO lw_bench_trip (k, v, s) VALUES ($1, $2, $3)",
        "SELECT id, k, v, s FROM lw_bench_trip WHERE id = $1",
    )

    async def asyncpg_fetch(i: int) -> Any:
        await apg.execute(numbered[0], "loss", 0.5 * i, i)
        return await apg.fetch(numbered[1], i % 100 + 1)

    ways["asyncpg"] = asyncpg_fetch
    return ways


async def main(uri: str, trips: int, repeat: int) -> None:
    import psycopg

    plain = uri.replace("postgresql+psycopg://", "postgresql://", 1)
    async with await psycopg.AsyncConnection.connect(plain, autocommit=True) as admin:
        await admin.execute("DROP TABLE IF EXISTS lw_bench_trip")
        await admin.execute(
            "CREATE TABLE lw_bench_trip (id BIGSERIAL PRIMARY KEY, k TEXT, v DOUBLE PRECISION,"
            " s BIGINT)"
        )
    try:
        ways = await _ways(uri)
        for trip in ways.values():  # warm: connections made, statements prepared
            for i in range(20):
                await trip(i)
        cpu: dict[str, list[float]] = {name: [] for name in ways}
        wall: dict[str, list[float]] = {name: [] for name in ways}
        for _ in range(repeat):
            for name, trip in ways.items():
                c0, w0 = time.process_time(), time.perf_counter()
                for i in range(trips):
                    await trip(i)
                # Two round trips an iteration.
                cpu[name].append((time.process_time() - c0) / trips / 2 * 1e6)
                wall[name].append((time.perf_counter() - w0) / trips / 2 * 1e6)
        base = statistics.median(cpu["psycopg cursor"])
        print(f"{'way':16} {'cpu us/trip':>12} {'wall us/trip':>13} {'cpu vs cursor':>14}")
        for name in ways:
            c, w = statistics.median(cpu[name]), statistics.median(wall[name])
            print(f"{name:16} {c:12.1f} {w:13.1f} {c / base:13.2f}x")
    finally:
        async with await psycopg.AsyncConnection.connect(plain, autocommit=True) as admin:
            await admin.execute("DROP TABLE IF EXISTS lw_bench_trip")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg-uri", default=os.environ.get("LOOPWRIGHT_TEST_PG_URI"))
    parser.add_argument("--trips", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not args.pg_uri:
        sys.exit("give --pg-uri, or set LOOPWRIGHT_TEST_PG_URI (scripts/services.sh env)")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    import uvloop

    uvloop.run(main(args.pg_uri, args.trips, args.repeat))
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
