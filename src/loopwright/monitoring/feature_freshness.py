"""Freshness alerts on the feature store's online views: opened when a view's age passes its
threshold (its TTL, or a max age asked for), resolved when it is fresh again.

Design. Alerts are rows of ``alerts``, which belong to a monitor (``monitor_id``, and the
unique ``(monitor_id, open_key)`` that keeps one open alert per rule whoever evaluates). Rather
than a table of their own (a schema change) or alerts without a monitor (every reader joins
``monitors``), the check keeps them under one monitor row, ``feature-freshness`` by default,
created the first time a view is stale (audited ``monitor.create``, like any monitor). So
freshness alerts are listed by ``monitors alerts``, counted by the ``loopwright_alerts_open``
gauge, and an ``alert`` trigger of that monitor can start a loop or a materialization pipeline.
The monitor has no schedule (``every_s`` None) and no rules of its own: ``run_due`` never runs
it, and a drift run of it (deployment ``features`` has no prediction log) finds no data and
alerts nothing. A monitor of that name created beforehand (with a webhook, to be told) is used
as it is. ``MonitoringService.run_due`` runs the check, so the scheduler keeps it current. Its
alerts record no monitor run (``first_run_id`` / ``last_run_id`` NULL): a freshness check reads
no window.

The rule of a view's alert is ``freshness:VIEW@STORE`` (the open key), without the threshold, so
a TTL change updates the open alert instead of leaving one per threshold open forever; the
threshold in force is the row's ``threshold`` (seconds) and its message names it. Views not in
the figures checked (another store, or not loaded) keep their alerts as they are.

Example:
    >>> from loopwright.config import resolve_settings
    >>> from loopwright.store.home import open_store
    >>> store = open_store(resolve_settings(home="lw-doc-freshness"))
    >>> check_freshness(store, []).opened
    ()
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa

from .._ids import new_id, now_ms
from ..features.freshness import Staleness, check
from ..store import schema as t
from ..store.audit import append_event
from . import webhooks
from ._alerts import insert_open_alert

if TYPE_CHECKING:
    from ..features.entities import Freshness
    from ..store.home import Store

__all__ = ["MONITOR", "FreshnessAlerts", "check_freshness", "rule_key"]

MONITOR = "feature-freshness"
DEPLOYMENT = "features"
_a, _m = t.alerts.c, t.monitors.c
_KEY_LIMIT = 400  # alerts.rule_key / open_key
Event = Literal["opened", "resolved"]


@dataclass(frozen=True)
class FreshnessAlerts:
    """What one freshness check did: ids of the alerts ``opened`` and ``resolved`` by it, the
    ids ``open`` after it (of the freshness monitor), and each view's verdict."""

    opened: tuple[str, ...]
    resolved: tuple[str, ...]
    open: tuple[str, ...]
    verdicts: tuple[Staleness, ...]


def rule_key(view: str, store: str) -> str:
    """The alert rule (and open key) of ``view`` in ``store``: ``freshness:VIEW@STORE``, the
    store's name replaced by a digest when the whole would not fit the column."""
    key = f"freshness:{view}@{store}"
    if len(key) <= _KEY_LIMIT:
        return key
    digest = hashlib.blake2b(store.encode(), digest_size=8).hexdigest()
    return f"freshness:{view}@{store[:80]}...{digest}"


def check_freshness(
    store: Store,
    freshness: Sequence[Freshness],
    *,
    max_age: float | None = None,
    monitor: str = MONITOR,
    actor: str | None = None,
    clock: Callable[[], int] | None = None,
    deliver: Callable[..., dict[str, Any]] = webhooks.deliver,
) -> FreshnessAlerts:
    """Open an alert for each stale view of ``freshness`` (``features.freshness.check``),
    count it again while it stays stale, resolve it once fresh; audited ``alert.open`` /
    ``alert.resolve``. Two checks at once open one alert per view (the unique open key).

    The alerts opened and resolved are sent to the monitor's webhook once committed, when it
    has one: create the monitor yourself with a webhook to be told (``loopwright monitors
    create feature-freshness --deployment features --webhook URL``); the check uses it.
    """
    verdicts = tuple(check(freshness, max_age=max_age))
    if not verdicts:  # nothing loaded: no write transaction (the scheduler calls this often)
        return FreshnessAlerts((), (), (), ())
    clock = clock or now_ms
    now = clock()
    who = actor or store.actor
    opened: list[str] = []
    resolved: list[str] = []
    with store.db.write() as conn:
        monitor_id = _monitor_id(conn, monitor)
        if monitor_id is None and any(v.stale for v in verdicts):
            monitor_id = _create_monitor(conn, monitor, who, now)
        if monitor_id is None:
            return FreshnessAlerts((), (), (), verdicts)
        events: list[tuple[str, str, dict[str, Any]]] = []
        for verdict in verdicts:
            key = rule_key(verdict.view, verdict.store)
            current = conn.execute(
                sa.select(_a.id).where(_a.monitor_id == monitor_id, _a.open_key == key)
            ).scalar()
            if verdict.stale:
                if current is None:
                    current = _insert(conn, monitor_id, key, verdict, now)
                    if current is not None:
                        opened.append(current)
                        events.append(("alert.open", current, _after(key, verdict)))
                        continue
                    current = conn.execute(  # another check opened it meanwhile
                        sa.select(_a.id).where(_a.monitor_id == monitor_id, _a.open_key == key)
                    ).scalar()
                    if current is None:
                        continue
                conn.execute(
                    t.alerts.update()
                    .where(_a.id == current, _a.status == "open")
                    .values(
                        occurrences=_a.occurrences + 1,
                        value=verdict.age_seconds,
                        threshold=verdict.threshold_seconds,
                        message=_message(verdict),
                        last_seen_at=now,
                    )
                )
            elif current is not None:
                done = conn.execute(
                    t.alerts.update()
                    .where(_a.id == current, _a.status == "open")
                    .values(
                        status="resolved",
                        open_key=None,
                        value=verdict.age_seconds,
                        resolved_at=now,
                        last_seen_at=now,
                    )
                )
                if done.rowcount == 1:
                    resolved.append(current)
                    events.append(("alert.resolve", current, _after(key, verdict)))
        for action, alert_id, after in events:
            append_event(
                conn,
                actor=who,
                action=action,
                subject_type="alert",
                subject_id=alert_id,
                after={"monitor": monitor, **after},
            )
        still = tuple(
            conn.execute(
                sa.select(_a.id)
                .where(_a.monitor_id == monitor_id, _a.status == "open")
                .order_by(_a.opened_at, _a.id)
            ).scalars()
        )
    changes: list[tuple[Event, str]] = [("opened", i) for i in opened]
    changes += [("resolved", i) for i in resolved]
    if changes:
        _notify(store, monitor, changes, deliver, clock)
    return FreshnessAlerts(tuple(opened), tuple(resolved), still, verdicts)


