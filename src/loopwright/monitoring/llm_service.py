"""Trace monitors on the stores: create one, run a pass, read its passes.

A pass over ``[at - window, at)``: find the selection's traces (the prompt alias followed to
its version now), score the sample not yet scored (``llm_scoring``), compare the window's
per-trace figures with the baseline (``llm_baseline``) with the drift tests of
``monitoring.stats`` (``compare``: PSI, KS, Wasserstein, chi-square ... as for model
monitors), store the run as every monitor run is stored (``monitor_runs`` and
``monitor_results``), let the alert book open or resolve alerts on the drift figures and on
this kind's own (:func:`trace_figures`), then carry out the actions of the alerts it opened.

``MonitoringService.run`` and ``run_due`` hand trace monitors here, so a scheduler, the
``monitors`` CLI, history, reports, alerts and ``alert:MONITOR`` loop triggers treat them as
any other monitor.

Example:
    >>> from loopwright.config import resolve_settings
    >>> from loopwright.store.home import open_store
    >>> service = TraceMonitorService(open_store(resolve_settings(home="lw-doc-llm-monitor")))
    >>> service.create("chat-quality", traces=TraceSelection(gateway_route="chat"),
    ...     scorers=["builtin:json_valid"], baseline="window:0/1000").selection.gateway_route
    'chat'
"""

from __future__ import annotations

import builtins
import json
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa

from .._ids import new_id, now_ms
from ..errors import InvalidInput, NotFound
from ..store import limits
from ..store import schema as t
from ..store.named import Audited, named_row
from . import _monitors as checks
from . import _runs
from .entities import MonitorRun
from .llm_entities import AlertAction, TraceMonitor, TraceMonitorRun, TraceSelection
from .llm_spec import (
    FEATURES,
    KIND,
    MAX_PER_PASS,
    MAX_WINDOW_TRACES,
    check_actions,
    check_baseline,
    check_count,
    check_rate,
    check_selection,
    check_trace_thresholds,
    is_trace_spec,
    scorer_column,
    trace_monitor,
    traces_document,
    watched,
)

if TYPE_CHECKING:
    from ..evaluation.service import EvaluationService
    from ..prompts.service import PromptService
    from ..store.home import Store
    from ..tracing.service import TracingService
    from .llm_entities import ActionOutcome, ScoringProgress
    from .llm_scoring import LoadedScorer

__all__ = ["TraceMonitorService", "TraceMonitorsMixin", "trace_figures"]

_m, _r = t.monitors.c, t.monitor_runs.c


def trace_figures(
    current: Sequence[Mapping[str, Any]],
    reference: Sequence[Mapping[str, Any]],
    scorers: Sequence[str],
    scoring: ScoringProgress | None,
) -> dict[str, float]:
    """What alert rules of a trace monitor can name, beside the drift figures.

    ``traces`` (in the window), ``scored`` and ``score_errors`` (this pass); per scorer
    ``score.NAME`` (the window's mean of its numbers and booleans) and ``score.NAME.delta``
    (that mean minus the baseline's); per figure (``cost_usd``, ``latency_ms``,
    ``output_tokens`` ...) ``FIGURE.mean`` and ``FIGURE.p95``. A figure without values is left
    out (its rules neither hold nor resolve).
    """
    out: dict[str, float] = {"traces": float(len(current))}
    if scoring is not None:
        out["scored"] = float(scoring.scored)
        out["score_errors"] = float(len(scoring.errors))
    for name in scorers:
        column = scorer_column(name)
        mean = _mean(current, column)
        if mean is not None:
            out[column] = mean
            base = _mean(reference, column)
            if base is not None:
                out[f"{column}.delta"] = mean - base
    for feature in FEATURES:
        values = sorted(_numbers(current, feature))
        if values:
            out[f"{feature}.mean"] = sum(values) / len(values)
            out[f"{feature}.p95"] = values[min(len(values) - 1, math.ceil(0.95 * len(values)) - 1)]
    return out


def _numbers(rows: Sequence[Mapping[str, Any]], column: str) -> list[float]:
    found = []
    for row in rows:
        value = row.get(column)
        if isinstance(value, bool):
            found.append(1.0 if value else 0.0)
        elif isinstance(value, int | float) and math.isfinite(value):
            found.append(float(value))
    return found


