"""The embedded metric writer's sink: batches of points written to the database in one commit."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import sqlalchemy as sa

from .._ids import now_ms
from ..store import statements
from ._writer import Point, PointsRefused, RunRefused

if TYPE_CHECKING:
    from ..store.database import Database

__all__ = ["SqlSink", "write_points"]

# A failure of the connection or of locking: the same points may well go in on the next try.
_TRANSIENT = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError, OSError)


class SqlSink:
    """Writes points, heartbeats and the caller's ``then`` in one transaction of ``db``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def write(
        self,
        rows: list[Point],
        heartbeats: Sequence[str],
        then: Callable[[sa.Connection], None] | None,
    ) -> None:
        now = now_ms()
        with self._db.write() as conn:
            touched = self._write_points(conn, rows)
            touched.update(heartbeats)
            if touched:
                ids = statements.marks(len(touched))
                update = f"UPDATE runs SET heartbeat_at = ? WHERE id IN ({ids})"  # noqa: S608
                statements.execute(conn, update, [now, *sorted(touched)])
            if then is not None:
                then(conn)

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
