"""Metric logging over a buffered writer, shared by the embedded and the remote tracking backends.

Both backends check keys and values at the call, so nothing bad enters the buffer, and buffer
points in the one :class:`~loopwright.tracking._writer.MetricWriter`; they differ only in the
writer's sink (the database or a server) and in how a run is checked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .._ids import now_ms
from ._validate import check_key, checked_params, checked_tags, metric_point
from ._writer import MetricWriter, Point
from .entities import Metric

__all__ = ["BufferedMetricsMixin"]


class BufferedMetricsMixin:
    """``log_metrics``, ``log_metric_points``, ``log_batch`` and ``flush`` over ``self.writer``."""

    writer: MetricWriter[Any]  # over a SQL sink (embedded) or an HTTP sink (remote)

    if TYPE_CHECKING:  # provided by each backend

        def require_loggable(self, run_id: str) -> None: ...

        def log_params(self, run_id: str, params: Mapping[str, object]) -> None: ...

        def set_tags(self, run_id: str, tags: Mapping[str, object]) -> None: ...

    def log_metrics(
        self,
        run_id: str,
        metrics: Mapping[str, object],
        *,
        step: int = 0,
        timestamp: int | None = None,
    ) -> None:
        """Buffer one point per metric; the background writer stores them (see ``flush``)."""
        ts = now_ms() if timestamp is None else timestamp
        rows = [
            metric_point(run_id, check_key("metric", k), v, step, ts) for k, v in metrics.items()
        ]
        self.require_loggable(run_id)
        self.writer.add_many(rows)

    def log_metric_points(self, run_id: str, points: Iterable[Metric]) -> None:
        """Buffer points with their own steps and timestamps; exact repeats are ignored."""
        rows = _rows(run_id, points)
        self.require_loggable(run_id)
        self.writer.add_many(rows)

    def log_batch(
        self,
        run_id: str,
        *,
        metrics: Iterable[Metric] = (),
        params: Mapping[str, object] | None = None,
        tags: Mapping[str, object] | None = None,
    ) -> None:
        """MLflow's log-batch: params and tags are written now, metrics buffered. Everything is
        checked first, so a bad entry leaves nothing of the batch behind."""
        rows = _rows(run_id, metrics)
        checked_params(params or {})
        checked_tags(tags)
        if params:
            self.log_params(run_id, params)
        if tags:
            self.set_tags(run_id, tags)
        self.require_loggable(run_id)
        self.writer.add_many(rows)

    def flush(self, run_id: str | None = None) -> None:
        """Store every buffered metric point now (reads do this, so they see your writes).

        Raises ``TrackingError`` if points of ``run_id`` (of any run, without one) had to be
        dropped since the last report: points of a run deleted meanwhile, say.
        """
        self.writer.flush()
        self.writer.raise_dropped(run_id)


def _rows(run_id: str, points: Iterable[Metric]) -> list[Point]:
    points = list(points)
    for p in points:
        if type(p.key) is not str:
            check_key("metric", p.key)  # says what is wrong with it (and it may not hash)
    keys = {key: check_key("metric", key) for key in {p.key for p in points}}  # each key once
    return [metric_point(run_id, keys[p.key], p.value, p.step, p.timestamp) for p in points]
