"""What the tracking service's parts share: the stores and the run lookups."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ..errors import Conflict, NotFound
from ..store import schema as t
from ..store.database import Database
from ..store.home import Store

__all__ = ["ServiceBase"]


class ServiceBase:
    """The stores a tracking service works on, and the checks every part makes on a run."""

    store: Store
    db: Database

    def _require_run(self, conn: sa.Connection, run_id: str) -> sa.Row[Any]:
        row = conn.execute(sa.select(t.runs).where(t.runs.c.id == run_id)).first()
        if row is None:
            raise NotFound(
                f"run {run_id!r} does not exist; `loopwright runs list` shows recent runs"
            )
        return row

    def _require_active(self, conn: sa.Connection, run_id: str) -> None:
        row = self._require_run(conn, run_id)
        if row.lifecycle_stage != "active":
            raise Conflict(f"run {run_id!r} is deleted; restore it before logging to it")
