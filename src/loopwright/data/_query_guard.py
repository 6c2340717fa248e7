"""Bounds on the DuckDB work a caller starts: a time limit, a memory limit, and cancellation
once the caller goes away (a server request whose client disconnected).

Memory is DuckDB's own ``memory_limit``; time and cancellation work through ``interrupt()``,
called by a watchdog thread that checks the deadline and the cancellation event every 50 ms and,
once either is reached, keeps interrupting until the guarded connection is closed (so a query
started in between stops too). Every query then fails with an error naming the bound and the
setting that raises it.

Example:
    >>> import duckdb
    >>> with guarded(duckdb.connect(), QueryLimits(seconds=5), what="a query") as con:
    ...     con.execute("SELECT 42").fetchone()
    (42,)
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import DataError, LimitExceeded

if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["QueryLimits", "cancelled_by", "guarded"]

_POLL = 0.05
_CANCEL: ContextVar[threading.Event | None] = ContextVar("loopwright_query_cancel", default=None)


@dataclass(frozen=True)
class QueryLimits:
    """How long (seconds) and with how much memory (bytes) a DuckDB query may run."""

    seconds: float = 300.0
    memory: int = 1 << 30

    @classmethod
    def of(cls, settings: Settings) -> QueryLimits:
        """The limits the ``query_timeout`` and ``query_memory`` settings name."""
        return cls(settings.query_timeout, settings.query_memory)

    @property
    def duckdb_config(self) -> dict[str, str]:
        return {"memory_limit": f"{self.memory}B"}


@contextlib.contextmanager
def cancelled_by(event: threading.Event) -> Iterator[None]:
    """Guarded queries started in this context are interrupted once ``event`` is set."""
    token = _CANCEL.set(event)
    try:
        yield
    finally:
        _CANCEL.reset(token)


class _Guarded:
    """A DuckDB connection whose ``execute`` stops at the limits (see the module)."""

    def __init__(self, con: Any, limits: QueryLimits, what: str) -> None:
        self._con, self._limits, self._what = con, limits, what
        self._deadline = time.monotonic() + limits.seconds
        self._cancel = _CANCEL.get()
        self._stopped: str | None = None  # "time" or "cancel"
        self._closed = threading.Event()
        self._watchdog = threading.Thread(
            target=self._watch, name="loopwright-query-watchdog", daemon=True
        )
        self._watchdog.start()

    def _watch(self) -> None:
        while not self._closed.wait(_POLL):
            if self._stopped is None and self._cancel is not None and self._cancel.is_set():
                self._stopped = "cancel"
            if self._stopped is None and time.monotonic() >= self._deadline:
                self._stopped = "time"
            if self._stopped is not None:
                self._con.interrupt()

    def check(self) -> None:
        """Raise the error of the bound that stopped the work, if one did."""
        if self._stopped == "time":
            raise LimitExceeded(
                f"{self._what} ran past its time limit of {self._limits.seconds:g} s and was "
                "stopped; make the query cheaper, or raise the query_timeout setting "
                "(LOOPWRIGHT_QUERY_TIMEOUT)"
            )
        if self._stopped == "cancel":
            raise DataError(f"{self._what} was stopped: its caller went away")

    def execute(self, sql: str, parameters: Any = None) -> Any:
        import duckdb

        self.check()
        try:
            return self._con.execute(sql, parameters)
        except duckdb.OutOfMemoryException:
            raise LimitExceeded(
                f"{self._what} needs more than its memory limit of {self._limits.memory} bytes; "
                "make the query cheaper, or raise the query_memory setting "
                "(LOOPWRIGHT_QUERY_MEMORY)"
            ) from None
        except duckdb.Error:
            self.check()  # an interrupt says why it came
            raise

    def close(self) -> None:
        self._closed.set()
        self._watchdog.join()


@contextlib.contextmanager
def guarded(con: Any, limits: QueryLimits, *, what: str) -> Iterator[Any]:
    """``con`` with its queries bounded by ``limits`` and the context's cancellation; the block's
    end checks once more, so a query interrupted while its rows were fetched fails too."""
    guard = _Guarded(con, limits, what)
    try:
        yield guard
        guard.check()
    finally:
        guard.close()
