"""Alert events from monitor runs: opened when a rule holds, deduplicated while it persists,
resolved when it stops holding, delivered to the monitor's webhook.

One row of ``alerts`` stands for one episode of a rule holding. While it is open its
``open_key`` holds the rule's key, so the unique ``(monitor_id, open_key)`` constraint allows one
open alert per rule on every backend, whoever evaluates; resolving sets ``open_key`` to NULL and
the row stays as history. A figure missing from a run (no labels yet, a test not run) leaves the
alert as it is: only a figure that no longer meets the rule resolves it.

Example:
    >>> from loopwright.monitoring.entities import MonitorRun
    >>> run = MonitorRun("r1", "m", 0, 1, 0, 1, "ok", 120, (), None, None)
    >>> figures(run)
    {'rows': 120.0}
"""

from __future__ import annotations

import builtins
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa

from .._ids import new_id, now_ms
from ..errors import InvalidInput, NotFound
from ..store import schema as t
from ..store.audit import append_event
from . import webhooks
from .entities import Alert, AlertRule, Monitor, MonitorRun

if TYPE_CHECKING:
    from ..store.home import Store

__all__ = ["AlertBook", "figures"]

_a, _m = t.alerts.c, t.monitors.c


def figures(run: MonitorRun) -> dict[str, float]:
    """The values alert rules are checked against, by the names ``AlertRule`` accepts.

    ``rows`` (rows logged in the window); from drift: ``drift_share``, ``dataset_drift`` (1 or
    0), each ``TEST:COLUMN`` and, per test, its worst value over the columns (``psi``): the
    largest, or the smallest for a p-value test (``higher_is_drift`` False in the test registry;
    for a test not registered here, when a drifted result lies below its threshold); from
    performance: each metric by name and ``coverage``. NaN figures are left out (a rule on them
    neither holds nor resolves).
    """
    out: dict[str, float] = {"rows": float(run.rows)}
    drift = run.drift
    if drift is not None:
        out["drift_share"] = float(drift.share_drifted)
        out["dataset_drift"] = 1.0 if drift.dataset_drift else 0.0
        by_test: dict[str, list[float]] = {}
        low_means_drift: dict[str, bool] = {}
        for result in drift.tests:
            value = float(result.statistic)
            if math.isnan(value):
                continue
            out[f"{result.test}:{result.column}"] = value
            by_test.setdefault(result.test, []).append(value)
            if result.drifted and value != result.threshold:
                low_means_drift.setdefault(result.test, value < result.threshold)
        for test, values in by_test.items():
            low = _low_means_drift(test)
            if low is None:
                low = low_means_drift.get(test, False)
            out[test] = min(values) if low else max(values)
    performance = run.performance
    if performance is not None:
        for name, value in performance.metrics.items():
            if not math.isnan(value):
                out[name] = float(value)
        if not math.isnan(performance.coverage):
            out["coverage"] = float(performance.coverage)
    return out


def _low_means_drift(test: str) -> bool | None:
    """Whether the registry says low values of ``test`` mean drift (None: not registered)."""
    from .stats import TESTS

    cls = TESTS.get(test)
    higher = getattr(cls, "higher_is_drift", None)
    return None if higher is None else not higher


@dataclass(frozen=True)
class _Change:
    """An alert opened or resolved by this evaluation: notified once committed."""

    event: Literal["opened", "resolved"]
    alert_id: str


