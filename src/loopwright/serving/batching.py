"""Adaptive batching: concurrent requests to one model become one predict call.

Each model gets one :class:`Batcher`: requests wait in its queue, and one runner task takes up
to ``max_batch_size`` rows at a time, stacks them, predicts once on a worker thread (so the
event loop keeps answering), and cuts the outputs back per request. A batch takes what waits
when the model is free, and lingers only while more keeps arriving: it closes once the queue
has not grown for :data:`SETTLE_TURNS` turns of the event loop, once ``max_batch_size`` rows
wait, or ``max_latency_ms`` after its oldest request arrived, whichever comes first. So a lone
request is answered at once (a few loop turns, microseconds) while a burst is merged; waiting
the full ``max_latency_ms`` for a batch to fill cost a client sending one request at a time
5x its throughput. The size is counted in rows, so a client batch of 100 rows is never merged
past the limit (a request larger than the limit runs alone). A model whose calls take under
:data:`INLINE_BELOW_MS` runs on the loop instead, where a thread hand-off would cost more than
the call. If a merged batch fails, its requests run again one by one, so only the request
whose input the model rejects gets the error. The queue is bounded: past ``max_queue_rows``
waiting rows a request is refused with :class:`Overloaded` (HTTP 503) instead of waiting
without end.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from ..errors import Overloaded
from .model import ModelInput, ServedModel, merge, select, split

__all__ = ["INLINE_BELOW_MS", "MIN_QUEUE_ROWS", "SETTLE_TURNS", "Batcher"]

# A model whose calls take less than this runs on the event loop itself: handing each call to a
# thread and back costs more than such a call (on a loaded 2-core machine, a 0.17 ms predict
# took 0.4 ms of CPU per request through the thread pool); slower models run on the thread,
# so the loop keeps answering while they work.
INLINE_BELOW_MS = 1.0
# The default queue bound holds at least this many rows. Every open connection can have a
# request waiting, so the bound must hold what ordinary concurrency sends: 1,024 rows refused
# 18 % of the requests of 32 connections sending 100 rows each (HTTP 503) at a load the server
# kept up with. 16,384 rows of 20 floats are ~2.6 MB, and a few seconds of work at most.
MIN_QUEUE_ROWS = 16_384
# A batch closes once its queue has not grown for this many event-loop turns. Turns, not a
# time: a request read from its socket reaches the queue a turn or so later (the HTTP parser
# hands it to a task), and under load each turn is longer, so the linger stretches with the
# load instead of costing a fixed delay when there is none. One turn closed batches before
# requests already read reached the queue (benchmarks/serving.py, 32 connections: 2 turns
# 3.1x the unbatched req/s, 1 turn 2.2x, waiting the full 5 ms 2.1x).
SETTLE_TURNS = 2


@dataclass
class _Pending:
    item: ModelInput
    outputs: tuple[str, ...]
    future: asyncio.Future[dict[str, Any]]
    arrived: float


class Batcher:
    """The queue and runner of one model (start with :meth:`start`, stop with :meth:`stop`).

    Args:
        model: the model to run.
        executor: where predict runs (a thread pool; the loop never runs the model).
        max_batch_size: most rows per predict call.
        max_latency_ms: longest a request waits for others to join its batch (it waits only
            while they keep arriving; 0: merge only what already waits).
        on_batch: called with the number of requests and of rows of every predict call
            (the hook for metrics and tests).
    """

    def __init__(
        self,
        model: ServedModel,
        executor: Executor,
        *,
        max_batch_size: int,
        max_latency_ms: float,
        max_queue_rows: int | None = None,
        on_batch: Callable[[int, int], None] | None = None,
    ) -> None:
        self.model = model
        self.max_batch_size = max_batch_size
        self.max_latency = max_latency_ms / 1000
        self.max_queue_rows = max_queue_rows or max(MIN_QUEUE_ROWS, 16 * max_batch_size)
        self._executor = executor
        self._on_batch = on_batch
        self._pending: deque[_Pending] = deque()
        self._rows = 0
        self._waiter: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._running: list[_Pending] = []  # the batch on the model thread (stop waits for it)

    @property
    def queued_rows(self) -> int:
        """Rows waiting for a predict call (the metrics' queue depth)."""
        return self._rows

    @property
    def queued_requests(self) -> int:
        """Requests waiting for a predict call."""
        return len(self._pending)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self, timeout: float = 30.0) -> None:
        """Finish the queued requests and the batch running (for up to ``timeout`` seconds),
        then stop the runner."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (self._pending or self._running) and self._task is not None:
            if loop.time() >= deadline:
                break
            await asyncio.sleep(0.005)
        for pending in [*self._pending, *self._running]:
            if not pending.future.done():
                pending.future.set_exception(Overloaded(f"{self.model.label} was unloaded"))
        self._pending.clear()
        self._rows = 0
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def submit(self, item: ModelInput, outputs: tuple[str, ...]) -> dict[str, Any]:
        """The outputs for ``item`` once its batch has run.

        Raises:
            Overloaded: the queue already holds ``max_queue_rows`` rows.
            ModelFailed: the model raised on this request's rows.
        """
        if self._rows + item.rows > self.max_queue_rows and self._pending:
            raise Overloaded(
                f"{self.model.label} has {self._rows} rows waiting (limit "
                f"{self.max_queue_rows}); retry shortly"
            )
        loop = asyncio.get_running_loop()
        if self._task is None:
            self.start()
        pending = _Pending(item, outputs, loop.create_future(), loop.time())
        self._pending.append(pending)
        self._rows += item.rows
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        return await pending.future

    async def _idle(self) -> None:
        """Until a request arrives."""
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                await self._idle()
            await self._linger(loop)
            if not self._pending:  # stop() gave up on them
                continue
            batch = self._take()
            if self.model.predict_ms < INLINE_BELOW_MS:
                results = self._predict(batch)
            else:
                self._running = batch
                try:
                    results = await loop.run_in_executor(self._executor, self._predict, batch)
                finally:
                    self._running = []
            for pending, result in zip(batch, results, strict=True):
                if pending.future.done():  # the caller went away
                    continue
                if isinstance(result, BaseException):
                    pending.future.set_exception(result)
                else:
                    pending.future.set_result(result)

    async def _linger(self, loop: asyncio.AbstractEventLoop) -> None:
        """Lets requests join while they keep arriving (see the module's docstring)."""
        deadline = self._pending[0].arrived + self.max_latency
        quiet = 0
        while (
            self._pending
            and self._rows < self.max_batch_size
            and quiet < SETTLE_TURNS
            and loop.time() < deadline
        ):
            before = len(self._pending)
            await asyncio.sleep(0)
            quiet = quiet + 1 if len(self._pending) == before else 0

    def _take(self) -> list[_Pending]:
        batch = [self._pending.popleft()]
        rows = batch[0].item.rows
        while self._pending and rows + self._pending[0].item.rows <= self.max_batch_size:
            batch.append(self._pending.popleft())
            rows += batch[-1].item.rows
        self._rows -= rows
        return batch

    def _predict(self, batch: Sequence[_Pending]) -> list[dict[str, Any] | BaseException]:
        """Runs on the executor: one call for the whole batch, one per request if it fails."""
        outputs = tuple(dict.fromkeys(name for p in batch for name in p.outputs))
        if self._on_batch is not None:
            self._on_batch(len(batch), sum(p.item.rows for p in batch))
        try:
            merged = self.model.run(merge([p.item for p in batch]), outputs)
            parts = split(merged, [p.item.rows for p in batch])
        except Exception as exc:
            if len(batch) == 1:
                return [exc]
            return [self._alone(p) for p in batch]
        return [select(part, p.outputs) for p, part in zip(batch, parts, strict=True)]

    def _alone(self, pending: _Pending) -> dict[str, Any] | BaseException:
        try:
            return self.model.run(pending.item.data, pending.outputs)
        except Exception as exc:
            return exc
