"""Triggers: parsing, due times, and events read from real alerts and dataset versions
(SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _schedule_fixtures import add_version, client_on, make_monitor, monitor_run

from loopwright.client import Client
from loopwright.errors import InvalidInput, NotFound
from loopwright.loop.triggers import (
    events,
    interval_ms,
    is_drift_rule,
    next_due,
    parse_trigger,
)


@pytest.fixture
def client(tmp_path: Path, db_uri: str) -> Iterator[Client]:
    c = client_on(tmp_path / "home", db_uri)
    yield c
    c.close()


# --- parsing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "spec", "canonical"),
    [
        ("cron:0 3 * * 1", "cron", "0 3 * * 1", "cron:0 3 * * 1"),
        ("cron:  0  3 * * mon ", "cron", "0 3 * * mon", "cron:0 3 * * mon"),
        ("interval:30m", "interval", "30m", "interval:30m"),
        ("interval:90s", "interval", "90s", "interval:90s"),
        ("interval:1d", "interval", "1d", "interval:1d"),
        ("drift:churn-drift", "drift", "churn-drift", "drift:churn-drift"),
        ("performance:m.1", "performance", "m.1", "performance:m.1"),
        ("alert:m_1", "alert", "m_1", "alert:m_1"),
        ("dataset:team/transactions", "dataset", "team/transactions", "dataset:team/transactions"),
        ("manual", "manual", "", "manual"),
        (" manual ", "manual", "", "manual"),
    ],
)
def test_parse_trigger(text: str, kind: str, spec: str, canonical: str) -> None:
    trigger = parse_trigger(text)
    assert (trigger.kind, trigger.spec, trigger.text) == (kind, spec, canonical)
    assert parse_trigger(trigger.text) == trigger  # the stored form reads back the same


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "is not a trigger"),
        ("hourly", "is not a trigger"),
        ("cron:", "is not a trigger"),
        ("webhook:x", "is not a trigger"),
        ("cron:0 3 * *", "not 5"),
        ("cron:0 0 31 2 *", "never matches"),
        ("interval:30", "whole number and a unit"),
        ("interval:1.5h", "whole number and a unit"),
        ("interval:0m", "whole number and a unit"),
        ("interval:5s", "from 10s to 366d"),
        ("interval:400d", "from 10s to 366d"),
        ("drift:<script>", "monitor name"),
        ("dataset:../etc", "dataset name"),
        ("x" * 700, "is not a trigger"),
    ],
)
def test_bad_triggers_say_the_accepted_forms(text: str, says: str) -> None:
    with pytest.raises(InvalidInput, match=says.replace("(", r"\(")) as info:
        parse_trigger(text)
    if "cron" not in text and "interval" not in text:
        assert "'manual'" in str(info.value)


def test_a_non_string_trigger_is_refused() -> None:
    with pytest.raises(InvalidInput, match="is not a trigger"):
        parse_trigger(42)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="whole number and a unit"):
        interval_ms(None)  # type: ignore[arg-type]


def test_due_times() -> None:
    assert interval_ms("90s") == 90_000
    interval = parse_trigger("interval:10m")
    ten = 600_000
    assert next_due(interval, after=1_000) == 1_000 + ten
    # On time: the next slot. Down for 3.5 intervals: one step past now, in phase.
    assert next_due(interval, after=ten, previous=ten) == 2 * ten
    assert next_due(interval, after=ten + 35 * ten // 10, previous=ten) == 5 * ten
    cron = parse_trigger("cron:0 * * * *")
    assert next_due(cron, after=3_600_000 * 5 + 1) == 3_600_000 * 6
    assert next_due(parse_trigger("drift:m"), after=0) is None
    assert next_due(parse_trigger("manual"), after=0) is None


@pytest.mark.parametrize(
    ("rule", "drift"),
    [
        ("drift_share>0.3", True),
        ("dataset_drift>=1", True),
        ("psi>0.2", True),
        ("psi:input.age>0.2", True),
        ("ks:input.income>0.1", True),
        ("accuracy<0.8", False),
        ("mae>3", False),
        ("roc_auc<0.7", False),
        ("coverage<0.5", False),
    ],
)
def test_drift_rules_and_performance_rules(rule: str, drift: bool) -> None:
    assert is_drift_rule(rule) is drift


# --- events ------------------------------------------------------------------------------------


def test_alert_events_by_kind_and_cursor(client: Client) -> None:
    monitor = make_monitor(client)
    drift, perf, anything = (
        parse_trigger(f"{k}:{monitor.name}") for k in ("drift", "performance", "alert")
    )
    assert events(client, drift, cursor=None) == []

    monitor_run(client, monitor, share=0.5, accuracy=0.9)  # drift opens
    monitor_run(client, monitor, share=0.6, accuracy=0.9)  # still open: no new alert
    monitor_run(client, monitor, share=0.1, accuracy=0.7)  # drift resolves, accuracy opens
    alerts = {a.rule: a for a in client.monitoring.alerts(monitor=monitor.name)}
    assert set(alerts) == {"drift_share>0.3", "accuracy<0.8"}

    (drifted,) = events(client, drift, cursor=None)
    assert drifted.key == alerts["drift_share>0.3"].id  # resolved by now, still an event
    assert "drift_share>0.3" in drifted.detail and monitor.name in drifted.detail
    (worse,) = events(client, perf, cursor=None)
    assert worse.key == alerts["accuracy<0.8"].id
    both = events(client, anything, cursor=None)
    assert [e.key for e in both] == [drifted.key, worse.key]  # oldest first
    assert events(client, anything, cursor=drifted.key) == [worse]
    assert events(client, anything, cursor=worse.key) == []
    # A bound on time leaves out what happened after it.
    assert events(client, anything, cursor=None, now_ms=0) == []

    monitor_run(client, monitor, share=0.7, accuracy=0.7)  # drift reopens: a new alert
    again = events(client, drift, cursor=drifted.key)
    assert len(again) == 1 and again[0].key > drifted.key


def test_alert_events_of_a_missing_monitor_raise(client: Client) -> None:
    with pytest.raises(NotFound, match="no-such-monitor"):
        events(client, parse_trigger("drift:no-such-monitor"), cursor=None)


def test_dataset_events(client: Client, tmp_path: Path) -> None:
    trigger = parse_trigger("dataset:transactions")
    first = add_version(client, tmp_path, "transactions", "a\n1\n")
    second = add_version(client, tmp_path, "transactions", "a\n2\n")
    found = events(client, trigger, cursor=None)
    assert [e.key for e in found] == [first, second]
    assert "transactions@v2" in found[1].detail
    assert [e.key for e in events(client, trigger, cursor=first)] == [second]
    assert events(client, trigger, cursor=second) == []
    third = add_version(client, tmp_path, "transactions", "a\n3\n")
    assert [e.key for e in events(client, trigger, cursor=second)] == [third]
    # Identical content is the same version: no new event.
    add_version(client, tmp_path, "transactions", "a\n3\n")
    assert [e.key for e in events(client, trigger, cursor=second)] == [third]


def test_time_and_manual_triggers_have_no_events(client: Client) -> None:
    for text in ("cron:* * * * *", "interval:1m", "manual"):
        assert events(client, parse_trigger(text), cursor=None) == []
