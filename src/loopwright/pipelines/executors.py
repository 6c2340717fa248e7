"""Executors: where a pipeline's step calls run.

``inprocess`` (the default) runs calls in the pipeline's own process: one at a time in the
calling thread, or on up to ``max_parallel`` threads for a ``map`` or ``sweep``. ``process``
runs each call in a worker process (started with ``forkserver`` where available, else
``spawn``; at most ``max_parallel``, default one per CPU). ``ray`` runs each call as a Ray task
(:mod:`._ray_executor`). All return a :class:`concurrent.futures.Future` from
:meth:`Executor.submit`.

Timeouts (seconds per call):

- ``process``: counted from when the function starts in its worker (start-up and imports do
  not count); the worker is killed (SIGKILL) and replaced, and the future fails with
  :class:`~loopwright.errors.StepTimeout`.
- ``ray``: counted from when the task is submitted (Ray's scheduling and worker start-up
  count); the task is cancelled with ``ray.cancel(force=True)``, which kills its worker.
- ``inprocess``: counted from when the call's thread starts; the future fails with
  ``StepTimeout``, but a Python thread cannot be killed: the call keeps running in the
  background until it returns (its result is dropped). Use the ``process`` executor for steps
  that may hang.

Worker processes and Ray tasks receive the function by reference (its module and name), so it
must be defined at module level in an importable module, and a script that starts a pipeline
on the ``process`` executor must do so under ``if __name__ == "__main__":`` (workers import
the main module). Calls already running when :meth:`Executor.close` is called are waited for.

Example:
    >>> from loopwright.pipelines.executors import get_executor
    >>> executor = get_executor("inprocess")
    >>> executor.inline, executor.max_parallel
    (True, 1)
    >>> executor.close()
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol, runtime_checkable

from ..errors import InvalidInput
from ._dispatch import Dispatcher, Task, check_by_reference
from ._worker import Clients, StepContext, run_step, set_start_cell

__all__ = [
    "EXECUTORS",
    "Executor",
    "InProcessExecutor",
    "ProcessExecutor",
    "StepContext",
    "get_executor",
]

EXECUTORS = ("inprocess", "process", "ray")


@runtime_checkable
class Executor(Protocol):
    """Runs step calls. ``inline``: calls may run directly in the caller's thread."""

    name: str
    inline: bool
    max_parallel: int

    def submit(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        *,
        timeout: float | None,
        context: StepContext,
    ) -> Future[Any]:
        """Run ``fn(*args, **kwargs)`` with ``context``'s run active; the future has its result."""
        ...

    def close(self) -> None:
        """Stop the workers; calls not started yet are cancelled."""
        ...


def get_executor(
    name: str, *, max_parallel: int | None = None, ray_address: str | None = None
) -> Executor:
    """The executor called ``name`` (``inprocess``, ``process`` or ``ray``).

    Raises:
        InvalidInput: an unknown name, or ``max_parallel`` below 1.
    """
    if max_parallel is not None and (type(max_parallel) is not int or max_parallel < 1):
        raise InvalidInput(
            f"max_parallel must be a whole number of at least 1, not {max_parallel!r}"
        )
    if name == "inprocess":
        return InProcessExecutor(max_parallel)
    if name == "process":
        return ProcessExecutor(max_parallel)
    if name == "ray":
        from ._ray_executor import RayExecutor

        return RayExecutor(max_parallel, address=ray_address)
    raise InvalidInput(f"no executor {name!r}; choose one of: {', '.join(EXECUTORS)}")


class InProcessExecutor(Dispatcher):
    """Calls in this process: in the caller's thread when one at a time with no timeout,
    else each on its own daemon thread, at most ``max_parallel`` at once."""

    name = "inprocess"
    inline = True

    def __init__(self, max_parallel: int | None = None) -> None:
        super().__init__(max_parallel or 1)
        self._clients = Clients()

    def close(self) -> None:
        super().close()
        self._clients.close()

    def submit(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        *,
        timeout: float | None,
        context: StepContext,
    ) -> Future[Any]:
        if timeout is None and self.max_parallel == 1 and not self._closed:
            # Sequential and unbounded: no thread, so a no-op step costs next to nothing.
            future: Future[Any] = Future()
            future.set_running_or_notify_cancel()
            try:
                future.set_result(
                    run_step(fn, args, kwargs, context, note_traceback=False, clients=self._clients)
                )
            except BaseException as exc:
                future.set_exception(exc)
            return future
        return super().submit(fn, args, kwargs, timeout=timeout, context=context)

    def _launch(self, task: Task) -> None:
        def call() -> None:
            try:
                result = run_step(
                    task.fn,
                    task.args,
                    task.kwargs,
                    task.context,
                    note_traceback=False,
                    clients=self._clients,
                )
            except BaseException as exc:
                self._settle(task, error=exc)
            else:
                self._settle(task, result=result)

        thread = threading.Thread(
            target=call, name=f"loopwright-step {task.context.invocation}", daemon=True
        )
        self._start_clock(task)
        thread.start()

    def _stop(self, task: Task) -> None:
        """A thread cannot be stopped: the call runs on, its result dropped."""


