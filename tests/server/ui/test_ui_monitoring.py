"""The monitoring pages in Chromium: the monitors with their last check, drift and open alerts;
a monitor's drift per feature over time, its latest report and histograms, alerts and
performance with label coverage; over HTTP: an unknown monitor or test, and no N+1 reads."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

import pytest
from _browsing import go as _go
from _browsing import signed_in as _session
from _ui_world import DEPLOYMENT, HOURS, MONITOR, seed

import loopwright as lw
from loopwright.config import Settings


def _seed(settings: Settings) -> Any:
    """The shared world, plus a classification monitor (its runs score the labelled rows) and
    a monitor that never ran."""
    world = seed(settings)
    client = lw.connect(settings.db_uri, home=settings.home, user="ada")
    try:
        from datetime import UTC, datetime, timedelta

        client.monitoring.create(
            "churn-quality", deployment=DEPLOYMENT, window=timedelta(hours=1), task="classification"
        )
        now = datetime.now(UTC)
        client.monitoring.run("churn-quality", at=now - timedelta(hours=1))
        client.monitoring.run("churn-quality", at=now)
        client.monitoring.create("idle-watch", deployment=DEPLOYMENT)
    finally:
        client.close()
    return world


@pytest.fixture(scope="module")
def ui_seed() -> Any:
    return _seed


def test_monitors_and_a_monitors_drift_alerts_and_performance(
    open_ui: Callable[..., Any], snap: Any, accessible: Any
) -> None:
    page = open_ui("vic")
    _go(page, "/ui/monitoring")
    watch = page.locator("tbody tr", has_text=MONITOR)
    cells = watch.locator("td").all_inner_texts()
    assert cells[1] == DEPLOYMENT and cells[3] == "ok" and cells[4] == "drift"
    assert "input.age" in cells[5]
    assert cells[6] == "1 open"  # the drift_share alert of the shifted hour
    idle = page.locator("tbody tr", has_text="idle-watch").locator("td").all_inner_texts()
    assert idle[2] == "never run" and idle[6] == "0"
    assert page.locator("main form[method=post]").count() == 0  # the API offers no alert writes
    accessible(page)
    snap(page, "monitoring-list")

    page.wait_for_load_state("networkidle")
    with page.expect_navigation():
        page.click(f"a[href='/ui/monitoring/{MONITOR}']")
    # Drift per feature over time: one series per feature, drawn.
    spec = page.evaluate("() => JSON.parse(document.getElementById('drift-statistic').textContent)")
    assert {s["label"] for s in spec["series"]} >= {"input.age", "input.income"}
    assert all(len(s["x"]) == HOURS for s in spec["series"])  # a point per run
    page.wait_for_selector("[data-spec=drift-statistic] canvas")
    report = page.locator("table", has=page.locator("th", has_text="Threshold"))
    drifted = report.locator("tr", has_text="input.age").first.locator("td").last.inner_text()
    assert drifted == "drifted"
    # The drifted feature's histogram, reference vs current, is drawn.
    histogram = page.locator("table.histogram", has_text="input.age: share of rows per bin")
    bins = histogram.locator("tbody tr")
    assert bins.count() == 10  # the reference sketch's quantile bins
    assert bins.first.locator("progress").count() == 2  # reference and current
    assert page.locator("table.histogram", has_text="input.income").count() == 0  # no drift
    assert (
        page.locator("tr", has_text="drift_share").first.locator("td").first.inner_text() == "open"
    )
    accessible(page)
    snap(page, "monitoring-detail")

    _go(page, "/ui/monitoring/churn-quality")
    page.wait_for_selector("[data-spec=performance] canvas")
    page.wait_for_selector("[data-spec=coverage] canvas")
    coverage = page.evaluate("() => JSON.parse(document.getElementById('coverage').textContent)")
    assert coverage["series"][0]["y"] == [1.0, 1.0]  # every logged row has its label
    accessible(page)
    snap(page, "monitoring-performance")


def test_unknown_monitor_or_test_is_a_plain_error_page(ui_server: Any) -> None:
    with _session(ui_server) as http:
        missing = http.get("/ui/monitoring/no-such-monitor")
        assert missing.status_code == 404 and "no-such-monitor" in html.unescape(missing.text)
        bad = http.get(f"/ui/monitoring/{MONITOR}", params={"test": "nope"})
        assert bad.status_code == 400
        assert f"monitor '{MONITOR}' has no results of test 'nope'" in html.unescape(bad.text)
        tests = re.findall(r'<option value="([^"]+)"', http.get(f"/ui/monitoring/{MONITOR}").text)
        assert tests, "the page offers no test to chart"
        chosen = http.get(f"/ui/monitoring/{MONITOR}", params={"test": tests[-1]})
        assert chosen.status_code == 200
        assert f"{tests[-1]} statistic per feature" in chosen.text
        assert f'<option value="{tests[-1]}" selected>' in chosen.text
        idle = http.get("/ui/monitoring/idle-watch")
        assert idle.status_code == 200 and "This monitor has not run yet." in idle.text


def test_alerts_are_read_a_page_at_a_time_and_counted_per_monitor(ui_server: Any) -> None:
    """More alerts than a page: each page is its slice, newest first, with the total; the list
    counts the open ones. Last in the module: it adds alerts to idle-watch."""
    import sqlalchemy as sa

    from loopwright._ids import new_id
    from loopwright.store import schema as t
    from loopwright.store.home import open_store

    with open_store(ui_server.settings, migrate=False) as store, store.db.write() as conn:
        monitor_id = conn.execute(
            sa.select(t.monitors.c.id).where(t.monitors.c.name == "idle-watch")
        ).scalar_one()
        for i in range(5):
            is_open = i % 2 == 0  # 0, 2, 4 open
            conn.execute(
                t.alerts.insert().values(
                    id=new_id(),
                    monitor_id=monitor_id,
                    rule_key=f"rule-{i}",
                    open_key=f"rule-{i}" if is_open else None,
                    status="open" if is_open else "resolved",
                    value=0.9,
                    threshold=0.5,
                    message=f"paged alert {i}",
                    occurrences=1,
                    opened_at=1_700_000_000_000 + i * 1000,
                    last_seen_at=1_700_000_000_000 + i * 1000,
                    resolved_at=None if is_open else 1_700_000_000_000 + i * 1000 + 500,
                )
            )
    with _session(ui_server) as http:
        messages: list[str] = []
        for offset in (0, 2, 4, 6):
            page = http.get("/ui/monitoring/idle-watch", params={"limit": 2, "offset": offset})
            assert page.status_code == 200, page.text[:300]
            shown = re.findall(r"<td>(paged alert \d)</td>", page.text)
            assert len(shown) <= 2
            messages += shown
            if offset == 0:
                assert "1\u20132 of 5" in page.text and 'rel="next"' in page.text
        assert messages == [f"paged alert {i}" for i in (4, 3, 2, 1, 0)]  # newest first
        assert (
            "No alerts on this page: there are 5."
            in http.get("/ui/monitoring/idle-watch?offset=6").text
        )
        assert http.get("/ui/monitoring/idle-watch?limit=501").status_code == 400
        listed = http.get("/ui/monitoring").text
        row = re.search(r"<tr>\s*<td><a href=\"/ui/monitoring/idle-watch\">.*?</tr>", listed, re.S)
        assert row is not None and '<span class="badge bad">3 open</span>' in row.group(0)
