"""The trace-monitor part of :class:`~loopwright.remote.monitoring.RemoteMonitoring`: monitors
of LLM traffic over the server's ``/api/v1/monitoring/trace-monitors``, decoded into the same
entities the embedded service returns."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from ..errors import InvalidInput
from ..monitoring.llm_codec import outcome_of, scoring_of, trace_monitor_of
from ..monitoring.llm_entities import AlertAction, TraceMonitor, TraceMonitorRun, TraceSelection

if TYPE_CHECKING:
    from ._http import Http

__all__ = ["RemoteTraceMonitorsMixin"]

_PATH = "/monitoring/trace-monitors"


def _path(name: str) -> str:
    from ..monitoring._monitors import check_name
    from .monitoring import _segment

    return f"{_PATH}/{_segment(check_name(name))}"


def _monitor(data: Mapping[str, Any]) -> TraceMonitor:
    from .monitoring import monitor

    return trace_monitor_of(monitor(data["monitor"]), data)


def _run(data: Mapping[str, Any]) -> TraceMonitorRun:
    from .monitoring import monitor_run

    return TraceMonitorRun(
        monitor_run(data["run"]),
        scoring_of(data.get("scoring")),
        {k: float(v) for k, v in (data.get("figures") or {}).items()},
        tuple(outcome_of(a) for a in data.get("actions") or ()),
        data.get("baseline"),
    )


class RemoteTraceMonitorsMixin:
    _http: Http

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
        """A new monitor of LLM traffic on the server (an editor's token)."""
        from ..monitoring.llm_spec import check_selection
        from .monitoring import _seconds, _strings

        selection = check_selection(traces)
        if isinstance(actions, str) or not all(isinstance(a, AlertAction) for a in actions):
            raise InvalidInput(f"actions {actions!r} must be a list of AlertAction")
        body = {
            "name": name,
            "traces": selection.to_dict(),
            "scorers": _strings("scorers", scorers),
            "sample_rate": sample_rate,
            "baseline": baseline,
            "window_s": _seconds("window", window),
            "every_s": None if every is None else _seconds("every", every),
            "tests": _strings("tests", tests),
            "thresholds": dict(thresholds or {}),
            "alerts": _strings("alerts", alerts),
            "actions": [
                {
                    **{k: None for k in ("on", "alias", "dataset", "endpoint", "model")},
                    **a.to_dict(),
                }
                for a in actions
            ],
            "webhook": webhook,
            "webhook_format": webhook_format,
            "description": description,
            "max_scored_per_pass": max_scored_per_pass,
            "max_window_traces": max_window_traces,
        }
        return _monitor(self._http.post(_PATH, body))

    def get_trace_monitor(self, name: str) -> TraceMonitor:
        """The trace monitor called ``name``."""
        return _monitor(self._http.get(_path(name)))

    def run_trace_monitor(self, name: str, *, at: datetime | None = None) -> TraceMonitorRun:
        """A pass on the server, as this token's user, over the window ending at ``at``."""
        from .monitoring import _ms

        body = {"at": None if at is None else _ms("at", at)}
        return _run(self._http.post(f"{_path(name)}/runs", body))

    def trace_monitor_history(
        self, name: str, *, limit: int = 100
    ) -> builtins.list[TraceMonitorRun]:
        """The trace monitor's passes, newest window first."""
        return [_run(r) for r in self._http.get(f"{_path(name)}/runs", limit=limit)]
