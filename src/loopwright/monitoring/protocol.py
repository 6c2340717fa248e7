"""Monitoring as a capability: what both backends provide (``client.monitoring``).

:class:`~loopwright.monitoring.service.MonitoringService` works on the stores and the prediction
log; :class:`~loopwright.remote.monitoring.RemoteMonitoring` is the same over a server's
``/api/v1/monitoring``. ``compare`` computes where it is called (it needs no store).
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from .entities import (
        Alert,
        AlertStatus,
        DriftResult,
        LabelImport,
        Monitor,
        MonitorRun,
        Performance,
        Reference,
        Task,
        VariantComparison,
    )
    from .llm_entities import AlertAction, TraceMonitor, TraceMonitorRun, TraceSelection

__all__ = ["Monitoring"]


class Monitoring(Protocol):
    """Drift and data quality, delayed labels and performance, variant comparison, alerts."""

    # --- monitors ----------------------------------------------------------------------------

    def create(
        self,
        name: str,
        *,
        deployment: str,
        reference: str = "auto",
        window: timedelta = timedelta(hours=1),
        every: timedelta | None = None,
        tests: Sequence[str] = (),
        columns: Sequence[str] = (),
        thresholds: Mapping[str, float] | None = None,
        alerts: Sequence[str] = (),
        webhook: str | None = None,
        webhook_format: Literal["json", "slack"] = "json",
        task: Task | None = None,
        description: str | None = None,
    ) -> Monitor:
        """A new monitor of ``deployment``'s prediction log (``alerts``: rules such as
        ``"drift_share>0.3"``, see :class:`~loopwright.monitoring.entities.AlertRule`)."""
        ...

    def get(self, name: str) -> Monitor:
        """The monitor called ``name``."""
        ...

    def list(self, *, deployment: str | None = None) -> builtins.list[Monitor]:
        """Every monitor (of ``deployment``), by name."""
        ...

    def delete(self, name: str) -> None:
        """Remove the monitor, its runs, results and alerts (the audit log keeps the record)."""
        ...

    def run(self, name: str, *, at: datetime | None = None, executor: str = "local") -> MonitorRun:
        """Run the monitor now over the window ending at ``at`` (default: now); stored, alerts
        opened or resolved, webhooks called (``executor``: ``local`` or ``ray``, where the
        columns are scored)."""
        ...

    def backfill(
        self,
        name: str,
        *,
        since: datetime | timedelta,
        until: datetime | timedelta | None = None,
        executor: str = "local",
    ) -> builtins.list[MonitorRun]:
        """Run the monitor over every window of ``[since, until]`` (default: now), one step
        (``every``, else ``window``) apart, oldest first, each stored as ``run`` stores it
        (``executor="ray"``: windows scored in parallel on Ray)."""
        ...

    def run_due(self) -> builtins.list[MonitorRun]:
        """Run every monitor whose ``every`` has elapsed since its last run (what a scheduler
        calls every minute)."""
        ...

    def history(
        self, name: str, *, since: datetime | None = None, limit: int = 100
    ) -> builtins.list[MonitorRun]:
        """The monitor's runs, newest first (at most ``limit``)."""
        ...

    def get_run(self, run_id: str) -> MonitorRun:
        """One stored run."""
        ...

    def report(
        self, name: str, *, run_id: str | None = None, format: Literal["html", "json"] = "html"
    ) -> str:
        """A self-contained report of the run (default: the latest) with the monitor's history:
        HTML with inline charts, or JSON under 10 kB."""
        ...

    # --- references ----------------------------------------------------------------------------

    def build_reference(self, source: str, *, name: str | None = None) -> Reference:
        """Sketch a reference once from ``source``: a dataset version (``NAME@VERSION``) or a
        model version (``models:/NAME/VERSION``: its training data, from lineage)."""
        ...

    def references(self) -> builtins.list[Reference]:
        """Every stored reference, newest first."""
        ...

    def compare(
        self,
        reference: pd.DataFrame | pa.Table,
        current: pd.DataFrame | pa.Table,
        *,
        tests: Sequence[str] = (),
        columns: Sequence[str] = (),
        thresholds: Mapping[str, float] | None = None,
        p_values: bool = False,
    ) -> DriftResult:
        """Compare two frames column by column (for notebooks and CI); nothing is stored."""
        ...

    # --- ground truth and performance ---------------------------------------------------------

    def log_labels(
        self, deployment: str, labels: Mapping[str, object] | pd.DataFrame
    ) -> LabelImport:
        """Store late labels: ``{request_id: label}`` or a frame with ``request_id``, ``label``
        and optionally ``row`` (the row within a multi-row request; default 0)."""
        ...

    def labels(
        self,
        deployment: str,
        *,
        since: datetime | timedelta | None = None,
        until: datetime | timedelta | None = None,
    ) -> pd.DataFrame:
        """Stored labels (``request_id``, ``row``, ``label``, ``logged_at``) logged in the span."""
        ...

    def performance(
        self,
        deployment: str,
        *,
        since: datetime | timedelta | None = None,
        until: datetime | timedelta | None = None,
        task: Task | None = None,
        slices: Sequence[str] = (),
    ) -> Performance:
        """Quality of the predictions logged in the span that have labels, per model version and
        per value of each ``slices`` column."""
        ...

    def compare_variants(
        self,
        deployment: str,
        *,
        metric: str | None = None,
        baseline: str | None = None,
        candidate: str | None = None,
        since: datetime | timedelta | None = None,
        until: datetime | timedelta | None = None,
        confidence: float = 0.95,
        min_samples: int = 100,
    ) -> VariantComparison:
        """Compare the deployment's variants on ``metric`` (default: accuracy with labels, else
        the mean prediction) with a confidence interval and a significance test."""
        ...

    # --- trace monitors (LLM traffic) -----------------------------------------------------------

    def create_trace_monitor(
        self,
        name: str,
        *,
        traces: TraceSelection,
        scorers: Sequence[str],
        sample_rate: float = 1.0,
        baseline: str = "approved",
        window: timedelta = timedelta(hours=1),
        every: timedelta | None = None,
        tests: Sequence[str] = (),
        thresholds: Mapping[str, float] | None = None,
        alerts: Sequence[str] = (),
        actions: Sequence[AlertAction] = (),
        webhook: str | None = None,
        webhook_format: Literal["json", "slack"] = "json",
        description: str | None = None,
        max_scored_per_pass: int = 200,
        max_window_traces: int = 20_000,
    ) -> TraceMonitor:
        """A new monitor of the traces ``traces`` selects: a ``sample_rate`` share scored by
        ``scorers`` (registered ``name/3`` or ``builtin:NAME``), each window compared with
        ``baseline`` (``approved``, ``evaluation:RUN_ID``, ``window:SINCE/UNTIL``); ``actions``
        are what its alerts start (see :mod:`loopwright.monitoring.llm_entities`)."""
        ...

    def get_trace_monitor(self, name: str) -> TraceMonitor:
        """The trace monitor called ``name``."""
        ...

    def run_trace_monitor(self, name: str, *, at: datetime | None = None) -> TraceMonitorRun:
        """A pass of the trace monitor over the window ending at ``at`` (default: now), stored
        as ``run`` stores it, with its scoring progress, figures and actions."""
        ...

    def trace_monitor_history(
        self, name: str, *, limit: int = 100
    ) -> builtins.list[TraceMonitorRun]:
        """The trace monitor's passes, newest window first (at most ``limit``)."""
        ...

    # --- alerts ----------------------------------------------------------------------------------

    def alerts(
        self, *, monitor: str | None = None, status: AlertStatus | None = None
    ) -> builtins.list[Alert]:
        """Alert events, newest first."""
        ...
