"""The machinery every executor shares: calls queued until one of ``max_parallel`` places is
free, settled exactly once (by their end or by their deadline), and the check that a function
can travel to a worker by reference."""

from __future__ import annotations

import heapq
import itertools
import pickle
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, wait
from dataclasses import dataclass, field
from typing import Any

from .._logging import get_logger
from ..errors import InvalidInput, StepTimeout
from ._worker import StepContext

__all__ = ["Dispatcher", "Task", "check_by_reference"]

_logger = get_logger(__name__)


@dataclass
class Task:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    timeout: float | None
    context: StepContext
    future: Future[Any] = field(default_factory=Future)
    settled: bool = False
    handle: Any = None  # what the executor needs to stop it (a slot, a Ray ref)
    launched_at: float = 0.0  # wall-clock seconds
    relaunched: bool = False  # sent to a second worker after the first died before starting it


class _Deadlines:
    """One daemon thread calling each registered function when its time comes."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._counter = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, seconds: float, callback: Callable[[], None]) -> None:
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + seconds, next(self._counter), callback))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="loopwright-step-deadlines", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    wait = None if not self._heap else self._heap[0][0] - time.monotonic()
                    self._cond.wait(wait)
                _, _, callback = heapq.heappop(self._heap)
            try:
                callback()  # callbacks check themselves whether the call already ended
            except Exception:  # one failed stop must not end every later call's deadline
                _logger.exception("stopping a step call past its timeout failed")


_deadlines = _Deadlines()


class Dispatcher:
    """Calls queued until one of ``max_parallel`` places is free, settled once each.

    Subclasses start a call (:meth:`_launch`) and stop one past its deadline (:meth:`_stop`);
    they report the end through :meth:`_settle`.
    """

    name = ""
    inline = False

    def __init__(self, max_parallel: int) -> None:
        self.max_parallel = max_parallel
        self._lock = threading.Lock()
        self._pending: deque[Task] = deque()
        self._running = 0
        self._live: set[Future[Any]] = set()  # calls started, not settled
        self._closed = False

    def submit(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        *,
        timeout: float | None,
        context: StepContext,
    ) -> Future[Any]:
        if self._closed:
            raise InvalidInput(f"the {self.name} executor is closed; make a new one")
        self._check(fn)
        task = Task(fn, tuple(args), dict(kwargs), timeout, context)
        with self._lock:
            self._pending.append(task)
        self._dispatch()
        return task.future

    def close(self) -> None:
        """Cancel the calls not started, then wait for those running to end (or time out)."""
        with self._lock:
            self._closed = True
            pending, self._pending = list(self._pending), deque()
            live = list(self._live)
        for task in pending:
            task.future.cancel()
        wait(live)

    def _check(self, fn: Callable[..., Any]) -> None:
        """Refuse a function this executor cannot run, before anything is queued."""

    def _launch(self, task: Task) -> None:
        raise NotImplementedError

    def _stop(self, task: Task) -> None:
        raise NotImplementedError

    def _dispatch(self) -> None:
        while True:
            with self._lock:
                if self._closed or not self._pending or self._running >= self.max_parallel:
                    return
                task = self._pending.popleft()
                self._running += 1
                self._live.add(task.future)
            if not task.future.set_running_or_notify_cancel():
                self._release(task)
                continue
            try:
                self._launch(task)
            except BaseException as exc:
                self._settle(task, error=exc)

    def _start_clock(self, task: Task) -> None:
        """Watch the call's timeout from the time it starts (see :meth:`_started_at`)."""
        task.launched_at = time.time()
        if task.timeout is not None:
            _deadlines.add(task.timeout, lambda: self._check_deadline(task))

    def _started_at(self, task: Task) -> float | None:
        """When the call's function started (wall clock), None if not yet."""
        return task.launched_at

    def _check_deadline(self, task: Task) -> None:
        if task.settled or task.timeout is None:
            return
        started = self._started_at(task)
        if started is None:
            _deadlines.add(0.05, lambda: self._check_deadline(task))
            return
        remaining = started + task.timeout - time.time()
        if remaining > 0:
            _deadlines.add(remaining, lambda: self._check_deadline(task))
        else:
            self._expire(task)

    def _expire(self, task: Task) -> None:
        if not self._claim(task):
            return
        try:
            self._stop(task)
        finally:
            self._resolve(
                task,
                error=StepTimeout(
                    f"step {task.context.invocation} ran past its timeout of {task.timeout:g} s "
                    f"and was stopped ({self.name} executor); raise the step's timeout= or make "
                    "it faster"
                ),
            )

    def _settle(
        self, task: Task, *, result: Any = None, error: BaseException | None = None
    ) -> None:
        if self._claim(task):
            self._resolve(task, result=result, error=error)

    def _claim(self, task: Task) -> bool:
        """Whether this caller settles ``task`` (the call's end and its deadline race)."""
        with self._lock:
            if task.settled:
                return False
            task.settled = True
            return True

    def _resolve(
        self, task: Task, *, result: Any = None, error: BaseException | None = None
    ) -> None:
        if error is None:
            task.future.set_result(result)
        else:
            task.future.set_exception(error)
        self._release(task)

    def _release(self, task: Task) -> None:
        with self._lock:
            self._running -= 1
            self._live.discard(task.future)
        self._dispatch()


def check_by_reference(fn: Callable[..., Any], executor: str) -> None:
    """Refuse a function that cannot travel to a worker by reference (module and name).

    Raises:
        InvalidInput: it is nested in a function, a lambda, or does not pickle.
    """
    qualname = getattr(fn, "__qualname__", "")
    where = f"{getattr(fn, '__module__', '?')}.{qualname or fn!r}"
    if "<locals>" in qualname or "<lambda>" in qualname:
        raise InvalidInput(
            f"step function {where} is defined inside another function; the {executor} "
            "executor sends functions by reference, so define it at module level"
        )
    try:
        pickle.dumps(fn)
    except Exception as exc:
        raise InvalidInput(
            f"step function {where} cannot be sent to a worker ({exc}); the {executor} "
            "executor sends functions by reference: define it at module level in an "
            "importable module, or use the inprocess executor"
        ) from exc