class ProcessExecutor(Dispatcher):
    """Calls in worker processes, each worker a one-process ``ProcessPoolExecutor`` so that a
    call past its timeout can be killed without disturbing the calls in other workers."""

    name = "process"

    def __init__(self, max_parallel: int | None = None) -> None:
        super().__init__(max_parallel or os.cpu_count() or 1)
        methods = multiprocessing.get_all_start_methods()
        self._mp = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        self._idle: list[_Worker] = []
        self._workers: list[_Worker] = []

    def _check(self, fn: Callable[..., Any]) -> None:
        check_by_reference(fn, self.name)

    def close(self) -> None:
        super().close()
        with self._lock:
            workers, self._workers, self._idle = self._workers, [], []
        for worker in workers:
            worker.pool.shutdown(wait=True, cancel_futures=True)

    def _launch(self, task: Task) -> None:
        while True:
            with self._lock:
                worker = self._idle.pop() if self._idle else None
            fresh = worker is None
            if worker is None:
                worker = _Worker(self._mp)
                with self._lock:
                    self._workers.append(worker)
            try:
                inner = worker.pool.submit(run_step, task.fn, task.args, task.kwargs, task.context)
            except BrokenProcessPool:
                # An idle worker died since its last call: take another.
                self._discard(worker)
                if fresh:
                    raise
                continue
            break
        task.handle = worker
        self._start_clock(task)
        inner.add_done_callback(lambda done: self._done(task, worker, done))

    def _started_at(self, task: Task) -> float | None:
        # The worker writes the time the function starts: start-up and imports do not count.
        started = float(task.handle.started.value)
        return started if started >= task.launched_at else None

    def _done(self, task: Task, worker: _Worker, inner: Future[Any]) -> None:
        error = inner.exception() if not inner.cancelled() else None
        broken = isinstance(error, BrokenProcessPool)
        with self._lock:
            if task.settled:
                return
            if not broken and not self._closed:
                self._idle.append(worker)
        if broken:
            self._discard(worker)
            if not task.relaunched and not self._closed and self._started_at(task) is None:
                # The worker died before the call began (an idle worker killed, say): the call
                # has not run, so it goes to a new worker once.
                task.relaunched = True
                try:
                    self._launch(task)
                except BaseException as exc:
                    self._settle(task, error=exc)
                return
            error = RuntimeError(
                f"the worker process running step {task.context.invocation} died before it "
                "returned: killed, out of memory, or failed to start (a script that runs a "
                "pipeline when imported must do so under if __name__ == '__main__':, since "
                "workers import the main module); see the messages above"
            )
        if inner.cancelled():
            error = RuntimeError(f"step {task.context.invocation} was cancelled")
        elif error is not None and "_sendback_result" in str(error.__cause__):
            # The pool could not pickle the return value (its traceback says where).
            error = InvalidInput(
                f"step {task.context.invocation} returned a value the worker process cannot "
                f"send back ({type(error).__name__}: {error}); return data a materializer "
                "stores (arrays, frames, models, JSON values), or use the inprocess executor"
            )
        self._settle(task, result=None if error else inner.result(), error=error)

    def _stop(self, task: Task) -> None:
        worker: _Worker = task.handle
        self._discard(worker)
        with contextlib.suppress(ProcessLookupError, TimeoutError):
            os.kill(worker.pid.result(timeout=5), signal.SIGKILL)
        worker.pool.shutdown(wait=False, cancel_futures=True)

    def _discard(self, worker: _Worker) -> None:
        with self._lock:
            if worker in self._workers:
                self._workers.remove(worker)
            if worker in self._idle:
                self._idle.remove(worker)


class _Worker:
    """One worker process: a single-process pool, its pid (asked for first) and the shared
    cell where it writes when each call's function starts."""

    def __init__(self, mp: Any) -> None:
        self.started = mp.Value("d", 0.0, lock=False)
        self.pool = ProcessPoolExecutor(
            1, mp_context=mp, initializer=set_start_cell, initargs=(self.started,)
        )
        self.pid: Future[int] = self.pool.submit(os.getpid)
