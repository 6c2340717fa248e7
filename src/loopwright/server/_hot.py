"""The hot requests run on the event loop when the database lets them, else in the thread pool.

A ``def`` handler costs a hop to FastAPI's thread pool and back (~0.1-0.2 ms a request on this
project's 2-core machine, more under load): as much as the handler's own work for MLflow's
log-metric, runs/create, runs/get and runs/update. Running them on the event loop is safe only if
they cannot wait there, so :func:`run_hot` runs the work inside
:meth:`~loopwright.store.database.Database.nonblocking`. On SQLite a lock held elsewhere fails
at once, before anything is committed, and the same work then runs in the thread pool, where
waiting on the busy timeout stalls nobody else. On PostgreSQL the work runs in a greenlet and
awaits its round trips on the loop, which serves other requests meanwhile; what would wait
otherwise (a transaction of the ordinary kind, the metric writer's lock) sends it to the thread
pool the same way.

The work given must be safe to run twice up to its one write (see ``nonblocking``): a handler
whose request writes in several transactions is not hot.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.util.concurrency import greenlet_spawn
from starlette.concurrency import run_in_threadpool

from ..store.database import Database, WouldBlock

__all__ = ["run_hot"]

T = TypeVar("T")


async def run_hot(db: Database, work: Callable[[], T]) -> T:
    """``work()`` on the event loop without waiting on ``db``; in the thread pool if it would."""
    try:
        if db.nonblocking_awaits:
            return await greenlet_spawn(_nonblocking, db, work)
        return _nonblocking(db, work)
    except WouldBlock:
        pass  # nothing committed: run it where it may wait
    return await run_in_threadpool(work)


def _nonblocking(db: Database, work: Callable[[], T]) -> T:
    with db.nonblocking():
        return work()