class AlertBook:
    """Open, deduplicate and resolve alerts on monitor runs; list them.

    Args:
        store: the metadata store.
        actor: who the audit events are recorded as (default: the store's user).
        clock: the time in UTC milliseconds (tests pass a fake one).
        deliver: how webhooks are sent (default :func:`webhooks.deliver`).
    """

    def __init__(
        self,
        store: Store,
        *,
        actor: str | None = None,
        clock: Callable[[], int] | None = None,
        deliver: Callable[..., dict[str, Any]] = webhooks.deliver,
    ) -> None:
        self.store = store
        self.db = store.db
        self._actor = actor or store.actor
        self._clock = clock or now_ms
        self._deliver = deliver

    # --- evaluating ----------------------------------------------------------------------------

    def evaluate(
        self, monitor: Monitor, run: MonitorRun, *, extra: Mapping[str, float] | None = None
    ) -> tuple[str, ...]:
        """Apply the monitor's rules to ``run``; returns the ids of the alerts open after it.

        ``extra``: figures of the monitor's kind beside :func:`figures` (a trace monitor's
        mean scores, cost and latency), by the names its rules use.

        A run whose status is not ``ok`` changes nothing. The alerts opened and resolved are
        then sent to ``monitor.webhook`` (if any); what it answered is stored in the alert's
        ``delivery`` and a dead webhook never fails the run. Evaluating the same run twice (or
        from two processes at once) counts it once.
        """
        changes: builtins.list[_Change] = []
        if run.status == "ok" and monitor.alerts:
            values = figures(run) | dict(extra or {})
            now = self._clock()
            with self.db.write() as conn:
                changes = self._apply(conn, monitor, run, values, now)
        if changes and monitor.webhook:
            self._notify(monitor, run, changes)
        with self.db.read() as conn:
            ids = conn.execute(
                sa.select(_a.id)
                .where(_a.monitor_id == monitor.id, _a.status == "open")
                .order_by(_a.opened_at, _a.id)
            ).scalars()
            return tuple(ids)

    def _apply(
        self,
        conn: sa.Connection,
        monitor: Monitor,
        run: MonitorRun,
        values: dict[str, float],
        now: int,
    ) -> builtins.list[_Change]:
        changes: builtins.list[_Change] = []
        events: builtins.list[tuple[str, str, dict[str, Any]]] = []
        rules = {rule.key: rule for rule in monitor.alerts}  # a rule given twice counts once
        for key, rule in rules.items():
            value = values.get(rule.metric)
            if value is None:
                continue  # not measured on this run: the alert stays as it is
            current = self._open(conn, monitor.id, key)
            if rule.holds(value):
                if current is None:
                    opened = self._insert(conn, monitor, run, rule, value, now)
                    if opened is not None:
                        changes.append(_Change("opened", opened["id"]))
                        events.append(("alert.open", opened["id"], opened))
                        continue
                    current = self._open(conn, monitor.id, key)  # another evaluation's
                    if current is None:  # opened and resolved meanwhile: next run decides
                        continue
                if current.last_run_id == run.id:
                    continue  # this run was counted already
                # The conditions are checked again under the row's lock (PostgreSQL): a
                # concurrent evaluation of the same run does not count it twice.
                conn.execute(
                    t.alerts.update()
                    .where(
                        _a.id == current.id,
                        _a.status == "open",
                        sa.or_(_a.last_run_id.is_(None), _a.last_run_id != run.id),
                    )
                    .values(
                        occurrences=_a.occurrences + 1,
                        value=value,
                        message=_message(monitor, rule, value),
                        last_seen_at=now,
                        last_run_id=run.id,
                    )
                )
            elif current is not None:
                resolved = conn.execute(
                    t.alerts.update()
                    .where(_a.id == current.id, _a.status == "open")
                    .values(
                        status="resolved",
                        open_key=None,
                        value=value,
                        resolved_at=now,
                        last_run_id=run.id,
                    )
                )
                if resolved.rowcount != 1:
                    continue  # a concurrent evaluation resolved it
                changes.append(_Change("resolved", current.id))
                events.append(
                    (
                        "alert.resolve",
                        current.id,
                        {"rule": key, "value": _finite(value), "run_id": run.id},
                    )
                )
        # Audit last: on PostgreSQL the audit's lock is then taken after every alert row's, so
        # two evaluations waiting on each other's rows cannot also wait on it.
        for action, alert_id, after in events:
            append_event(
                conn,
                actor=self._actor,
                action=action,
                subject_type="alert",
                subject_id=alert_id,
                after={"monitor": monitor.name, **after},
            )
        return changes

    @staticmethod
    def _open(conn: sa.Connection, monitor_id: str, key: str) -> Any:
        return conn.execute(
            sa.select(_a.id, _a.last_run_id).where(_a.monitor_id == monitor_id, _a.open_key == key)
        ).first()

    @staticmethod
    def _insert(
        conn: sa.Connection,
        monitor: Monitor,
        run: MonitorRun,
        rule: AlertRule,
        value: float,
        now: int,
    ) -> dict[str, Any] | None:
        """A new open alert's row, or None when another evaluation opened it first."""
        message = _message(monitor, rule, value)
        alert_id = insert_open_alert(
            conn,
            monitor_id=monitor.id,
            key=rule.key,
            value=value,
            threshold=rule.threshold,
            message=message,
            run_id=run.id,
            now=now,
        )
        if alert_id is None:
            return None
        row = {"id": alert_id, "message": message}
        return {
            "id": row["id"],
            "rule": rule.key,
            "value": _finite(value),
            "message": row["message"],
            "run_id": run.id,
        }

    # --- notifying -----------------------------------------------------------------------------

    def _notify(self, monitor: Monitor, run: MonitorRun, changes: builtins.list[_Change]) -> None:
        assert monitor.webhook is not None
        ids = [change.alert_id for change in changes]
        alerts = {a.id: a for a in self._select(_a.id.in_(ids))}
        silent: str | None = None  # the alert whose delivery got no answer
        for change in changes:
            alert = alerts.get(change.alert_id)
            if alert is None:  # the monitor was deleted meanwhile
                continue
            if silent is not None:
                # A webhook that did not answer once would make every later alert of the run
                # wait out its timeouts and retries too.
                outcome: dict[str, Any] = {
                    "ok": False,
                    "status": None,
                    "attempts": 0,
                    "error": f"not sent: the webhook did not answer for alert {silent} of this run",
                }
            else:
                payload = alert_payload(change.event, monitor, alert, run.id)
                try:
                    outcome = self._deliver(monitor.webhook, payload, format=monitor.webhook_format)
                except Exception as exc:  # a notifier's bug must not fail the run
                    outcome = {"ok": False, "status": None, "attempts": 0, "error": repr(exc)}
                if outcome.get("attempts") and outcome.get("status") is None:
                    silent = alert.id
            outcome = {"event": change.event, "at": self._clock(), **outcome}
            with self.db.write() as conn:
                conn.execute(
                    t.alerts.update()
                    .where(_a.id == change.alert_id)
                    .values(delivery_json=json.dumps(outcome, sort_keys=True))
                )

    # --- reading -------------------------------------------------------------------------------

    def list(self, *, monitor: str | None = None, status: str | None = None) -> list[Alert]:
        """Alerts, newest first; only ``monitor``'s (by name) and of ``status`` when given."""
        condition: sa.ColumnElement[bool] = sa.true()
        if status is not None:
            if status not in ("open", "resolved"):
                raise InvalidInput(f"alert status {status!r} is not 'open' or 'resolved'")
            condition = sa.and_(condition, _a.status == status)
        if monitor is not None:
            with self.db.read() as conn:
                found = conn.execute(sa.select(_m.id).where(_m.name == monitor)).scalar()
                if found is None:
                    known = conn.execute(sa.select(_m.name).order_by(_m.name).limit(20)).scalars()
                    raise NotFound(
                        f"monitor {monitor!r} does not exist; monitors: "
                        f"{', '.join(known) or 'none'}"
                    )
            condition = sa.and_(condition, _a.monitor_id == found)
        return self._select(condition)

    def _select(self, condition: sa.ColumnElement[bool]) -> builtins.list[Alert]:
        query = (
            sa.select(t.alerts, _m.name.label("monitor_name"))
            .join(t.monitors, _m.id == _a.monitor_id)
            .where(condition)
            .order_by(_a.opened_at.desc(), _a.id.desc())
        )
        with self.db.read() as conn:
            return [_alert(row) for row in conn.execute(query)]


