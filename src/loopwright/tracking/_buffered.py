"""Metric logging over a buffered writer, shared by the embedded and the remote tracking backends.

Both backends check keys and values at the call, buffer points in a writer (``add_many``,
``flush``) and differ only in where the writer sends them and how a run is checked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .._ids import now_ms
from ._validate import check_key, metric_value
from ._writer import point
from .entities import Metric

__all__ = ["BufferedMetricsMixin"]


class BufferedMetricsMixin:
    """``log_metrics``, ``log_metric_points``, ``log_batch`` and ``flush`` over ``self.writer``."""

    writer: Any  # MetricWriter (embedded) or RemoteMetricWriter: add_many() and flush()

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
        ts = now_ms() if timestamp is None else int(timestamp)
        self.require_loggable(run_id)
        self.writer.add_many(
            [
                point(run_id, check_key("metric", k), metric_value(k, v), int(step), ts)
                for k, v in metrics.items()
            ]
        )

    def log_metric_points(self, run_id: str, points: Iterable[Metric]) -> None:
        """Buffer points with their own steps and timestamps; exact repeats are ignored."""
        self.require_loggable(run_id)
        self.writer.add_many(
            [
                point(
                    run_id,
                    check_key("metric", p.key),
                    metric_value(p.key, p.value),
                    int(p.step),
                    int(p.timestamp),
                )
                for p in points
            ]
        )

    def log_batch(
        self,
        run_id: str,
        *,
        metrics: Iterable[Metric] = (),
        params: Mapping[str, object] | None = None,
        tags: Mapping[str, object] | None = None,
    ) -> None:
        """MLflow's log-batch: params and tags are written now, metrics buffered."""
        if params:
            self.log_params(run_id, params)
        if tags:
            self.set_tags(run_id, tags)
        self.log_metric_points(run_id, metrics)

    def flush(self) -> None:
        """Store every buffered metric point now (reads call this, so they see your writes)."""
        self.writer.flush()
