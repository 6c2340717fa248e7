"""Backfill: a monitor run over every window of a past span, as the scheduler would have run it.

The windows end at ``since + window``, then every ``every`` (or every ``window`` when the
monitor has no schedule) up to ``until``; each run is scored and stored like
``MonitoringService.run(name, at=end)``, oldest first, so alerts open and resolve in time order.

With ``executor="ray"`` up to as many windows as the cluster has CPUs are scored at once (each
pass's column groups run as Ray tasks, see ``_ray``) while storage, alerts and webhooks stay in
the calling process, in window order. Memory holds at most that many windows.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from ..errors import InvalidInput
from ._ray import check_executor, cpus, ray_session
from ._window import span_ms

if TYPE_CHECKING:
    from .entities import Monitor, MonitorRun

__all__ = ["MAX_BACKFILL_RUNS", "parts", "window_ends"]

# One backfill stores at most this many runs: a year of hourly windows.
MAX_BACKFILL_RUNS = 10_000

Scored = tuple["MonitorRun", "str | None"]


def window_ends(
    monitor: Monitor, since: datetime | timedelta, until: datetime | timedelta | None, now: int
) -> list[int]:
    """The ends (UTC ms) of the monitor's windows that fit in ``[since, until]``."""
    if since is None:
        raise InvalidInput("backfill needs since: a datetime, or a timedelta (that long ago)")
    low, high = span_ms(since, until, now)
    assert low is not None
    window, step = monitor.window_s * 1000, (monitor.every_s or monitor.window_s) * 1000
    if low + window > high:
        raise InvalidInput(
            f"monitor {monitor.name!r}: the span from since to until is shorter than its "
            f"window ({timedelta(milliseconds=window)}); give an earlier since"
        )
    count = (high - low - window) // step + 1
    if count > MAX_BACKFILL_RUNS:
        raise InvalidInput(
            f"monitor {monitor.name!r}: the span holds {count} windows, more than "
            f"{MAX_BACKFILL_RUNS} per backfill; give a later since or an earlier until"
        )
    return [low + window + i * step for i in range(count)]


def parts(
    monitor: Monitor,
    since: datetime | timedelta,
    until: datetime | timedelta | None,
    now: int,
    size: int,
) -> list[tuple[datetime, datetime, int]]:
    """The span cut into parts of at most ``size`` windows: each part's ``since`` and
    ``until`` (a backfill of exactly its windows) and its number of windows. Callers over HTTP
    ask for a long backfill part by part, so no request outlives its timeout."""
    ends = window_ends(monitor, since, until, now)
    window = monitor.window_s * 1000
    out = []
    for first in range(0, len(ends), max(1, size)):
        part = ends[first : first + max(1, size)]
        out.append((_moment(part[0] - window), _moment(part[-1]), len(part)))
    return out


def _moment(ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


def backfill(
    monitor: Monitor,
    ends: list[int],
    executor: str,
    score: Callable[[Monitor, int, str], Scored],
    store: Callable[[Monitor, MonitorRun, str | None], MonitorRun],
) -> list[MonitorRun]:
    """``store(score(window))`` for every window end, in order; scored in parallel on Ray."""
    check_executor(executor)
    if executor == "local":
        return [store(monitor, *score(monitor, end, "local")) for end in ends]
    runs: list[MonitorRun] = []
    with ray_session():
        parallel = max(1, cpus())
        with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="backfill") as pool:
            pending: deque[Future[Scored]] = deque()
            queue = deque(ends)
            try:
                while queue or pending:
                    while queue and len(pending) < parallel:
                        pending.append(pool.submit(score, monitor, queue.popleft(), "ray"))
                    runs.append(store(monitor, *pending.popleft().result()))
            finally:
                for future in pending:
                    future.cancel()  # a store that raised stops the windows not started
    return runs
