"""Freshness of online views: the figures recorded by loads, the TTL / max-age verdicts, the
``loopwright_feature_freshness_seconds`` gauge on a real server's /metrics, and the freshness
alerts (opened when stale, counted while stale, resolved when fresh), on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from loopwright._ids import new_id
from loopwright.config import resolve_settings
from loopwright.errors import InvalidInput
from loopwright.features.definition_store import DefinitionStore
from loopwright.features.definitions import Entity, FeatureView, Field, FileSource, to_specs
from loopwright.features.entities import Freshness
from loopwright.features.freshness import GAUGE, check, gauge_samples, recorded
from loopwright.monitoring._alerts import AlertBook
from loopwright.monitoring.feature_freshness import MONITOR, check_freshness, rule_key
from loopwright.monitoring.prometheus import render
from loopwright.store import schema as t
from loopwright.store.home import Store, open_store
from test_public_api import _add_users, live_server

HOUR = 3_600_000
NOW = 1_800_000_000_000  # a fixed "now" in UTC ms
SQLITE = "sqlite:/srv/online.db"
REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture
def store(tmp_path: Path, db_uri: str) -> Iterator[Store]:
    with open_store(resolve_settings(home=tmp_path / "home", db_uri=db_uri)) as opened:
        yield opened


def define(store: Store, tmp_path: Path, *, ttl_hours: int | None = 2) -> None:
    """Views ``driver_stats`` (TTL ``ttl_hours``) and ``trips`` (no TTL)."""
    driver = Entity("driver", {"driver_id": "int64"})
    source = FileSource(str(tmp_path / "stats.parquet"), timestamp_field="event_timestamp")
    views = [
        FeatureView(
            "driver_stats",
            entities=[driver],
            source=source,
            schema=[Field("conv_rate", "float64")],
            ttl=None if ttl_hours is None else ttl_hours * 3600,
        ),
        FeatureView("trips", entities=[driver], source=source, schema=[Field("n", "int64")]),
    ]
    DefinitionStore(store).apply(to_specs(views), force=True)


def loaded(store: Store, view: str, online: str, newest: int | None, *, at: int) -> None:
    """A load of ``view`` into ``online`` as materialize and push record it."""
    with store.db.write() as conn:
        conn.execute(
            t.feature_materializations.insert(),
            {
                "id": new_id(),
                "view": view,
                "view_version": 1,
                "store": online,
                "mode": "push",
                "start_at": None,
                "end_at": at,
                "rows": 3,
                "newest_event_at": newest,
                "created_by": "ada",
                "created_at": at,
            },
        )


def gauges(text: bytes) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text.decode()):
        if family.name == GAUGE:
            for sample in family.samples:
                out[(sample.labels["view"], sample.labels["store"])] = sample.value
    return out


# --- figures and verdicts ----------------------------------------------------------------------


def test_recorded_takes_the_newest_event_per_view_and_store_with_the_views_ttl(
    store: Store, tmp_path: Path
) -> None:
    define(store, tmp_path)
    loaded(store, "driver_stats", SQLITE, NOW - 3 * HOUR, at=NOW - 3 * HOUR)
    loaded(store, "driver_stats", SQLITE, NOW - HOUR, at=NOW - HOUR + 5)
    loaded(store, "driver_stats", SQLITE, NOW - 5 * HOUR, at=NOW - 10)  # late data: older
    loaded(store, "driver_stats", REDIS, NOW - 4 * HOUR, at=NOW - 4 * HOUR)
    loaded(store, "trips", SQLITE, None, at=NOW - 20)  # a load that wrote nothing

    found = recorded(store.db, now_ms=NOW)

    assert [(f.view, f.store) for f in found] == [
        ("driver_stats", REDIS),
        ("driver_stats", SQLITE),
        ("trips", SQLITE),
    ]
    redis, sqlite, trips = found
    assert (sqlite.newest_event_at, sqlite.last_loaded_at) == (NOW - HOUR, NOW - 10)
    assert sqlite.age_seconds == 3600 and redis.age_seconds == 4 * 3600
    assert sqlite.ttl_seconds == 2 * 3600 and trips.ttl_seconds is None
    assert trips.newest_event_at is None and trips.age_seconds is None
    assert [f.view for f in recorded(store.db, now_ms=NOW, views=["trips"])] == ["trips"]
    assert gauge_samples(found) == [
        (("driver_stats", REDIS), 4 * 3600.0),
        (("driver_stats", SQLITE), 3600.0),
    ]


def test_a_ttl_change_is_the_threshold_at_once(store: Store, tmp_path: Path) -> None:
    define(store, tmp_path, ttl_hours=2)
    loaded(store, "driver_stats", SQLITE, NOW - 3 * HOUR, at=NOW)
    assert [v.stale for v in check(recorded(store.db, now_ms=NOW))] == [True]
    define(store, tmp_path, ttl_hours=4)
    assert [v.stale for v in check(recorded(store.db, now_ms=NOW))] == [False]


def test_check_uses_the_ttl_or_the_max_age_and_flags_views_never_loaded() -> None:
    fresh = Freshness("a", SQLITE, NOW - 1000, NOW, NOW, ttl_seconds=60)
    stale = Freshness("b", SQLITE, NOW - 61_000, NOW, NOW, ttl_seconds=60)
    edge = Freshness("c", SQLITE, NOW - 60_000, NOW, NOW, ttl_seconds=60)  # at the TTL: served
    unlimited = Freshness("d", SQLITE, NOW - 10**9, NOW, NOW, ttl_seconds=None)
    never = Freshness("e", SQLITE, None, None, NOW, ttl_seconds=60)

    by_ttl = {v.view: v for v in check([fresh, stale, edge, unlimited, never])}
    assert {view for view, v in by_ttl.items() if v.stale} == {"b", "e"}
    assert by_ttl["b"].threshold_seconds == 60 and "past its TTL of 60 s" in by_ttl["b"].reason
    assert by_ttl["d"].threshold_seconds is None and by_ttl["d"].reason == ""
    assert "never loaded" in by_ttl["e"].reason

    by_max_age = {v.view: v for v in check([fresh, unlimited], max_age=30)}
    assert by_max_age["a"].stale is False and by_max_age["d"].stale is True
    assert "max age asked for" in by_max_age["d"].reason


@pytest.mark.parametrize("bad", [0, -5, float("nan"), float("inf"), True, "1h"])
def test_check_refuses_a_max_age_that_is_not_positive_seconds(bad: object) -> None:
    with pytest.raises(InvalidInput, match="max_age"):
        check([], max_age=bad)  # type: ignore[arg-type]


# --- the gauge on a server ---------------------------------------------------------------------


def test_the_server_metrics_show_each_views_age_per_online_store(tmp_path: Path) -> None:
    settings = resolve_settings(home=tmp_path / "home", blob_uri=str(tmp_path / "blobs"))
    now = int(time.time() * 1000)
    with open_store(settings) as store:
        define(store, tmp_path)
        loaded(store, "driver_stats", SQLITE, now - 90_000, at=now)
        loaded(store, "trips", REDIS, now - 5_000, at=now)
        loaded(store, "trips", SQLITE, None, at=now)  # never wrote a row: no sample
    token = _add_users(settings)["vic"]  # a viewer reads the gauges
    with live_server(settings) as url:
        answer = httpx.get(
            f"{url}/api/v1/monitoring/metrics",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
    assert answer.status_code == 200, answer.text
    ages = gauges(answer.content)
    assert set(ages) == {("driver_stats", SQLITE), ("trips", REDIS)}
    assert 90 <= ages[("driver_stats", SQLITE)] < 90 + 60
    assert 5 <= ages[("trips", REDIS)] < 5 + 60


def test_without_loads_the_gauge_has_no_samples(store: Store) -> None:
    assert gauges(render(store)) == {}
    assert f"# TYPE {GAUGE} gauge" in render(store, use_client=False).decode()


# --- alerts ------------------------------------------------------------------------------------


def open_alerts(store: Store) -> list[tuple[str, float | None, float]]:
    return [
        (a.rule, a.value, a.threshold)
        for a in AlertBook(store).list(monitor=MONITOR, status="open")
    ]


def test_a_stale_view_opens_one_alert_counted_while_stale_and_resolved_when_fresh(
    store: Store, tmp_path: Path
) -> None:
    define(store, tmp_path)
    loaded(store, "driver_stats", SQLITE, NOW - 3 * HOUR, at=NOW - 3 * HOUR)
    loaded(store, "trips", SQLITE, NOW - 100 * HOUR, at=NOW)  # no TTL: never stale

    first = check_freshness(store, recorded(store.db, now_ms=NOW), clock=lambda: NOW)
    assert len(first.opened) == 1 and first.open == first.opened and first.resolved == ()
    key = rule_key("driver_stats", SQLITE)
    assert open_alerts(store) == [(key, 3 * 3600.0, 2 * 3600.0)]
    (alert,) = AlertBook(store).list(monitor=MONITOR)
    assert "driver_stats" in alert.message and "features materialize driver_stats" in alert.message

    later = NOW + 60_000
    again = check_freshness(store, recorded(store.db, now_ms=later), clock=lambda: later)
    assert again.opened == () and again.open == first.opened
    (alert,) = AlertBook(store).list(monitor=MONITOR)
    assert alert.occurrences == 2 and alert.last_seen_at == later

    loaded(store, "driver_stats", SQLITE, later - 60_000, at=later)  # materialized again
    fresh = check_freshness(store, recorded(store.db, now_ms=later), clock=lambda: later)
    assert fresh.resolved == first.opened and fresh.open == ()
    (alert,) = AlertBook(store).list(monitor=MONITOR)
    assert (alert.status, alert.resolved_at, alert.value) == ("resolved", later, 60.0)

    stale_again = later + 3 * HOUR
    third = check_freshness(
        store, recorded(store.db, now_ms=stale_again), clock=lambda: stale_again
    )
    assert len(third.opened) == 1 and third.opened != first.opened  # a new episode
    with store.db.read() as conn:
        actions = conn.execute(
            sa.select(t.audit_events.c.action)
            .where(t.audit_events.c.action.in_(["alert.open", "alert.resolve", "monitor.create"]))
            .order_by(t.audit_events.c.seq)
        ).scalars()
        assert list(actions) == ["monitor.create", "alert.open", "alert.resolve", "alert.open"]


def test_the_alert_follows_a_new_ttl_and_a_max_age_without_reopening(
    store: Store, tmp_path: Path
) -> None:
    define(store, tmp_path, ttl_hours=2)
    loaded(store, "driver_stats", SQLITE, NOW - 3 * HOUR, at=NOW)
    opened = check_freshness(store, recorded(store.db, now_ms=NOW), clock=lambda: NOW).opened
    define(store, tmp_path, ttl_hours=1)  # stricter: still stale, the same alert
    assert check_freshness(store, recorded(store.db, now_ms=NOW)).open == opened
    assert open_alerts(store)[0][2] == 3600.0
    # A max age asked for overrides the TTL: 4 h is enough, so the alert resolves.
    resolved = check_freshness(store, recorded(store.db, now_ms=NOW), max_age=4 * 3600)
    assert resolved.resolved == opened


def test_nothing_stale_creates_no_monitor_and_the_open_alert_gauge_counts_freshness(
    store: Store, tmp_path: Path
) -> None:
    define(store, tmp_path)
    loaded(store, "driver_stats", SQLITE, NOW - 60_000, at=NOW)
    assert check_freshness(store, recorded(store.db, now_ms=NOW), clock=lambda: NOW).open == ()
    with store.db.read() as conn:
        assert conn.execute(sa.select(t.monitors.c.name)).scalars().all() == []

    loaded(store, "trips", REDIS, NOW - HOUR, at=NOW)
    check_freshness(store, recorded(store.db, now_ms=NOW), max_age=30, clock=lambda: NOW)
    with store.db.read() as conn:
        (row,) = conn.execute(sa.select(t.monitors)).all()
    assert (row.name, row.deployment, json.loads(row.spec_json)["every_s"]) == (
        MONITOR,
        "features",
        None,
    )
    families = {f.name: f for f in text_string_to_metric_families(render(store).decode())}
    (sample,) = families["loopwright_alerts_open"].samples
    assert sample.labels["monitor"] == MONITOR and sample.value == 2.0


def test_two_checks_at_once_open_one_alert_per_view(store: Store, tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    define(store, tmp_path)
    loaded(store, "driver_stats", SQLITE, NOW - 3 * HOUR, at=NOW)
    figures = recorded(store.db, now_ms=NOW)
    with ThreadPoolExecutor(4) as pool:
        done = list(pool.map(lambda _: check_freshness(store, figures), range(4)))
    assert sum(len(d.opened) for d in done) == 1
    (alert,) = AlertBook(store).list(monitor=MONITOR)
    assert alert.occurrences == 4


def test_a_long_store_name_still_fits_the_rule_column() -> None:
    long_store = "sqlite:/" + "x" * 600
    key = rule_key("driver_stats", long_store)
    assert len(key) <= 400 and key != rule_key("driver_stats", long_store + "y")


@pytest.mark.parametrize("backend", ["embedded", "remote"])
def test_running_due_monitors_keeps_the_freshness_alerts_current(
    backend: str, tmp_path: Path, db_uri: str
) -> None:
    import loopwright as lw
    from loopwright.client import Client

    settings = resolve_settings(
        home=tmp_path / "home", db_uri=db_uri, blob_uri=str(tmp_path / "blobs")
    )
    now = int(time.time() * 1000)
    with open_store(settings) as store:
        define(store, tmp_path)
        loaded(store, "driver_stats", SQLITE, now - 3 * HOUR, at=now)
    token = _add_users(settings)["ada"]
    with contextlib.ExitStack() as stack:
        client: Client
        if backend == "embedded":
            client = stack.enter_context(Client(settings))
        else:
            url = stack.enter_context(live_server(settings))
            client = stack.enter_context(lw.connect(url, token=token, home=tmp_path / "ada"))
        assert client.monitoring.run_due() == []
        (alert,) = client.monitoring.alerts(monitor=MONITOR)
        assert (alert.rule, alert.status) == (rule_key("driver_stats", SQLITE), "open")
        with open_store(settings) as store:
            loaded(store, "driver_stats", SQLITE, int(time.time() * 1000), at=now)
        client.monitoring.run_due()
        (alert,) = client.monitoring.alerts(monitor=MONITOR)
        assert alert.status == "resolved"


def test_an_alert_trigger_of_the_freshness_monitor_fires_on_a_stale_view(tmp_path: Path) -> None:
    from loopwright.client import Client
    from loopwright.loop.triggers import events, parse_trigger

    settings = resolve_settings(home=tmp_path / "home")
    with Client(settings) as client, open_store(settings) as store:
        define(store, tmp_path)
        loaded(store, "driver_stats", SQLITE, NOW - 3 * HOUR, at=NOW)
        trigger = parse_trigger(f"alert:{MONITOR}")
        (opened,) = check_freshness(store, recorded(store.db, now_ms=NOW), clock=lambda: NOW).open
        (event,) = events(client, trigger, cursor=None)
        assert event.key == opened and "driver_stats" in event.detail
        assert events(client, trigger, cursor=opened) == []


def _receiver_module() -> Any:
    """tests/monitoring/_receiver.py: a real webhook receiver on 127.0.0.1."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "freshness_receiver", Path(__file__).parents[1] / "monitoring" / "_receiver.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_freshness_monitor_created_with_a_webhook_is_told_of_each_alert(tmp_path: Path) -> None:
    from loopwright.client import Client

    receiver_module = _receiver_module()
    settings = resolve_settings(home=tmp_path / "home")
    with (
        receiver_module.receiving() as receiver,
        Client(settings) as client,
        open_store(settings) as store,
    ):
        client.monitoring.create(MONITOR, deployment="features", webhook=receiver.url)
        define(store, tmp_path)
        loaded(store, "driver_stats", SQLITE, NOW - 3 * HOUR, at=NOW)
        (opened,) = check_freshness(store, recorded(store.db, now_ms=NOW), clock=lambda: NOW).opened
        loaded(store, "driver_stats", SQLITE, NOW, at=NOW)
        check_freshness(store, recorded(store.db, now_ms=NOW), clock=lambda: NOW)
        (alert,) = AlertBook(store).list(monitor=MONITOR)
    assert [(b["event"], b["alert_id"], b["rule"], b["run_id"]) for b in receiver.bodies] == [
        ("opened", opened, rule_key("driver_stats", SQLITE), None),
        ("resolved", opened, rule_key("driver_stats", SQLITE), None),
    ]
    assert receiver.bodies[0]["threshold"] == 7200.0 and receiver.bodies[0]["value"] == 10800.0
    assert alert.delivery is not None and alert.delivery["event"] == "resolved"
    assert alert.delivery["ok"] is True


def test_a_dead_webhook_is_tried_once_per_check_and_never_fails_it(tmp_path: Path) -> None:
    from loopwright.client import Client

    settings = resolve_settings(home=tmp_path / "home")
    with Client(settings) as client, open_store(settings) as store:
        client.monitoring.create(
            MONITOR, deployment="features", webhook=_receiver_module().dead_url()
        )
        define(store, tmp_path)
        loaded(store, "driver_stats", SQLITE, NOW - 3 * HOUR, at=NOW)
        loaded(store, "trips", SQLITE, NOW - 3 * HOUR, at=NOW)
        figures = recorded(store.db, now_ms=NOW)
        done = check_freshness(store, figures, max_age=60, clock=lambda: NOW)
        assert len(done.opened) == 2
        first, second = (AlertBook(store).list(monitor=MONITOR)[i].delivery for i in (1, 0))
    assert first is not None and first["ok"] is False and first["attempts"] > 0
    assert second is not None and second["attempts"] == 0 and "not sent" in second["error"]