def _mean(rows: Sequence[Mapping[str, Any]], column: str) -> float | None:
    values = _numbers(rows, column)
    return sum(values) / len(values) if values else None


class TraceMonitorService(Audited):
    """Monitors of LLM traffic (traces) on the stores.

    Args:
        store: the metadata and blob stores.
        actor: who changes are recorded as (default: the store's user); a rollback moves the
            alias as this user, so the prompt's approval rules apply to it.
        clock: the time in UTC milliseconds (tests pass a fake one).
    """

    _subject_type = "monitor"

    def __init__(
        self, store: Store, *, actor: str | None = None, clock: Callable[[], int] | None = None
    ) -> None:
        self.store = store
        self.db = store.db
        self._actor = actor
        self._clock = clock or now_ms

    # --- monitors ----------------------------------------------------------------------------

    def create(
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
        """A new monitor of the traces ``traces`` selects: ``scorers`` score a
        ``sample_rate`` share of them, and each pass compares the window with ``baseline``
        (see :class:`~loopwright.monitoring.llm_entities.TraceMonitor`); ``alerts`` are rules
        on the drift figures and on :func:`trace_figures`; ``actions`` what their alerts
        start. Registered scorers are pinned to a version now (their newest when none is
        given), so every pass scores with the same versions; a monitor with actions takes
        approved judge versions only."""
        selection = check_selection(traces)
        spec = {
            "kind": KIND,
            "window_s": checks.seconds("window", window, checks.MAX_WINDOW),
            "every_s": None if every is None else checks.seconds("every", every, checks.MAX_EVERY),
            "tests": checks.check_tests(tests),
            "columns": [],
            "thresholds": check_trace_thresholds(thresholds),
            "alerts": [rule.key for rule in checks.check_alerts(alerts)],
            "webhook": checks.check_webhook(webhook),
            "webhook_format": checks.check_choice(
                "webhook_format", webhook_format, ("json", "slack")
            ),
            "task": None,
        }
        checks.check_name(name)
        checked_actions = check_actions(actions, selection)
        document = traces_document(
            selection,
            sample_rate=check_rate(sample_rate),
            scorers=(),
            baseline=check_baseline(baseline, selection),
            actions=checked_actions,
            max_scored_per_pass=check_count(
                "max_scored_per_pass", max_scored_per_pass, MAX_PER_PASS
            ),
            max_window_traces=check_count(
                "max_window_traces", max_window_traces, MAX_WINDOW_TRACES
            ),
        )
        if description is not None:
            limits.check_text("monitor description", description, limit=limits.REGISTRY_TAG_VALUE)
        from .llm_scoring import pin_scorers

        document["scorers"] = pin_scorers(
            self._evaluation(), scorers, approved_judges=bool(checked_actions)
        )
        spec[KIND] = document
        with self.db.read() as conn:
            if conn.execute(sa.select(_m.id).where(_m.name == name)).first() is not None:
                raise checks.exists(name)
        now, monitor_id = self._clock(), new_id()
        row = {
            "id": monitor_id,
            "name": name,
            "deployment": watched(selection),
            "reference_spec": document["baseline"][:600],
            "reference_id": None,
            "spec_json": json.dumps(spec, separators=(",", ":")),
            "description": description,
            "created_by": self._actor_name(),
            "created_at": now,
            "updated_at": now,
            "last_run_at": None,
        }
        try:
            with self.db.write() as conn:
                conn.execute(t.monitors.insert(), row)
                self._audit(
                    conn,
                    "monitor.create",
                    monitor_id,
                    after={"name": name, "deployment": row["deployment"], "spec": spec},
                )
        except sa.exc.IntegrityError:
            raise checks.exists(name) from None
        return self.get(name)

    def get(self, name: str) -> TraceMonitor:
        """The trace monitor called ``name`` (a monitor of a deployment is refused, naming
        ``client.monitoring``)."""
        with self.db.read() as conn:
            row = self._row(conn, name)
        spec = json.loads(row.spec_json)
        if not is_trace_spec(spec):
            raise InvalidInput(
                f"monitor {name!r} watches deployment {row.deployment!r}'s predictions, not "
                "traces; use client.monitoring for it"
            )
        return trace_monitor(checks.monitor(row), spec)

    # --- passes ------------------------------------------------------------------------------

    def run(self, name: str, *, at: datetime | None = None) -> TraceMonitorRun:
        """Run a pass over ``[at - window, at)`` (default ``at``: now) and store it.

        A window without traces gives a ``no_data`` run. A failure inside the pass (an alias
        that no longer exists, no baseline, a scorer whose code changed) is the run's
        outcome: a ``failed`` run is stored with the error and returned, so the history
        shows it. Per-trace scorer errors are not failures: they are assessments with an
        error (``scoring.errors``).

        One pass of a monitor runs at a time (``llm_claim``): a pass started while another
        runs raises :class:`~loopwright.errors.Conflict` and stores nothing, so no trace is
        scored (a judge paid) twice."""
        from .llm_claim import claim_pass

        monitor = self.get(name)
        end = self._clock() if at is None else checks.ms_of(at)
        start = end - monitor.monitor.window_s * 1000
        with claim_pass(self.db, monitor.name, clock=self._clock):
            started = self._clock()
            try:
                outcome = self._pass(monitor, start, end, started)
            except Exception as exc:  # recorded as the run's outcome (see the docstring)
                error = f"{type(exc).__name__}: {exc}"[:4000]
                failed = self._run_of(monitor, started, start, end, "failed", error=error)
                outcome = TraceMonitorRun(failed, None)
            return self._store(monitor, outcome)

    def history(self, name: str, *, limit: int = 100) -> list[TraceMonitorRun]:
        """The monitor's passes, newest window first, with their scoring and actions."""
        check_count("limit", limit, 10_000)
        with self.db.read() as conn:
            row = self._row(conn, name)
            rows = conn.execute(
                sa.select(t.monitor_runs)
                .where(_r.monitor_id == row.id)
                .order_by(_r.window_end.desc(), _r.started_at.desc(), _r.id.desc())
                .limit(limit)
            ).all()
        return [_stored(r, name) for r in rows]

    def _pass(self, monitor: TraceMonitor, start: int, end: int, started: int) -> TraceMonitorRun:
        from .llm_baseline import resolve_prompt_version
        from .llm_scoring import load_scorers, score_window
        from .llm_window import read_traces

        tracing = self._tracing()
        version = resolve_prompt_version(self._prompts(), monitor.selection)
        ids, more = read_traces(
            self.store, monitor.selection, version, start, end, limit=monitor.max_window_traces
        )
        versions = () if version is None else (f"prompts:/{version}",)
        if not ids:
            run = self._run_of(monitor, started, start, end, "no_data", model_versions=versions)
            return TraceMonitorRun(run, None)
        scorers = load_scorers(self._evaluation(), monitor.scorers)
        scoring = score_window(self.store, tracing, monitor, scorers, ids)
        try:
            return self._compare(monitor, start, end, started, version, ids, more, scorers, scoring)
        except Exception as exc:  # the scoring done stays on the failed run
            error = f"{type(exc).__name__}: {exc}"[:4000]
            run = self._run_of(
                monitor, started, start, end, "failed", rows=len(ids), model_versions=versions,
                error=error,
            )  # fmt: skip
            return TraceMonitorRun(run, scoring)

    def _compare(
        self,
        monitor: TraceMonitor,
        start: int,
        end: int,
        started: int,
        version: str | None,
        ids: list[str],
        more: bool,
        scorers: list[LoadedScorer],
        scoring: ScoringProgress,
    ) -> TraceMonitorRun:
        """The rest of a pass once the window is scored: the window against its baseline."""
        from dataclasses import replace

        from .compare import compare
        from .llm_baseline import baseline_rows
        from .llm_scoring import score_window, scorer_sources
        from .llm_window import features_table, scores_of, window_rows

        tracing = self._tracing()
        versions = () if version is None else (f"prompts:/{version}",)
        sources = scorer_sources(scorers)
        with self.db.read() as conn:
            scores = scores_of(conn, ids, sources)
            per_trace = window_rows(conn, ids)
        current = []
        for trace_id in ids:
            if trace_id not in per_trace:
                continue  # deleted since it was found
            row = per_trace[trace_id]
            for scorer, value in scores.get(trace_id, {}).items():
                row[scorer_column(scorer)] = value
            current.append(row)
        scored_before: list[ScoringProgress] = []

        def score_baseline(baseline_ids: Sequence[str]) -> None:
            scored_before.append(score_window(self.store, tracing, monitor, scorers, baseline_ids))

        baseline = baseline_rows(
            self.store, tracing, monitor.baseline, monitor.selection, version, sources,
            limit=monitor.max_window_traces, score=score_baseline,
        )  # fmt: skip
        for extra in scored_before:  # the baseline window's traces, scored in this pass too
            scoring = replace(
                scoring,
                assessments=scoring.assessments + extra.assessments,
                errors=scoring.errors + extra.errors,
            )
        if not baseline.rows:
            raise NotFound(f"the baseline ({baseline.description}) holds no rows to compare with")
        names = [s.name for s in scorers]
        columns = [
            c
            for c in (*FEATURES, *(scorer_column(n) for n in names))
            if _has_values(current, c) and _has_values(baseline.rows, c)
        ]
        if not columns:
            raise InvalidInput(
                f"the window and the baseline ({baseline.description}) share no figure with "
                "values to compare"
            )
        reference_table = features_table(baseline.rows, names).select(columns)
        current_table = features_table(current, names).select(columns)
        drift = compare(
            reference_table,
            current_table,
            tests=monitor.monitor.tests,
            columns=columns,
            thresholds=monitor.monitor.thresholds,
        )
        notes = [n for n in (baseline.note,) if n]
        if more:
            notes.append(
                f"the window holds more than {monitor.max_window_traces} traces: the oldest "
                "ones were read"
            )
        run = self._run_of(
            monitor, started, start, end, "ok", rows=len(ids), model_versions=versions,
            drift=drift,
        )  # fmt: skip
        figures = trace_figures(current, baseline.rows, names, scoring)
        description = baseline.description + (f" ({'; '.join(notes)})" if notes else "")
        return TraceMonitorRun(run, scoring, figures, (), description)

    def _store(self, monitor: TraceMonitor, outcome: TraceMonitorRun) -> TraceMonitorRun:
        from dataclasses import replace

        from ._alerts import AlertBook

        run = outcome.run
        with self.db.write() as conn:
            row = self._row(conn, monitor.name, lock=True)
            _runs.insert_run(conn, row.id, run)
            _set_summary(conn, outcome)
            last = (
                run.started_at if row.last_run_at is None else max(row.last_run_at, run.started_at)
            )
            conn.execute(t.monitors.update().where(_m.id == row.id).values(last_run_at=last))
        if run.status != "ok":
            return outcome
        book = AlertBook(self.store, actor=self._actor_name(), clock=self._clock)
        before = {a.id for a in book.list(monitor=monitor.name, status="open")}
        opened = book.evaluate(monitor.monitor, run, extra=outcome.figures)
        actions = self._act(monitor, [i for i in opened if i not in before], book)
        outcome = replace(outcome, run=replace(run, alerts=tuple(opened)), actions=actions)
        with self.db.write() as conn:
            _set_summary(conn, outcome)
        return outcome

    def _act(self, monitor: TraceMonitor, new: list[str], book: Any) -> tuple[ActionOutcome, ...]:
        if not new or not monitor.actions:
            return ()
        from .llm_actions import run_action
        from .llm_scoring import load_scorers

        alerts = {a.id: a for a in book.list(monitor=monitor.name, status="open") if a.id in new}
        evaluation = self._evaluation()
        scorers = load_scorers(evaluation, monitor.scorers)
        done = []
        for alert_id in new:
            alert = alerts.get(alert_id)
            if alert is None:
                continue
            for action in monitor.actions:
                if action.on is None or action.on == alert.rule:
                    done.append(
                        run_action(
                            self.store,
                            action,
                            monitor,
                            alert,
                            prompts=self._prompts(),
                            evaluation=evaluation,
                            scorers=scorers,
                            actor=self._actor_name(),
                        )
                    )
        return tuple(done)

    def _run_of(
        self, monitor: TraceMonitor, started: int, start: int, end: int, status: Any, **figures: Any
    ) -> MonitorRun:
        nothing: dict[str, Any] = {
            "rows": 0,
            "model_versions": (),
            "drift": None,
            "performance": None,
        }
        return MonitorRun(
            id=new_id(), monitor=monitor.name, started_at=started, finished_at=self._clock(),
            window_start=start, window_end=end, status=status, **(nothing | figures),
        )  # fmt: skip

    # --- services ----------------------------------------------------------------------------

    def _tracing(self) -> TracingService:
        from ..tracing.service import TracingService

        return TracingService(self.store)

    def _prompts(self) -> PromptService:
        from ..prompts.service import PromptService

        return PromptService(self.store, actor=self._actor_name(), clock=self._clock)

    def _evaluation(self) -> EvaluationService:
        from ..evaluation.service import EvaluationService
        from ..tracking.service import TrackingService

        return EvaluationService(self.store, tracking=TrackingService(self.store))

    def _row(self, conn: sa.Connection, name: str, *, lock: bool = False) -> Any:
        name, hint = checks.check_name(name), "create one with create(name, traces=...)"
        return named_row(conn, t.monitors, name, what="monitor", hint=hint, lock=lock)


def _has_values(rows: Sequence[Mapping[str, Any]], column: str) -> bool:
    return any(row.get(column) is not None for row in rows)


def _set_summary(conn: sa.Connection, outcome: TraceMonitorRun) -> None:
    """The run's stored summary with this kind's part under ``traces``."""
    summary = _runs.summary_of(outcome.run)
    summary[KIND] = {
        "scoring": None if outcome.scoring is None else outcome.scoring.to_dict(),
        "figures": {k: v for k, v in outcome.figures.items() if math.isfinite(v)},
        "actions": [a.to_dict() for a in outcome.actions],
        "baseline": outcome.baseline,
    }
    conn.execute(
        t.monitor_runs.update()
        .where(_r.id == outcome.run.id)
        .values(summary_json=json.dumps(summary, separators=(",", ":")))
    )


def _stored(row: Any, name: str) -> TraceMonitorRun:
    from .llm_codec import outcome_of, scoring_of

    part = json.loads(row.summary_json).get(KIND) or {}
    return TraceMonitorRun(
        _runs.run_from_row(row, name),
        scoring_of(part.get("scoring")),
        dict(part.get("figures") or {}),
        tuple(outcome_of(a) for a in part.get("actions") or ()),
        part.get("baseline"),
    )


class TraceMonitorsMixin:
    """The trace-monitor part of the embedded :class:`~loopwright.monitoring.service.
    MonitoringService` (the ``Monitoring`` protocol's ``*trace_monitor*`` methods)."""

    store: Store
    _actor: str | None
    _clock: Callable[[], int]

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
        """A new monitor of LLM traffic (see :meth:`TraceMonitorService.create`)."""
        return self._trace_monitors().create(
            name, traces=traces, scorers=scorers, sample_rate=sample_rate, baseline=baseline,
            window=window, every=every, tests=tests, thresholds=thresholds, alerts=alerts,
            actions=actions, webhook=webhook, webhook_format=webhook_format,
            description=description, max_scored_per_pass=max_scored_per_pass,
            max_window_traces=max_window_traces,
        )  # fmt: skip

    def get_trace_monitor(self, name: str) -> TraceMonitor:
        """The trace monitor called ``name``."""
        return self._trace_monitors().get(name)

    def run_trace_monitor(self, name: str, *, at: datetime | None = None) -> TraceMonitorRun:
        """A pass of the trace monitor now (or over the window ending at ``at``), with its
        scoring, figures and actions."""
        return self._trace_monitors().run(name, at=at)

    def trace_monitor_history(
        self, name: str, *, limit: int = 100
    ) -> builtins.list[TraceMonitorRun]:
        """The trace monitor's passes, newest window first."""
        return self._trace_monitors().history(name, limit=limit)

    def _trace_monitors(self) -> TraceMonitorService:
        return TraceMonitorService(self.store, actor=self._actor, clock=self._clock)
