"""What a trace monitor is and what one pass of it did: the LLM kind of monitor.

A trace monitor is an ordinary monitor (a ``monitors`` row, its runs in ``monitor_runs``, its
alerts in ``alerts``) whose subject is LLM traffic rather than a deployment's prediction log:
the traces a :class:`TraceSelection` picks. Each pass scores a sample of them
(:class:`ScoringProgress`), compares the window's scores, lengths, tokens, cost and latency
with a baseline (the drift result of the :class:`~loopwright.monitoring.entities.MonitorRun`),
and carries out the :class:`AlertAction` of each alert it opened (:class:`ActionOutcome`).

Example:
    >>> TraceSelection(gateway_route="support-chat").describe()
    "gateway route 'support-chat'"
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .entities import Monitor, MonitorRun

__all__ = [
    "ActionOutcome",
    "AlertAction",
    "ScoringProgress",
    "TraceError",
    "TraceMonitor",
    "TraceMonitorRun",
    "TraceSelection",
]

ActionKind = Literal["reevaluate", "rollback"]
ActionStatus = Literal["applied", "pending_approval", "refused", "failed"]


@dataclass(frozen=True)
class TraceSelection:
    """Which traces a monitor watches; every field given must match (at least one is given).

    ``prompt`` is ``NAME`` (any version), ``NAME/3`` (that version) or ``NAME@ALIAS`` (the
    version the alias points at when the pass runs: the approved version's traffic).
    """

    gateway_route: str | None = None
    prompt: str | None = None
    deployment: str | None = None
    experiment_ids: tuple[str, ...] = ()

    def describe(self) -> str:
        parts = []
        if self.gateway_route:
            parts.append(f"gateway route {self.gateway_route!r}")
        if self.prompt:
            parts.append(f"prompt {self.prompt!r}")
        if self.deployment:
            parts.append(f"deployment {self.deployment!r}")
        if self.experiment_ids:
            parts.append(f"experiments {', '.join(self.experiment_ids)}")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "gateway_route": self.gateway_route,
            "prompt": self.prompt,
            "deployment": self.deployment,
            "experiment_ids": list(self.experiment_ids),
        }


@dataclass(frozen=True)
class AlertAction:
    """What an alert of the monitor starts when it opens.

    ``on``: the alert rule's key it answers (``score.correctness<0.7``), None for any rule.
    ``rollback``: move ``alias`` of the monitored prompt back to the version it held before
    its current one, through the prompt's approval policy (a protected alias opens a request
    instead of moving). ``reevaluate``: evaluate the version the alias points at now on
    ``dataset`` with the monitor's scorers, calling ``model`` at ``endpoint`` (an
    OpenAI-compatible base URL, such as the gateway's ``/v1`` with a route name as model).
    """

    kind: ActionKind
    on: str | None = None
    alias: str | None = None
    dataset: str | None = None
    endpoint: str | None = None
    model: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        for key in ("on", "alias", "dataset", "endpoint", "model"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


@dataclass(frozen=True)
class TraceMonitor:
    """A monitor of LLM traffic.

    ``monitor`` is the common part (name, window, schedule, tests, thresholds, alert rules,
    webhook) as every monitor has it; ``scorers`` are registered scorer versions (``name/3``)
    or built-ins (``builtin:max_length:{"limit": 800}``), pinned when the monitor was
    created; ``sample_rate`` the share of traces scored (chosen by a hash of the trace id, so
    every pass picks the same ones); ``baseline`` is ``approved`` (the evaluation run of the
    version the monitored prompt alias points at), ``evaluation:RUN_ID`` or
    ``window:SINCE/UNTIL`` (the same selection's traces then, ISO times or ms).
    """

    monitor: Monitor
    selection: TraceSelection
    sample_rate: float
    scorers: tuple[str, ...]
    baseline: str
    actions: tuple[AlertAction, ...] = ()
    max_scored_per_pass: int = 200
    max_window_traces: int = 20_000

    @property
    def name(self) -> str:
        return self.monitor.name

    def to_dict(self) -> dict[str, Any]:
        """What is particular to this kind, as JSON (the common part is ``monitor``'s)."""
        return {
            "selection": self.selection.to_dict(),
            "sample_rate": self.sample_rate,
            "scorers": list(self.scorers),
            "baseline": self.baseline,
            "actions": [a.to_dict() for a in self.actions],
            "max_scored_per_pass": self.max_scored_per_pass,
            "max_window_traces": self.max_window_traces,
        }


@dataclass(frozen=True)
class TraceError:
    """One trace a scorer could not score: the error is stored on the trace's assessment too."""

    trace_id: str
    scorer: str
    error: str


@dataclass(frozen=True)
class ScoringProgress:
    """The online scoring of one pass: of ``traces`` in the window, ``sampled`` are in the
    sample; ``already_scored`` had an assessment of every scorer version; ``scored`` traces got
    new assessments this pass (``errors`` among them); ``remaining`` still wait (the pass
    scores at most ``max_scored_per_pass`` traces)."""

    traces: int
    sampled: int
    already_scored: int
    scored: int
    remaining: int
    assessments: int
    errors: tuple[TraceError, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "traces": self.traces,
            "sampled": self.sampled,
            "already_scored": self.already_scored,
            "scored": self.scored,
            "remaining": self.remaining,
            "assessments": self.assessments,
            "errors": [e.__dict__ for e in self.errors],
        }


@dataclass(frozen=True)
class ActionOutcome:
    """What an alert's action did: ``applied`` (the alias moved, the evaluation ran),
    ``pending_approval`` (the policy protects the alias: ``request_id`` awaits approvers),
    ``refused`` (nothing to do: no earlier version, a missing setting; ``detail`` says why) or
    ``failed`` (an error, in ``detail``)."""

    alert_id: str
    rule: str
    kind: ActionKind
    status: ActionStatus
    detail: str
    request_id: str | None = None
    evaluation_run_id: str | None = None
    from_version: int | None = None
    to_version: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class TraceMonitorRun:
    """One pass of a trace monitor: the stored run (drift of the window against the baseline,
    alerts), the online scoring, the figures alert rules saw, the actions taken."""

    run: MonitorRun
    scoring: ScoringProgress | None
    figures: Mapping[str, float] = field(default_factory=dict)
    actions: tuple[ActionOutcome, ...] = ()
    baseline: str | None = None  # what the baseline was, in words
