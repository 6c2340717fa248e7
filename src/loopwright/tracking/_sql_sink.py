"""The embedded metric writer's sink: batches of points written to the database in one commit."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import sqlalchemy as sa

from .._ids import now_ms
from ..store import statements
from ._round_trip import Query, write_all
from ._writer import HEARTBEAT_INTERVAL_S, Point, PointsRefused, RunRefused

if TYPE_CHECKING:
    from ..store.database import Database

__all__ = ["SqlSink"]

_REMEMBERED_RUNS = 10_000  # runs whose last heartbeat time the sink keeps
# A failure of the connection or of locking: the same points may well go in on the next try.
_TRANSIENT = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError, OSError)


class SqlSink:
    """Writes points, heartbeats and the caller's ``then`` in one transaction of ``db``.

    A run that gets points is marked alive too, at most once per ``HEARTBEAT_INTERVAL_S``: a
    server acknowledging one point per request would otherwise rewrite the run's row (one more
    statement, and on PostgreSQL one more round trip) in every commit.
    """

    def __init__(self, db: Database, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._db = db
        self._clock = clock
        self._beaten: dict[str, float] = {}  # run id -> when its heartbeat was last written

    def write(
        self,
        rows: list[Point],
        heartbeats: Sequence[str],
        then: Callable[[sa.Connection], None] | None,
    ) -> None:
        now, clock = now_ms(), self._clock()
        latest = _latest(rows)
        due = {
            row[0]
            for row in latest
            if clock - self._beaten.get(row[0], -math.inf) >= HEARTBEAT_INTERVAL_S
        }
        due.update(heartbeats)
        beat = [_heartbeat(now, due)] if due else []
        points = _point_queries(self._db.dialect, rows, latest) if rows else []
        if then is None and self._db.dialect == "postgresql":
            # A server's log-metric: the inserts and any heartbeat in one round trip, one
            # transaction committed before this returns (._round_trip).
            queries = [*points, *beat]
            # Different tables each: one statement (write_all's ``together``).
            _refusing_points(lambda: write_all(self._db, queries, together=True))
        else:
            with self._db.write() as conn:

                def store_points() -> None:
                    for sql, values in points:
                        statements.execute(conn, sql, values)

                _refusing_points(store_points)
                for sql, values in beat:
                    statements.execute(conn, sql, values)
                if then is not None:
                    then(conn)
        if len(self._beaten) > _REMEMBERED_RUNS:
            self._beaten.clear()
        self._beaten.update(dict.fromkeys(due, clock))


def _refusing_points(write: Callable[[], object]) -> None:
    """Run ``write``; the database's refusal of the points raised as the writer's errors."""
    try:
        write()
    except sa.exc.IntegrityError as exc:  # the run's row is gone (a foreign key)
        raise RunRefused(f"{exc.orig}; was the run deleted?") from exc
    except _TRANSIENT:
        raise
    except (sa.exc.SQLAlchemyError, ArithmeticError, ValueError, TypeError) as exc:
        raise PointsRefused(f"the database refused them: {exc}") from exc


def _heartbeat(now: int, run_ids: set[str]) -> Query:
    ids = statements.marks(len(run_ids))
    update = f"UPDATE runs SET heartbeat_at = ? WHERE id IN ({ids})"  # noqa: S608
    return update, [now, *sorted(run_ids)]


_POINT_COLUMNS = ("run_id", "key", "step", "timestamp", "value", "is_nan")
_LATEST_UPDATE = (
    " ON CONFLICT (run_id, key) DO UPDATE SET step = excluded.step,"
    " timestamp = excluded.timestamp, value = excluded.value, is_nan = excluded.is_nan"
    " WHERE (excluded.step, excluded.timestamp)"
    " >= (latest_metrics.step, latest_metrics.timestamp)"
)


def _latest(rows: list[Point]) -> list[Point]:
    """Each (run, key)'s newest point of ``rows`` (by step, then time)."""
    latest: dict[tuple[str, str], Point] = {}
    newest = latest.get
    for row in rows:  # a log-batch flushes 1,000: no tuples built to compare (step, time)
        key = (row[0], row[1])
        best = newest(key)
        if best is None or row[2] > best[2] or (row[2] == best[2] and row[3] >= best[3]):
            latest[key] = row
    return list(latest.values())


_FEW_POINTS = 10  # on PostgreSQL, up to this many points go as rows of values, not arrays


def _point_queries(dialect: str, rows: list[Point], latest: list[Point]) -> list[Query]:
    """Multi-row INSERTs of the points into ``metrics`` and of ``latest`` into
    ``latest_metrics``, in chunks within the driver's limit on bound values (on PostgreSQL,
    one INSERT of arrays per table, unless the points are few: one-call logging's single point
    costs psycopg more to dump as six arrays than as one row of values)."""
    if dialect == "postgresql" and len(rows) > _FEW_POINTS:
        return [
            _unnest("metrics", rows, " ON CONFLICT DO NOTHING"),
            _unnest("latest_metrics", latest, _LATEST_UPDATE),
        ]
    if dialect == "postgresql":
        size = _FEW_POINTS  # a short statement: psycopg parses it once and caches it
    else:
        size = max(1, statements._max_parameters(dialect) // len(_POINT_COLUMNS))
    return [
        *_inserts("metrics", rows, " ON CONFLICT DO NOTHING", size),
        *_inserts("latest_metrics", latest, _LATEST_UPDATE, size),
    ]


def _inserts(table: str, rows: list[Point], suffix: str, size: int) -> list[Query]:
    found: list[Query] = []
    for start in range(0, len(rows), size):
        chunk = rows[start : start + size]
        sql = statements.insert_text(table, _POINT_COLUMNS, len(chunk), suffix)
        found.append((sql, [value for row in chunk for value in row]))
    return found


# psycopg rewrites a statement's placeholders with a regular expression on every execution of a
# statement longer than its cache takes (4 kB): a 1,000-point multi-row INSERT (6,000
# placeholders) cost ~30 ms of CPU in that alone. Six arrays, one per column, make a short
# statement whatever the count, which psycopg parses once and PostgreSQL can prepare.
_UNNEST = (
    "SELECT * FROM unnest(?::text[], ?::text[], ?::bigint[], ?::bigint[], ?::float8[], ?::bool[])"
)


def _unnest(table: str, rows: list[Point], suffix: str) -> Query:
    names = ", ".join(f'"{column}"' for column in _POINT_COLUMNS)
    columns = [list(column) for column in zip(*rows, strict=True)] if rows else [[]] * 6
    return f"INSERT INTO {table} ({names}) {_UNNEST}{suffix}", columns
