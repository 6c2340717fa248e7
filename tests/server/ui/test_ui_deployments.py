"""The deployments pages in Chromium: the traffic split, the live figures per variant (which
reload themselves), the latency and throughput charts, the recent predictions with their
lineage links; over HTTP: the figures' numbers, an unknown deployment and a bad window."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from _browsing import go as _go
from _browsing import signed_in as _session
from _ui_world import DEPLOYMENT, MODEL, World, seed

from loopwright.config import Settings
from loopwright.server.ui.deployments import shares
from loopwright.serving.entities import Deployment, Variant
from loopwright.serving.prediction_log import PredictionLog, PredictionRecord, log_location

CANARY_REQUESTS, CANARY_ERRORS = 20, 5


def _seed(settings: Settings) -> World:
    """The shared world, plus 20 requests answered by a ``canary`` variant in the last ten
    minutes, 5 of them failed (status 500), latencies 10..29 ms."""
    world = seed(settings)
    log = PredictionLog(log_location(settings))
    now = datetime.now(UTC)
    try:
        for n in range(CANARY_REQUESTS):
            log.append(
                PredictionRecord(
                    request_id=f"canary-{n}",
                    deployment=DEPLOYMENT,
                    variant="canary",
                    model=MODEL,
                    model_version=2,
                    timestamp=now - timedelta(minutes=10) + timedelta(seconds=20 * n),
                    latency_ms=10.0 + n,
                    status=500 if n < CANARY_ERRORS else 200,
                    inputs={"age": [40.0], "income": [50.0]},
                    outputs={"predict": [1] if n >= CANARY_ERRORS else [None]},
                )
            )
    finally:
        log.close()
    return world


@pytest.fixture(scope="module")
def ui_seed() -> Any:
    return _seed


def test_the_deployment_page_shows_the_split_live_figures_charts_and_requests(
    open_ui: Callable[..., Any], snap: Any, accessible: Any
) -> None:
    page = open_ui("vic")
    _go(page, "/ui/deployments")
    row = page.locator("tbody tr", has_text="primary")
    assert "models:/churn/1" not in row.inner_text()  # the version is a link, not the URI
    assert row.locator("a[href='/ui/models/churn/versions/1']").count() == 1
    assert row.locator("progress").get_attribute("value") == "100.0"
    accessible(page)
    snap(page, "deployments-list")
    page.wait_for_load_state("networkidle")  # a navigation would abort what is still loading
    with page.expect_navigation():
        page.click(f"a[href='/ui/deployments/{DEPLOYMENT}']")
    live = page.locator("#live-figures")
    figures = {
        r.locator("td").first.inner_text(): r.locator("td").all_inner_texts()
        for r in live.locator("table.figures tbody tr").all()
    }
    assert set(figures) == {"primary", "canary"}
    assert figures["canary"][2] == str(CANARY_REQUESTS)
    assert figures["canary"][7] == "25.00%"  # 5 of 20 failed
    assert figures["primary"][7] == "0%"
    recent = page.locator("#live-recent table.recent tbody tr")
    times = recent.evaluate_all("rows => rows.map(r => r.cells[0].textContent)")
    assert times == sorted(times, reverse=True)  # newest first
    last = recent.filter(has_text=f"canary-{CANARY_REQUESTS - 1}")
    link = last.locator("a").first.get_attribute("href")
    assert link == f"/ui/lineage?subject=canary-{CANARY_REQUESTS - 1}&kind=prediction"
    assert last.locator("td").nth(4).inner_text() == "200"
    assert recent.filter(has_text="canary-0").locator("td").nth(4).inner_text() == "500"
    # Both charts draw: uPlot puts a canvas in each chart box.
    page.wait_for_selector(".lw-chart canvas >> nth=1")
    assert page.locator(".lw-chart canvas").count() == 2
    accessible(page)
    snap(page, "deployments-detail")
    # The figures block reloads itself (htmx every 10 s): wait for a second reload.
    for _ in range(2):
        with page.expect_response(
            lambda r: "/live?window=1h&part=figures" in r.url, timeout=25_000
        ) as done:
            pass
        assert done.value.status == 200
    assert page.locator("#live-figures table.figures tbody tr").count() == 2
    assert page.locator("#live-recent table.recent tbody tr").count() <= 50


def test_figures_and_series_count_requests_not_rows(ui_server: Any) -> None:
    with _session(ui_server) as http:
        latency = http.get(f"/ui/deployments/{DEPLOYMENT}/series.json?window=24h")
        assert latency.status_code == 200
        spec = latency.json()
        labels = {s["label"] for s in spec["series"]}
        assert {"primary P50", "primary P99", "canary P95"} <= labels
        throughput = http.get(
            f"/ui/deployments/{DEPLOYMENT}/series.json",
            params={"window": "24h", "what": "throughput"},
        ).json()
        bucket_s = 15 * 60
        served = {s["label"]: round(sum(s["y"]) * bucket_s) for s in throughput["series"]}
        # The world's requests (of 40 rows each) and the canary's 20 one-row ones.
        logged = len(ui_server.seeded.request_ids)
        assert served == {"primary": logged, "canary": CANARY_REQUESTS}
        block = http.get(f"/ui/deployments/{DEPLOYMENT}/live?window=24h&part=recent")
        assert block.status_code == 200 and 'id="live-recent"' in block.text
        assert 'hx-trigger="every 10s"' in block.text and "<html" not in block.text
        assert block.text.count("/ui/lineage?subject=") == min(50, logged + CANARY_REQUESTS)


def test_unknown_deployment_and_bad_window_are_plain_error_pages(ui_server: Any) -> None:
    with _session(ui_server) as http:
        missing = http.get("/ui/deployments/no-such-deployment")
        assert missing.status_code == 404
        assert (
            "no-such-deployment" in missing.text and "text/html" in missing.headers["content-type"]
        )
        assert http.get("/ui/deployments/no-such-deployment/series.json").status_code == 404
        for path in (f"/ui/deployments/{DEPLOYMENT}", f"/ui/deployments/{DEPLOYMENT}/live"):
            bad = http.get(path, params={"window": "2w"})
            assert bad.status_code == 400
            assert "window '2w' is not one of 1h, 6h, 24h, 7d" in html.unescape(bad.text)
        wrong = http.get(f"/ui/deployments/{DEPLOYMENT}/series.json", params={"what": "cpu"})
        assert wrong.status_code == 400 and "latency, throughput" in wrong.text
        part = http.get(f"/ui/deployments/{DEPLOYMENT}/live", params={"part": "all"})
        assert part.status_code == 400 and "figures, recent" in part.text


def test_a_serving_process_that_reported_itself_shows_as_the_state(ui_server: Any) -> None:
    beat = {"url": "http://127.0.0.1:8311", "pid": 4242, "host": "node-7"}
    token = {"Authorization": f"Bearer {ui_server.tokens['eve']}"}
    with _session(ui_server) as http:
        state = re.compile(r'<td rowspan="1" class="state">(<span class="badge[^"]*">[^<]+</span>)')
        assert state.findall(http.get("/ui/deployments").text) == [
            '<span class="badge">not served</span>'
        ]
        sent = http.post(f"/api/v1/deployments/{DEPLOYMENT}/heartbeat", json=beat, headers=token)
        assert sent.status_code == 200
        listed = http.get("/ui/deployments").text
        assert state.findall(listed) == ['<span class="badge ok">serving</span>']
        assert "1 process" in listed
        page = http.get(f"/ui/deployments/{DEPLOYMENT}").text
        assert "<code>http://127.0.0.1:8311</code>" in page and "pid 4242" in page


def test_roles_in_a_traffic_split() -> None:
    def deployment(strategy: str, *variants: Variant) -> Deployment:
        return Deployment("d", strategy, variants, None, 1, None, "ada", 0, "ada", 0)

    canary = deployment(
        "canary",
        Variant("primary", "models:/churn@champion", 0.9),
        Variant("canary", "models:/churn/4", 0.1),
        Variant("mirror", "models:/churn-xl/1", 0.5, "shadow"),
    )
    found = [(s.role, s.percent, s.model, s.version, s.alias) for s in shares(canary)]
    assert found == [
        ("primary", 90.0, "churn", None, "champion"),
        ("canary", 10.0, "churn", "4", None),
        ("shadow", 50.0, "churn-xl", "1", None),
    ]
    ab = deployment("ab", Variant("a", "models:/m/1", 0.5), Variant("b", "s3://x", 0.5))
    assert [(s.role, s.model) for s in shares(ab)] == [("A/B", "m"), ("A/B", None)]


def test_figures_from_many_threads_share_one_database_and_leave_no_view(tmp_path: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from loopwright.server.ui import _serving_figures as live

    log = PredictionLog(tmp_path)
    now = datetime.now(UTC)
    try:
        for n in range(30):
            log.append(
                PredictionRecord(
                    request_id=f"r{n}",
                    deployment="d",
                    variant="ab"[n % 2],
                    model="m",
                    model_version=1 + n % 2,
                    timestamp=now - timedelta(minutes=n),
                    latency_ms=float(n),
                    status=200,
                    inputs={"x": [1.0, 2.0]},  # two rows, one request
                    outputs={"y": [0, 1]},
                )
            )
    finally:
        log.close()
    with ThreadPoolExecutor(8) as pool:
        found = list(pool.map(lambda _: live.figures(str(tmp_path), "d", "1h"), range(16)))
    assert all(f == found[0] for f in found)
    assert [(v.variant, v.requests, v.versions) for v in found[0].variants] == [
        ("a", 15, (1,)),
        ("b", 15, (2,)),
    ]
    assert found[0].variants[0].p50 == 14.0  # 0, 2, ..., 28
    views = (
        live._database()
        .execute("SELECT count(*) FROM duckdb_views() WHERE view_name LIKE 'log_%'")
        .fetchall()
    )
    assert views == [(0,)]
