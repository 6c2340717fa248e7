"""The trace-monitor part of :class:`~loopwright.remote.monitoring.RemoteMonitoring`: monitors
of LLM traffic over the server's ``/api/v1/monitoring/trace-monitors``, decoded into the same
entities the embedded service returns. The class using it hands over its decoders of a monitor
and a monitor run (``_monitor_of``, ``_run_of``), so this module does not import it back."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from ..errors import InvalidInput
from ..monitoring.llm_codec import outcome_of, scoring_of, trace_monitor_of
from ..monitoring.llm_entities import AlertAction, TraceMonitor, TraceMonitorRun, TraceSelection

if TYPE_CHECKING:
    from ..monitoring.entities import Monitor, MonitorRun
    from ._http import Http

__all__ = ["RemoteTraceMonitorsMixin"]

_PATH = "/monitoring/trace-monitors"


def _path(name: str) -> str:
    from ..monitoring._monitors import check_name

    return f"{_PATH}/{quote(check_name(name), safe='')}"  # refused here, as embedded


def _seconds(what: str, span: object) -> float:
    if not isinstance(span, timedelta):
        raise InvalidInput(f"{what} must be a timedelta (e.g. timedelta(hours=1)), not {span!r}")
    return span.total_seconds()


def _strings(what: str, values: object) -> list[str]:
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise InvalidInput(f"{what} must be a list of strings, not {values!r}")
    return list(values)  # the server checks each item


class RemoteTraceMonitorsMixin:
    _http: Http
    _monitor_of: Callable[[dict[str, Any]], Monitor]
    _run_of: Callable[[dict[str, Any]], MonitorRun]

    def _trace_monitor(self, data: dict[str, Any]) -> TraceMonitor:
        return trace_monitor_of(self._monitor_of(data["monitor"]), data)

    def _trace_run(self, data: dict[str, Any]) -> TraceMonitorRun:
        return TraceMonitorRun(
            self._run_of(data["run"]),
            scoring_of(data.get("scoring")),
            {k: float(v) for k, v in (data.get("figures") or {}).items()},
            tuple(outcome_of(a) for a in data.get("actions") or ()),
            data.get("baseline"),
        )

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
        return self._trace_monitor(self._http.post(_PATH, body))

    def get_trace_monitor(self, name: str) -> TraceMonitor:
        """The trace monitor called ``name``."""
        return self._trace_monitor(self._http.get(_path(name)))

    def run_trace_monitor(self, name: str, *, at: datetime | None = None) -> TraceMonitorRun:
        """A pass on the server, as this token's user, over the window ending at ``at``."""
        if at is not None and not isinstance(at, datetime):
            raise InvalidInput(f"at must be a datetime, not {type(at).__name__}")
        moment = None if at is None else at if at.tzinfo else at.replace(tzinfo=UTC)
        body = {"at": None if moment is None else int(moment.timestamp() * 1000)}
        return self._trace_run(self._http.post(f"{_path(name)}/runs", body))

    def trace_monitor_history(
        self, name: str, *, limit: int = 100
    ) -> builtins.list[TraceMonitorRun]:
        """The trace monitor's passes, newest window first."""
        return [self._trace_run(r) for r in self._http.get(f"{_path(name)}/runs", limit=limit)]
