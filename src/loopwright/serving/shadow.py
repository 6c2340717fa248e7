"""Shadow traffic: copies of requests run on shadow variants after the caller has its answer.

:meth:`ShadowCopies.send` is called once the response is sent (Starlette's background task), on
the event loop. It never waits: each copy becomes a task of its own, up to ``max_in_flight``
copies at once; past that a copy is dropped and counted, so a slow or stuck shadow can fall
behind but never holds memory without bound or delays live requests. A copy is checked against
the shadow's own signature and queued on the shadow model's batcher like any request; its
answer goes to the prediction log under the shadow's variant name, with the request id of the
live request it copies (so both answers join on it), and nowhere else. A shadow that refuses
the input or raises is counted and logged, and the caller, answered already, never sees it.

Example:
    >>> ShadowCopies("churn", None).stats().dropped
    0
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from .._logging import get_logger
from .core import append_record, prepare

if TYPE_CHECKING:
    from .metrics import ServingMetrics
    from .prediction_log import PredictionLog
    from .routing import ModelSlot, Route

__all__ = ["ShadowCopies", "ShadowStats"]

_logger = get_logger(__name__)
# A shadow that fails every copy would log every request: the first failure is logged with its
# traceback, then one line per this many.
_LOG_EVERY = 1000


@dataclass(frozen=True)
class ShadowStats:
    """Copies since start: ``sent`` (started), ``dropped`` (``max_in_flight`` reached),
    ``answered``, ``failed`` (refused or raised) and ``in_flight`` (started, not done)."""

    sent: int
    dropped: int
    answered: int
    failed: int
    in_flight: int


class ShadowCopies:
    """The shadow copies of one deployment's requests, bounded by ``max_in_flight``.

    Args:
        deployment: the deployment's name, written in the log's ``deployment`` column.
        log: where the shadows' answers go (``None``: they are computed and counted only).
        max_in_flight: most copies running at once; more are dropped.
        metrics: where drops are counted and each copy's latency observed, under the shadow's
            variant (a copy that fails counts as a 500).
    """

    def __init__(
        self,
        deployment: str,
        log: PredictionLog | None,
        *,
        max_in_flight: int = 128,
        metrics: ServingMetrics | None = None,
    ) -> None:
        self.deployment = deployment
        self.log = log
        self.max_in_flight = max_in_flight
        self.metrics = metrics
        self._tasks: set[asyncio.Task[None]] = set()
        self._sent = self._dropped = self._answered = self._failed = 0

    def send(
        self,
        routes: Sequence[Route],
        data: Any,
        outputs: tuple[str, ...],
        request_id: str,
        arrived: datetime,
    ) -> None:
        """Start a copy of the request (``data`` as the live model took it) per route."""
        loop = asyncio.get_running_loop()
        for route in routes:
            if len(self._tasks) >= self.max_in_flight:
                self._dropped += 1
                if self.metrics is not None:
                    self.metrics.shadow_dropped()
                continue
            self._sent += 1
            # Counted from now, not from when the task starts, so the watcher cannot retire the
            # slot in between; and uncounted when the task ends, even cancelled before it ran.
            slot = route.slot
            slot.in_flight += 1
            task = loop.create_task(self._copy(route, data, outputs, request_id, arrived))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            task.add_done_callback(partial(_release, slot))

    def stats(self) -> ShadowStats:
        return ShadowStats(
            self._sent, self._dropped, self._answered, self._failed, len(self._tasks)
        )

    async def close(self, timeout: float = 10.0) -> None:
        """Let the running copies finish (for up to ``timeout`` seconds), then cancel the rest."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _copy(
        self,
        route: Route,
        data: Any,
        outputs: tuple[str, ...],
        request_id: str,
        arrived: datetime,
    ) -> None:
        slot = route.slot
        start = time.perf_counter()
        model = slot.model
        metrics = self.metrics
        meter = None if metrics is None else metrics.meter(model, self.deployment, route.variant)
        try:
            item, logged = prepare(model, data)  # a shadow on a feature service: its lookup
            wanted = tuple(name for name in outputs if name in model.outputs) or model.outputs[:1]
            result = await slot.batcher.submit(item, wanted)
        except Exception as exc:
            if meter is not None:
                meter.failed(500, time.perf_counter() - start)
            self._failed += 1
            if self._failed == 1 or self._failed % _LOG_EVERY == 0:
                _logger.warning(
                    "deployment %r: shadow %r (%s) failed on request %s (%d failures so far): %s",
                    self.deployment,
                    route.variant,
                    slot.model.label,
                    request_id,
                    self._failed,
                    getattr(exc, "message", None) or repr(exc),
                    exc_info=self._failed == 1,
                )
            return
        self._answered += 1
        latency = time.perf_counter() - start
        if meter is not None:
            meter.observe(latency)
        if self.log is not None:
            latency_ms = latency * 1000
            append_record(
                self.log,
                model,
                request_id,
                arrived,
                latency_ms,
                logged,
                result,
                self.deployment,
                route.variant,
            )


def _release(slot: ModelSlot, task: asyncio.Task[None]) -> None:
    slot.in_flight -= 1
