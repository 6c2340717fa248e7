"""What starts a job: time triggers (``cron:``, ``interval:``), event triggers (``drift:``,
``performance:``, ``alert:``, ``dataset:``) and ``manual``.

A time trigger has due times (:func:`next_due`); an event trigger has events (:func:`events`),
read past a cursor, the key of the newest event already seen, so each event fires once.
Alert and dataset-version keys are their ids, UUIDv7, which sort by creation time.

Example:
    >>> parse_trigger("interval:6h").spec
    '6h'
    >>> parse_trigger("cron:0 3 * * mon").kind
    'cron'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import InvalidInput
from ..store import limits
from . import cron
from .entities import Trigger

if TYPE_CHECKING:
    from ..client import Client
    from ..monitoring.entities import Alert

__all__ = [
    "EVENT_KINDS",
    "TIME_KINDS",
    "Event",
    "events",
    "interval_ms",
    "is_drift_rule",
    "next_due",
    "parse_trigger",
]

TIME_KINDS = frozenset({"cron", "interval"})
EVENT_KINDS = frozenset({"drift", "performance", "alert", "dataset"})
FORMS = (
    "triggers: 'cron:MIN HOUR DOM MON DOW' (UTC, e.g. 'cron:0 3 * * 1'), 'interval:N{s,m,h,d}' "
    "(e.g. 'interval:30m', 'interval:6h'), 'drift:MONITOR', 'performance:MONITOR', "
    "'alert:MONITOR', 'dataset:NAME', 'manual'"
)
_INTERVAL = re.compile(r"([1-9][0-9]{0,8})([smhd])")
_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_MIN_INTERVAL_MS = 10_000  # below the scheduler's usual tick, an interval only means "every tick"
_MAX_INTERVAL_MS = 366 * 86_400_000
_SUBJECT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,199}")
# Alert rule metrics that measure drift (the rest are performance metrics: accuracy, f1 ...).
_DRIFT_METRICS = frozenset({"drift_share", "dataset_drift"})


@dataclass(frozen=True)
class Event:
    """One thing an event trigger fires on: ``key`` (an alert or dataset version id), when it
    happened, and a line saying what it was (passed on as the job's trigger detail)."""

    key: str
    at: int
    detail: str


def parse_trigger(text: str) -> Trigger:
    """The trigger written ``text``; InvalidInput listing the accepted forms otherwise."""
    if not isinstance(text, str) or len(text) > 600:
        raise InvalidInput(f"trigger {str(text)[:100]!r} is not a trigger; {FORMS}")
    stripped = text.strip()
    if stripped == "manual":
        return Trigger("manual", "", "manual")
    kind, colon, spec = stripped.partition(":")
    spec = spec.strip()
    if not colon or kind not in TIME_KINDS | EVENT_KINDS or not spec:
        raise InvalidInput(f"trigger {text[:100]!r} is not a trigger; {FORMS}")
    if kind == "cron":
        spec = cron.parse(spec).text
    elif kind == "interval":
        interval_ms(spec)
    elif not _SUBJECT.fullmatch(spec):
        what = "dataset" if kind == "dataset" else "monitor"
        raise InvalidInput(
            f"trigger {text[:100]!r}: {what} name {spec[:100]!r} must be letters, digits, '.', "
            f"'_', '-' or '/', at most 200; {FORMS}"
        )
    return Trigger(kind, spec, f"{kind}:{spec}")  # type: ignore[arg-type]


def interval_ms(spec: str) -> int:
    """``30m`` as milliseconds; InvalidInput saying the form and bounds otherwise."""
    match = _INTERVAL.fullmatch(spec.strip()) if isinstance(spec, str) else None
    if match is None:
        raise InvalidInput(
            f"interval {str(spec)[:50]!r} must be a whole number and a unit s, m, h or d "
            f"(e.g. 90s, 30m, 6h, 1d); {FORMS}"
        )
    value = int(match[1]) * _UNIT_MS[match[2]]
    if not _MIN_INTERVAL_MS <= value <= _MAX_INTERVAL_MS:
        raise InvalidInput(f"interval {spec!r} must be from 10s to 366d")
    return value


def next_due(trigger: Trigger, *, after: int, previous: int | None = None) -> int | None:
    """The next due time of a time trigger strictly after ``after`` (None for other kinds).

    An interval keeps its phase: from ``previous`` (the due time just fired) it steps whole
    intervals past ``after``, so a scheduler that was down fires once for all the slots it
    missed, then goes on at the usual times; without ``previous`` it is ``after + interval``.
    """
    if trigger.kind == "cron":
        return cron.next_after(trigger.spec, after)
    if trigger.kind != "interval":
        return None
    step = interval_ms(trigger.spec)
    if previous is None:
        return after + step
    missed = max(0, (after - previous) // step)
    return previous + (missed + 1) * step


def is_drift_rule(rule_key: str) -> bool:
    """Whether an alert rule (``psi:input.age>0.2``, ``drift_share>0.3``) measures drift
    rather than performance (``accuracy<0.8``)."""
    from ..monitoring.entities import AlertRule
    from ..monitoring.stats import TESTS

    metric = AlertRule.parse(rule_key).metric
    return metric in _DRIFT_METRICS or metric.partition(":")[0] in TESTS


def _alert_kind(alert: Alert) -> str:
    """``drift`` or ``performance`` by the alert's rule (``alert`` for a rule not readable)."""
    try:
        return "drift" if is_drift_rule(alert.rule) else "performance"
    except InvalidInput:
        return "alert"


def events(
    client: Client, trigger: Trigger, *, cursor: str | None, now_ms: int | None = None
) -> list[Event]:
    """The trigger's events newer than ``cursor`` (an event key), oldest first.

    ``drift``/``performance``/``alert``: alerts of the monitor opened past the cursor (whatever
    their status now) whose rule is a drift rule, a performance rule, or any; ``dataset``: new
    versions of the dataset, by number. ``now_ms`` bounds the events to those that happened by then.
    """
    if trigger.kind not in EVENT_KINDS:
        return []
    found: list[Event] = []
    if trigger.kind == "dataset":
        versions = client.datasets.versions(trigger.spec)
        after = next((v.number for v in versions if v.id == cursor), None)
        for version in sorted(versions, key=lambda v: v.number):
            newer = (
                version.number > after
                if after is not None
                else cursor is None or version.id > cursor
            )
            if newer:
                detail = f"dataset {version.ref} (id {version.id})"
                found.append(Event(version.id, version.created_at, detail))
    else:
        for alert in client.monitoring.alerts(monitor=trigger.spec):
            kind = _alert_kind(alert)
            if (cursor is None or alert.id > cursor) and trigger.kind in ("alert", kind):
                detail = (
                    f"{kind} alert {alert.rule} of monitor {alert.monitor} "
                    f"(value {alert.value}, alert {alert.id}): {alert.message}"
                )
                found.append(Event(alert.id, alert.opened_at, detail[: limits.PARAM_VALUE]))
        found.sort(key=lambda event: event.key)  # the cursor compares keys
    if now_ms is not None:
        found = [event for event in found if event.at <= now_ms]
    return found
