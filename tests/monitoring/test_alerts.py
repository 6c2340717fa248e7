"""Alerts on monitor runs: open, deduplicate, resolve, reopen; missing figures; concurrency;
webhook delivery to real receivers. Runs on SQLite and PostgreSQL.

Monitors and runs are stored as rows with SQLAlchemy (the foreign keys need them) and built as
entities directly: the alert book needs no monitoring service.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import sqlalchemy as sa
from _receiver import dead_url, receiving

from loopwright._ids import new_id, now_ms
from loopwright.config import resolve_settings
from loopwright.errors import InvalidInput, NotFound
from loopwright.monitoring._alerts import AlertBook, figures
from loopwright.monitoring.entities import (
    AlertRule,
    DriftResult,
    Monitor,
    MonitorRun,
    Performance,
    TestResult,
)
from loopwright.store import schema as t
from loopwright.store.audit import events, verify_chain
from loopwright.store.home import Store, open_store


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        self.now += 1000
        return self.now


@pytest.fixture
def store(tmp_path: Path, db_uri: str) -> Iterator[Store]:
    with open_store(resolve_settings(home=tmp_path / "home", db_uri=db_uri)) as s:
        yield s


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def book(store: Store, clock: Clock) -> AlertBook:
    return AlertBook(store, actor="ada", clock=clock)


def add_monitor(
    store: Store,
    rules: Sequence[str] = ("drift_share>0.3",),
    *,
    name: str = "churn-drift",
    webhook: str | None = None,
    webhook_format: str = "json",
) -> Monitor:
    monitor = Monitor(
        id=new_id(),
        name=name,
        deployment="churn-api",
        reference="auto",
        reference_id=None,
        window_s=3600,
        every_s=None,
        tests=(),
        columns=(),
        thresholds={},
        alerts=tuple(AlertRule.parse(rule) for rule in rules),
        webhook=webhook,
        webhook_format=webhook_format,  # type: ignore[arg-type]
        task=None,
        description=None,
        created_by="ada",
        created_at=1,
        updated_at=1,
        last_run_at=None,
    )
    with store.db.write() as conn:
        conn.execute(
            t.monitors.insert(),
            {
                "id": monitor.id,
                "name": name,
                "deployment": monitor.deployment,
                "reference_spec": "auto",
                "reference_id": None,
                "spec_json": "{}",
                "created_by": "ada",
                "created_at": 1,
                "updated_at": 1,
            },
        )
    return monitor


def drift(share: float, age_psi: float = 0.1, income_psi: float = 0.05) -> DriftResult:
    tests = (
        TestResult("input.age", "psi", age_psi, 0.2, age_psi > 0.2),
        TestResult("input.income", "psi", income_psi, 0.2, income_psi > 0.2),
        TestResult("input.age", "chi2", 0.001, 0.05, True),  # a p-value: low means drift
        TestResult("input.income", "chi2", 0.4, 0.05, False),
    )
    return DriftResult(tests, share > 0.3, (), share, "share >= 0.3", None, 100, 100)


def add_run(
    store: Store,
    monitor: Monitor,
    drift_result: DriftResult | None,
    *,
    performance: Performance | None = None,
    status: str = "ok",
    rows: int = 100,
) -> MonitorRun:
    run = MonitorRun(
        id=new_id(),
        monitor=monitor.name,
        started_at=1,
        finished_at=2,
        window_start=0,
        window_end=2,
        status=status,  # type: ignore[arg-type]
        rows=rows,
        model_versions=("churn/1",),
        drift=drift_result,
        performance=performance,
    )
    with store.db.write() as conn:
        conn.execute(
            t.monitor_runs.insert(),
            {
                "id": run.id,
                "monitor_id": monitor.id,
                "started_at": 1,
                "finished_at": 2,
                "window_start": 0,
                "window_end": 2,
                "status": status,
                "rows": rows,
                "summary_json": "{}",
            },
        )
    return run


def accuracy(value: float, coverage: float = 0.5) -> Performance:
    return Performance("classification", {"accuracy": value, "f1": 0.7}, 50, 100, coverage)


def audit_actions(store: Store) -> list[str]:
    return [event.action for event in events(store.db, subject_type="alert")]


# --- figures -----------------------------------------------------------------------------------


def test_figures_name_every_rule_metric() -> None:
    run = MonitorRun(
        "r", "m", 0, 1, 0, 1, "ok", 120, (), drift(0.5, 0.3, 0.25), accuracy(0.75, 0.4)
    )
    assert figures(run) == {
        "rows": 120.0,
        "drift_share": 0.5,
        "dataset_drift": 1.0,
        "psi:input.age": 0.3,
        "psi:input.income": 0.25,
        "psi": 0.3,  # the largest: high PSI means drift
        "chi2:input.age": 0.001,
        "chi2:input.income": 0.4,
        "chi2": 0.001,  # the smallest: chi2 is a p-value test
        "accuracy": 0.75,
        "f1": 0.7,
        "coverage": 0.4,
    }


def test_figures_leave_out_nan_and_keep_infinity() -> None:
    tests = (
        TestResult("input.age", "psi", math.nan, 0.2, False),
        TestResult("input.city", "psi", math.inf, 0.2, True),
        TestResult("*", "mmd", 0.2, 0.2, False),
    )
    result = DriftResult(tests, False, ("input.city",), 0.5, "r", None, 10, 10)
    perf = Performance("regression", {"mae": math.nan, "rmse": 2.0}, 0, 10, math.nan)
    got = figures(MonitorRun("r", "m", 0, 1, 0, 1, "ok", 10, (), result, perf))
    assert got == {
        "rows": 10.0,
        "drift_share": 0.5,
        "dataset_drift": 0.0,
        "psi:input.city": math.inf,
        "psi": math.inf,
        "mmd:*": 0.2,
        "mmd": 0.2,
        "rmse": 2.0,
    }


def test_the_worst_value_follows_the_tests_direction() -> None:
    tests = (
        # Registered effect sizes: the largest, even when a large one was not significant.
        TestResult("input.a", "wasserstein", 0.9, 0.1, False),
        TestResult("input.b", "wasserstein", 0.3, 0.1, True),
        # A test this registry does not know (a plugin): a drifted result below its
        # threshold shows that low values mean drift, so the smallest.
        TestResult("input.a", "my_pvalue", 0.5, 0.05, False),
        TestResult("input.b", "my_pvalue", 0.01, 0.05, True),
        # Unknown, and no drifted result to tell: the largest.
        TestResult("input.a", "my_score", 0.5, 0.05, False),
        TestResult("input.b", "my_score", 0.01, 0.05, False),
    )
    result = DriftResult(tests, False, (), 0.0, "r", None, 10, 10)
    got = figures(MonitorRun("r", "m", 0, 1, 0, 1, "ok", 10, (), result, None))
    assert (got["wasserstein"], got["my_pvalue"], got["my_score"]) == (0.9, 0.01, 0.5)


# --- open, persist, resolve, reopen ------------------------------------------------------------


def test_an_alert_opens_persists_resolves_and_reopens(store: Store, book: AlertBook) -> None:
    monitor = add_monitor(store)

    first = book.evaluate(monitor, add_run(store, monitor, drift(0.5)))
    assert len(first) == 1
    (alert,) = book.list()
    assert (alert.id, alert.status, alert.occurrences, alert.value) == (first[0], "open", 1, 0.5)
    assert alert.rule == "drift_share>0.3" and alert.threshold == 0.3
    assert alert.monitor == "churn-drift" and alert.delivery is None
    assert alert.message == (
        "drift_share is 0.5 (> 0.3) on monitor 'churn-drift' of deployment 'churn-api'"
    )

    second = book.evaluate(monitor, add_run(store, monitor, drift(0.6)))
    assert second == first  # deduplicated while it persists
    (alert,) = book.list()
    assert (alert.occurrences, alert.value, alert.status) == (2, 0.6, "open")
    assert alert.last_seen_at > alert.opened_at

    assert book.evaluate(monitor, add_run(store, monitor, drift(0.1))) == ()
    (alert,) = book.list()
    assert (alert.status, alert.value, alert.occurrences) == ("resolved", 0.1, 2)
    assert alert.resolved_at is not None and alert.resolved_at > alert.last_seen_at

    reopened = book.evaluate(monitor, add_run(store, monitor, drift(0.4)))
    assert len(reopened) == 1 and reopened != first  # a new episode, a new alert
    newest, oldest = book.list()
    assert (newest.id, newest.status, newest.occurrences) == (reopened[0], "open", 1)
    assert (oldest.id, oldest.status) == (first[0], "resolved")
    assert [a.id for a in book.list(status="open")] == [newest.id]
    assert [a.id for a in book.list(status="resolved")] == [oldest.id]

    assert audit_actions(store) == ["alert.open", "alert.resolve", "alert.open"]
    opened = events(store.db, subject_type="alert")[0]
    assert opened.actor == "ada" and opened.subject_id == first[0]
    assert opened.after["monitor"] == "churn-drift" and opened.after["value"] == 0.5
    assert verify_chain(store.db).ok


def test_each_rule_is_its_own_alert(store: Store, book: AlertBook) -> None:
    rules = ("psi:input.age>0.2", "psi>0.2", "chi2<0.01", "dataset_drift>=1", "rows<10")
    monitor = add_monitor(store, rules)
    book.evaluate(monitor, add_run(store, monitor, drift(0.5, age_psi=0.1, income_psi=0.3)))
    assert {a.rule for a in book.list(status="open")} == {
        "psi>0.2",
        "chi2<0.01",
        "dataset_drift>=1",
    }
    book.evaluate(monitor, add_run(store, monitor, drift(0.5, age_psi=0.3), rows=5))
    assert {a.rule: a.occurrences for a in book.list(status="open")} == {
        "psi:input.age>0.2": 1,
        "psi>0.2": 2,
        "chi2<0.01": 2,
        "dataset_drift>=1": 2,
        "rows<10": 1,
    }


def test_a_rule_given_twice_counts_once(store: Store, book: AlertBook) -> None:
    monitor = add_monitor(store, ("drift_share>0.3", "drift_share > 0.30"))
    assert len(book.evaluate(monitor, add_run(store, monitor, drift(0.5)))) == 1


def test_the_same_run_evaluated_again_is_counted_once(store: Store, book: AlertBook) -> None:
    monitor = add_monitor(store)
    run = add_run(store, monitor, drift(0.5))
    first = book.evaluate(monitor, run)
    assert book.evaluate(monitor, run) == first
    later = add_run(store, monitor, drift(0.5))
    book.evaluate(monitor, later)
    book.evaluate(monitor, later)
    (alert,) = book.list()
    assert alert.occurrences == 2
    assert audit_actions(store) == ["alert.open"]


# --- missing figures and runs that are not ok --------------------------------------------------


def test_missing_figures_leave_alerts_as_they_are(store: Store, book: AlertBook) -> None:
    monitor = add_monitor(store, ("accuracy<0.8", "psi:input.zip>0.2"))
    opened = book.evaluate(monitor, add_run(store, monitor, drift(0.1), performance=accuracy(0.7)))
    assert [a.rule for a in book.list()] == ["accuracy<0.8"]  # input.zip is never tested

    # No labels in this window: accuracy is not measured, so the alert neither grows nor ends.
    assert book.evaluate(monitor, add_run(store, monitor, drift(0.1))) == opened
    (alert,) = book.list()
    assert (alert.status, alert.occurrences, alert.value) == ("open", 1, 0.7)

    assert book.evaluate(monitor, add_run(store, monitor, None, performance=accuracy(0.9))) == ()
    assert book.list()[0].status == "resolved"


@pytest.mark.parametrize("status", ["no_data", "failed"])
def test_runs_that_are_not_ok_change_nothing(store: Store, book: AlertBook, status: str) -> None:
    monitor = add_monitor(store, ("drift_share>0.3", "rows<10"))
    opened = book.evaluate(monitor, add_run(store, monitor, drift(0.5)))
    # Even a run whose figures would resolve one rule and open another.
    not_ok = add_run(store, monitor, drift(0.0), status=status, rows=0)
    assert book.evaluate(monitor, not_ok) == opened
    (alert,) = book.list()
    assert (alert.status, alert.occurrences) == ("open", 1)


def test_a_monitor_without_rules_has_no_alerts(store: Store, book: AlertBook) -> None:
    monitor = add_monitor(store, ())
    assert book.evaluate(monitor, add_run(store, monitor, drift(0.9))) == ()
    assert book.list() == []


# --- concurrency -------------------------------------------------------------------------------


def race(book: AlertBook, monitor: Monitor, run: MonitorRun) -> list[tuple[str, ...]]:
    """What two threads evaluating ``run`` at the same moment got."""
    barrier = threading.Barrier(2)
    answers: list[tuple[str, ...]] = []
    failures: list[BaseException] = []

    def evaluate() -> None:
        try:
            barrier.wait()
            answers.append(book.evaluate(monitor, run))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=evaluate) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    return answers


def test_two_evaluations_at_once_open_one_alert(store: Store, book: AlertBook) -> None:
    monitor = add_monitor(store, ("drift_share>0.3", "psi>0.2", "rows>=1"))
    for _ in range(5):
        first, second = race(book, monitor, add_run(store, monitor, drift(0.5, age_psi=0.3)))
        assert first == second and len(first) == 3
        # Next round: a fresh episode each time, so the race is always on opening.
        book.evaluate(monitor, add_run(store, monitor, drift(0.0, 0.0, 0.0), rows=0))
    alerts = book.list()
    assert len(alerts) == 15 and all(a.occurrences == 1 for a in alerts)
    assert all(a.status == "resolved" for a in alerts)
    assert audit_actions(store).count("alert.open") == 15
    assert audit_actions(store).count("alert.resolve") == 15


def test_two_evaluations_at_once_count_a_persisting_alert_once(
    store: Store, book: AlertBook
) -> None:
    monitor = add_monitor(store)
    book.evaluate(monitor, add_run(store, monitor, drift(0.5)))
    for _ in range(3):
        race(book, monitor, add_run(store, monitor, drift(0.5)))
    (alert,) = book.list()
    assert alert.occurrences == 4
    race(book, monitor, add_run(store, monitor, drift(0.1)))
    assert book.list()[0].status == "resolved"
    assert audit_actions(store) == ["alert.open", "alert.resolve"]


def test_an_alert_opened_meanwhile_is_not_inserted_twice(store: Store, clock: Clock) -> None:
    monitor = add_monitor(store)
    run = add_run(store, monitor, drift(0.5))
    rule = monitor.alerts[0]
    with store.db.write() as conn:
        assert AlertBook._insert(conn, monitor, run, rule, 0.5, clock()) is not None
    with store.db.write() as conn:
        # The unique (monitor_id, open_key) refusal is absorbed; the transaction goes on.
        assert AlertBook._insert(conn, monitor, run, rule, 0.5, clock()) is None
        conn.execute(sa.select(1)).scalar_one()
    with store.db.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.alerts)).scalar_one() == 1


# --- webhooks ----------------------------------------------------------------------------------


def test_opened_and_resolved_alerts_are_delivered(store: Store, book: AlertBook) -> None:
    with receiving() as receiver:
        monitor = add_monitor(store, ("psi:input.age>0.2",), webhook=receiver.url)
        first = add_run(store, monitor, drift(0.5, age_psi=0.3))
        (alert_id,) = book.evaluate(monitor, first)
        book.evaluate(monitor, add_run(store, monitor, drift(0.5, age_psi=0.35)))  # persists
        last = add_run(store, monitor, drift(0.0, age_psi=0.1))
        book.evaluate(monitor, last)
    opened, resolved = receiver.bodies  # nothing sent while it merely persisted
    assert opened["event"] == "opened" and resolved["event"] == "resolved"
    assert opened["alert_id"] == resolved["alert_id"] == alert_id
    assert opened["monitor"] == "churn-drift" and opened["deployment"] == "churn-api"
    assert (opened["rule"], opened["value"], opened["threshold"]) == ("psi:input.age>0.2", 0.3, 0.2)
    assert opened["run_id"] == first.id and resolved["run_id"] == last.id
    assert opened["status"] == "open" and opened["resolved_at"] is None
    assert resolved["status"] == "resolved" and resolved["occurrences"] == 2
    assert resolved["resolved_at"] >= resolved["opened_at"]
    assert "psi:input.age is 0.3 (> 0.2)" in opened["message"]
    (alert,) = book.list()
    assert alert.delivery is not None
    assert alert.delivery["event"] == "resolved" and alert.delivery["ok"] is True
    assert alert.delivery["status"] == 200 and alert.delivery["attempts"] == 1


def test_slack_webhooks_get_slack_messages(store: Store, book: AlertBook) -> None:
    with receiving() as receiver:
        monitor = add_monitor(store, webhook=receiver.url, webhook_format="slack")
        book.evaluate(monitor, add_run(store, monitor, drift(0.5)))
    (body,) = receiver.bodies
    assert set(body) == {"text", "blocks"} and "Alert opened" in body["text"]


def test_a_dead_webhook_is_recorded_and_the_run_goes_on(store: Store, book: AlertBook) -> None:
    monitor = add_monitor(store, ("drift_share>0.3", "rows>=1"), webhook=dead_url())
    ids = book.evaluate(monitor, add_run(store, monitor, drift(0.5)))
    first, second = sorted(book.list(), key=lambda a: a.id)
    assert ids == (first.id, second.id) and first.status == second.status == "open"
    assert first.delivery is not None and first.delivery["ok"] is False
    assert first.delivery["attempts"] == 3 and first.delivery["status"] is None
    assert first.delivery["error"].startswith("ConnectError")
    # The next alert of the run does not wait for the dead webhook again.
    assert second.delivery is not None and second.delivery["attempts"] == 0
    assert second.delivery["error"] == (
        f"not sent: the webhook did not answer for alert {first.id} of this run"
    )


def test_a_refused_webhook_url_is_recorded_for_each_alert(store: Store, book: AlertBook) -> None:
    monitor = add_monitor(store, ("drift_share>0.3", "rows>=1"), webhook="ftp://example.com/x")
    book.evaluate(monitor, add_run(store, monitor, drift(0.5)))
    for alert in book.list():
        assert alert.delivery is not None and alert.delivery["attempts"] == 0
        assert "scheme 'ftp' is refused" in alert.delivery["error"]


def test_the_actor_and_clock_default_to_the_stores_user_and_now(store: Store) -> None:
    monitor = add_monitor(store)
    before = now_ms()
    AlertBook(store).evaluate(monitor, add_run(store, monitor, drift(0.5)))
    (alert,) = AlertBook(store).list()
    assert alert.opened_at >= before
    assert events(store.db, subject_type="alert")[0].actor == store.actor


def test_a_failing_notifier_is_recorded_not_raised(store: Store, clock: Clock) -> None:
    def broken(url: str, payload: object, **options: object) -> dict[str, object]:
        raise RuntimeError("notifier bug")

    book = AlertBook(store, actor="ada", clock=clock, deliver=broken)
    monitor = add_monitor(store, webhook="http://127.0.0.1:9/hook")
    ids = book.evaluate(monitor, add_run(store, monitor, drift(0.5)))
    (alert,) = book.list()
    assert ids == (alert.id,)
    assert alert.delivery is not None and "notifier bug" in alert.delivery["error"]


def test_a_retried_webhook_records_its_attempts(store: Store, book: AlertBook) -> None:
    with receiving(statuses=[502]) as receiver:
        monitor = add_monitor(store, webhook=receiver.url)
        book.evaluate(monitor, add_run(store, monitor, drift(0.5)))
    (alert,) = book.list()
    assert alert.delivery is not None
    assert (alert.delivery["ok"], alert.delivery["attempts"]) == (True, 2)
    with store.db.read() as conn:
        stored = conn.execute(sa.select(t.alerts.c.delivery_json)).scalar_one()
    assert json.loads(stored)["status"] == 200


# --- listing -----------------------------------------------------------------------------------


def test_list_by_monitor_and_status(store: Store, book: AlertBook) -> None:
    churn = add_monitor(store)
    fraud = add_monitor(store, name="fraud-drift")
    book.evaluate(churn, add_run(store, churn, drift(0.5)))
    book.evaluate(fraud, add_run(store, fraud, drift(0.5)))
    assert [a.monitor for a in book.list()] == ["fraud-drift", "churn-drift"]  # newest first
    assert [a.monitor for a in book.list(monitor="churn-drift")] == ["churn-drift"]
    assert book.list(monitor="churn-drift", status="resolved") == []


def test_list_refuses_unknown_monitors_and_statuses(store: Store, book: AlertBook) -> None:
    add_monitor(store)
    with pytest.raises(NotFound, match="monitor 'nope' does not exist; monitors: churn-drift"):
        book.list(monitor="nope")
    with pytest.raises(InvalidInput, match="alert status 'closed' is not 'open' or 'resolved'"):
        book.list(status="closed")


# --- through the monitoring service ------------------------------------------------------------


def test_runs_of_the_service_open_resolve_and_notify(store: Store, tmp_path: Path) -> None:
    from _deployment_log import DEPLOYMENT, SHIFTED_END, UNSHIFTED_END, deploy, predictions

    from loopwright.monitoring.prometheus import render
    from loopwright.monitoring.service import MonitoringService

    deployed = deploy(store, tmp_path)
    service = MonitoringService(store, predictions(deployed), actor="ada")
    with receiving() as receiver:
        service.create(
            "churn-drift",
            deployment=DEPLOYMENT,
            # The default tests: Wasserstein (in standard deviations) and Jensen-Shannon.
            alerts=["wasserstein:input.age>0.5", "drift_share>0.3", "wasserstein:input.income>0.5"],
            webhook=receiver.url,
        )
        calm = service.run("churn-drift", at=UNSHIFTED_END)
        assert calm.status == "ok" and calm.alerts == ()
        shifted = service.run("churn-drift", at=SHIFTED_END)
        assert shifted.status == "ok" and len(shifted.alerts) == 2
        assert {a.rule for a in service.alerts(status="open")} == {
            "wasserstein:input.age>0.5",
            "drift_share>0.3",
        }
        assert b'loopwright_alerts_open{deployment="churn-api",monitor="churn-drift"} 2.0' in (
            render(store)
        )
        assert service.run("churn-drift", at=UNSHIFTED_END).alerts == ()
    assert [body["event"] for body in receiver.bodies] == ["opened"] * 2 + ["resolved"] * 2
    assert {body["run_id"] for body in receiver.bodies[:2]} == {shifted.id}
    assert all(a.status == "resolved" and a.delivery for a in service.alerts())
