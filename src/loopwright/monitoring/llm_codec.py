"""Trace monitors' parts as JSON and back: what the stored run summary, the native API and
the remote client share (each entity's ``to_dict`` is the JSON form; these read it back).

Example:
    >>> selection_of({"gateway_route": "chat"}) == TraceSelection(gateway_route="chat")
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .entities import Monitor
from .llm_entities import (
    ActionOutcome,
    AlertAction,
    ScoringProgress,
    TraceError,
    TraceMonitor,
    TraceSelection,
)

__all__ = ["action_of", "outcome_of", "scoring_of", "selection_of", "trace_monitor_of"]


def trace_monitor_of(monitor: Monitor, data: Mapping[str, Any]) -> TraceMonitor:
    """A :class:`TraceMonitor` from its common part and ``TraceMonitor.to_dict()``."""
    return TraceMonitor(
        monitor=monitor,
        selection=selection_of(data["selection"]),
        sample_rate=float(data["sample_rate"]),
        scorers=tuple(data.get("scorers") or ()),
        baseline=str(data["baseline"]),
        actions=tuple(action_of(a) for a in data.get("actions") or ()),
        max_scored_per_pass=int(data.get("max_scored_per_pass") or 200),
        max_window_traces=int(data.get("max_window_traces") or 20_000),
    )


def selection_of(data: Mapping[str, Any]) -> TraceSelection:
    return TraceSelection(
        data.get("gateway_route"),
        data.get("prompt"),
        data.get("deployment"),
        tuple(data.get("experiment_ids") or ()),
    )


def action_of(data: Mapping[str, Any]) -> AlertAction:
    return AlertAction(
        data["kind"],
        data.get("on"),
        data.get("alias"),
        data.get("dataset"),
        data.get("endpoint"),
        data.get("model"),
    )


def scoring_of(data: Mapping[str, Any] | None) -> ScoringProgress | None:
    if data is None:
        return None
    return ScoringProgress(
        traces=int(data["traces"]),
        sampled=int(data["sampled"]),
        already_scored=int(data["already_scored"]),
        scored=int(data["scored"]),
        remaining=int(data["remaining"]),
        assessments=int(data["assessments"]),
        errors=tuple(
            TraceError(e["trace_id"], e["scorer"], e["error"]) for e in data.get("errors") or ()
        ),
    )


def outcome_of(data: Mapping[str, Any]) -> ActionOutcome:
    return ActionOutcome(
        alert_id=data["alert_id"],
        rule=data["rule"],
        kind=data["kind"],
        status=data["status"],
        detail=data["detail"],
        request_id=data.get("request_id"),
        evaluation_run_id=data.get("evaluation_run_id"),
        from_version=data.get("from_version"),
        to_version=data.get("to_version"),
    )