def insert_open_alert(
    conn: sa.Connection,
    *,
    monitor_id: str,
    key: str,
    value: float | None,
    threshold: float | None,
    message: str,
    run_id: str | None,
    now: int,
) -> str | None:
    """Open an alert of ``monitor_id`` under the rule ``key``: its id, or None when another
    evaluation opened it first (the unique (monitor_id, open_key) constraint)."""
    row: dict[str, Any] = {
        "id": new_id(),
        "monitor_id": monitor_id,
        "rule_key": key,
        "open_key": key,
        "status": "open",
        "value": value,
        "threshold": threshold,
        "message": message,
        "occurrences": 1,
        "first_run_id": run_id,
        "last_run_id": run_id,
        "opened_at": now,
        "last_seen_at": now,
        "resolved_at": None,
        "delivery_json": None,
    }
    try:
        # A savepoint: the refusal must not end the transaction holding the caller's other rows.
        with conn.begin_nested():
            conn.execute(t.alerts.insert(), row)
    except sa.exc.IntegrityError:
        return None
    return str(row["id"])


def alert_payload(
    event: Literal["opened", "resolved"], monitor: Monitor, alert: Alert, run_id: str
) -> dict[str, Any]:
    """The JSON body a webhook receives for one alert event (times in UTC milliseconds)."""
    return {
        "event": event,
        "alert_id": alert.id,
        "monitor": monitor.name,
        "deployment": monitor.deployment,
        "rule": alert.rule,
        "value": _finite(alert.value),
        "threshold": alert.threshold,
        "message": alert.message,
        "status": alert.status,
        "occurrences": alert.occurrences,
        "opened_at": alert.opened_at,
        "last_seen_at": alert.last_seen_at,
        "resolved_at": alert.resolved_at,
        "run_id": run_id,
    }


def _message(monitor: Monitor, rule: AlertRule, value: float) -> str:
    return (
        f"{rule.metric} is {value:.4g} ({rule.op} {rule.threshold:g}) on monitor "
        f"{monitor.name!r} of deployment {monitor.deployment!r}"
    )


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _alert(row: Any) -> Alert:
    return Alert(
        id=row.id,
        monitor=row.monitor_name,
        rule=row.rule_key,
        status=row.status,
        value=row.value,
        threshold=row.threshold,
        message=row.message,
        occurrences=row.occurrences,
        opened_at=row.opened_at,
        last_seen_at=row.last_seen_at,
        resolved_at=row.resolved_at,
        delivery=None if row.delivery_json is None else json.loads(row.delivery_json),
    )
