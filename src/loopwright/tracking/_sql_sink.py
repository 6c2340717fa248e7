"""The embedded metric writer's sink: batches of points written to the database in one commit."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import sqlalchemy as sa

from .._ids import now_ms
from ..store import statements
from ._writer import HEARTBEAT_INTERVAL_S, Point, PointsRefused, RunRefused

if TYPE_CHECKING:
    from ..store.database import Database

__all__ = ["SqlSink", "write_points"]

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
        with self._db.write() as conn:
            touched = self._write_points(conn, rows)
            due = {
                r for r in touched if clock - self._beaten.get(r, -math.inf) >= HEARTBEAT_INTERVAL_S
            }
            due.update(heartbeats)
            if due:
                ids = statements.marks(len(due))
                update = f"UPDATE runs SET heartbeat_at = ? WHERE id IN ({ids})"  # noqa: S608
                statements.execute(conn, update, [now, *sorted(due)])
            if then is not None:
                then(conn)
        if len(self._beaten) > _REMEMBERED_RUNS:
            self._beaten.clear()
        self._beaten.update(dict.fromkeys(due, clock))

    @staticmethod
    def _write_points(conn: sa.Connection, rows: list[Point]) -> set[str]:
        if not rows:
            return set()
        try:
            return write_points(conn, rows)
        except sa.exc.IntegrityError as exc:  # the run's row is gone (a foreign key)
            raise RunRefused(f"{exc.orig}; was the run deleted?") from exc
        except _TRANSIENT:
            raise
        except (sa.exc.SQLAlchemyError, ArithmeticError, ValueError, TypeError) as exc:
            raise PointsRefused(f"the database refused them: {exc}") from exc


_POINT_COLUMNS = ("run_id", "key", "step", "timestamp", "value", "is_nan")
_LATEST_UPDATE = (
    " ON CONFLICT (run_id, key) DO UPDATE SET step = excluded.step,"
    " timestamp = excluded.timestamp, value = excluded.value, is_nan = excluded.is_nan"
    " WHERE (excluded.step, excluded.timestamp)"
    " >= (latest_metrics.step, latest_metrics.timestamp)"
)


def write_points(conn: sa.Connection, rows: list[Point]) -> set[str]:
    """Append points (repeats ignored), move ``latest_metrics`` forward; return the run ids."""
    statements.insert_many(conn, "metrics", _POINT_COLUMNS, rows, " ON CONFLICT DO NOTHING")
    latest: dict[tuple[str, str], Point] = {}
    for row in rows:
        key = (row[0], row[1])
        best = latest.get(key)
        if best is None or (row[2], row[3]) >= (best[2], best[3]):
            latest[key] = row
    statements.insert_many(
        conn, "latest_metrics", _POINT_COLUMNS, list(latest.values()), _LATEST_UPDATE
    )
    return {row[0] for row in latest.values()}