def _notify(
    store: Store,
    name: str,
    changes: Sequence[tuple[Event, str]],
    deliver: Callable[..., dict[str, Any]],
    clock: Callable[[], int],
) -> None:
    """Send each change to the monitor's webhook (if any); store what it answered."""
    from ._alerts import AlertBook, alert_payload
    from ._monitors import monitor as monitor_of

    with store.db.read() as conn:
        row = conn.execute(sa.select(t.monitors).where(_m.name == name)).first()
    found = None if row is None else monitor_of(row)
    if found is None or found.webhook is None:
        return
    alerts = {a.id: a for a in AlertBook(store).list(monitor=name)}
    silent: str | None = None  # an alert whose delivery got no answer: the rest are not sent
    for event, alert_id in changes:
        alert = alerts.get(alert_id)
        if alert is None:
            continue
        if silent is not None:
            outcome: dict[str, Any] = {
                "ok": False,
                "status": None,
                "attempts": 0,
                "error": f"not sent: the webhook did not answer for alert {silent}",
            }
        else:
            payload = {**alert_payload(event, found, alert, ""), "run_id": None}  # no run
            try:
                outcome = deliver(found.webhook, payload, format=found.webhook_format)
            except Exception as exc:  # a notifier's bug must not fail the check
                outcome = {"ok": False, "status": None, "attempts": 0, "error": repr(exc)}
            if outcome.get("attempts") and outcome.get("status") is None:
                silent = alert_id
        outcome = {"event": event, "at": clock(), **outcome}
        with store.db.write() as conn:
            conn.execute(
                t.alerts.update()
                .where(_a.id == alert_id)
                .values(delivery_json=json.dumps(outcome, sort_keys=True))
            )


def _monitor_id(conn: sa.Connection, name: str) -> str | None:
    found = conn.execute(sa.select(_m.id).where(_m.name == name)).scalar()
    return None if found is None else str(found)


def _create_monitor(conn: sa.Connection, name: str, actor: str, now: int) -> str:
    """The freshness monitor's row (no schedule, no rules of its own), audited."""
    from ._monitors import check_name

    check_name(name)
    spec: dict[str, Any] = {"window_s": 3600, "every_s": None, "alerts": []}
    monitor_id = new_id()
    row: dict[str, Any] = {
        "id": monitor_id,
        "name": name,
        "deployment": DEPLOYMENT,
        "reference_spec": "auto",
        "reference_id": None,
        "spec_json": json.dumps(spec, separators=(",", ":")),
        "description": "freshness alerts of the feature store's online views",
        "created_by": actor,
        "created_at": now,
        "updated_at": now,
        "last_run_at": None,
    }
    try:
        with conn.begin_nested():
            conn.execute(t.monitors.insert(), row)
    except sa.exc.IntegrityError:  # created by a concurrent check
        found = _monitor_id(conn, name)
        if found is None:
            raise
        return found
    snapshot = {"name": name, "deployment": DEPLOYMENT, "reference": "auto", "spec": spec}
    append_event(
        conn,
        actor=actor,
        action="monitor.create",
        subject_type="monitor",
        subject_id=monitor_id,
        after=snapshot,
    )
    return monitor_id


def _insert(
    conn: sa.Connection, monitor_id: str, key: str, verdict: Staleness, now: int
) -> str | None:
    """A new open alert's id, or None when a concurrent check opened it first (a freshness
    check reads no window: no monitor run)."""
    return insert_open_alert(
        conn,
        monitor_id=monitor_id,
        key=key,
        value=verdict.age_seconds,
        threshold=verdict.threshold_seconds,
        message=_message(verdict),
        run_id=None,
        now=now,
    )


def _message(verdict: Staleness) -> str:
    return (
        f"{verdict.reason}; load it again: loopwright features materialize {verdict.view} "
        "--incremental"
    )


def _after(key: str, verdict: Staleness) -> dict[str, Any]:
    return {
        "rule": key,
        "view": verdict.view,
        "store": verdict.store,
        "value": verdict.age_seconds,
        "threshold": verdict.threshold_seconds,
    }
