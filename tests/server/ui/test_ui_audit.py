"""The audit page: events newest first with filters and paging, an approval made through the
API under the approver's name, and the chain's verification, intact and then tampered with."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from _browsing import settle as settled
from _ui_world import World, seed

from loopwright.store import schema as t
from loopwright.store.home import open_store


@pytest.fixture(scope="module")
def ui_seed() -> Any:  # _ui_world.seed (a bare-name import mypy reads as Any)
    return seed


def test_an_approval_through_the_api_shows_under_the_approvers_name(
    open_ui: Callable[..., Any], ui_server: Any, snap: Callable[..., Any], accessible: Any
) -> None:
    world: World = ui_server.seeded
    approved = httpx.post(
        f"{ui_server.url}/api/v1/approvals/{world.pending_request_id}/approve",
        json={"comment": "v2 beats v1"},
        headers={"Authorization": f"Bearer {ui_server.tokens['abe']}"},
    )
    assert approved.status_code == 200, approved.text
    page = open_ui("vic")
    settled(page)
    page.goto("/ui/audit")
    assert "Chain intact" in page.locator("section.card").inner_text()
    # The approval, then the change it let through (the alias moved), both by abe.
    newest = page.locator("main table.audit tbody tr")
    assert newest.nth(0).locator("td").nth(3).inner_text() == "model_alias.set"
    approval = newest.nth(1).locator("td")
    assert approval.nth(2).inner_text() == "abe"
    assert approval.nth(3).inner_text() == "approval.approve"
    assert world.pending_request_id in approval.nth(4).inner_text()
    accessible(page)
    snap(page, "audit")

    page.fill("#f-actor", "abe")
    page.fill("#f-action", "approval")
    settled(page)
    with page.expect_navigation():
        page.click("form.filter button[type=submit]")
    rows = page.locator("main table.audit tbody tr")
    assert rows.count() >= 1
    for i in range(rows.count()):
        cells = rows.nth(i).locator("td")
        assert cells.nth(2).inner_text() == "abe"
        assert cells.nth(3).inner_text().startswith("approval.")
    rows.first.locator("summary").click()
    assert "v2 beats v1" in rows.first.locator("pre").inner_text()
    settled(page)
    with page.expect_navigation():
        page.click("text=Verify chain")
    # A POST that sends the browser back to the page, the filters kept.
    assert page.url.split("?")[0].endswith("/ui/audit") and "actor=abe" in page.url
    assert "Chain intact" in page.locator("section.card").inner_text()
    accessible(page)
    settled(page)


def test_events_are_paged_newest_first(http: httpx.Client) -> None:
    first = http.get("/ui/audit?limit=2")
    second = http.get("/ui/audit?limit=2&offset=2")
    assert first.status_code == second.status_code == 200
    seqs = [int(s) for s in _seqs(first.text) + _seqs(second.text)]
    assert len(seqs) == 4 and seqs == sorted(seqs, reverse=True) and len(set(seqs)) == 4
    assert 'rel="next"' in first.text


def _seqs(html: str) -> list[str]:
    import re

    return re.findall(r'<td class="num">(\d+)</td>', html)


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ("since=yesterday", "since='yesterday' is no time"),
        ("since=2026-12-06&until=2026-12-05", "the time range is empty"),
        ("offset=-5", "offset '-5' is not a whole number"),
        ("limit=0", "limit 0 is outside 1 to 500"),
        ("actor=" + "a" * 201, "the actor filter is no valid actor"),
        ("subject_id=%00", "the address holds a NUL byte"),  # the dashboard-wide guard
    ],
)
def test_bad_filters_are_a_400_page(http: httpx.Client, query: str, said: str) -> None:
    response = http.get(f"/ui/audit?{query}")
    assert response.status_code == 400, response.text
    assert said in response.text.replace("&#39;", "'")


def test_a_time_range_filters_events(http: httpx.Client) -> None:
    assert "No event matches" in http.get("/ui/audit?until=2001-01-01").text
    assert "No event matches" not in http.get("/ui/audit?since=2001-01-01T00:00").text


def _csrf(http: httpx.Client) -> str:
    http.get("/ui/audit")
    return http.cookies["lw_csrf"]


@pytest.fixture
def walks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the server's chain walks (the real walk still runs)."""
    from loopwright.server.ui import audit
    from loopwright.store.audit import verify_chain as real

    counted: list[int] = []

    def counting(db: Any) -> Any:
        counted.append(1)
        return real(db)

    monkeypatch.setattr(audit, "verify_chain", counting)
    return counted


def test_a_long_chain_is_verified_on_request_and_the_result_kept(
    http: httpx.Client, monkeypatch: pytest.MonkeyPatch, walks: list[int]
) -> None:
    from loopwright.server.ui import audit

    monkeypatch.setattr(audit, "INLINE_VERIFY", 1)  # every chain here is "long"
    monkeypatch.setattr(audit, "REUSE_MS", 0)  # any earlier check is stale
    first = http.get("/ui/audit")
    assert "(on this view)" not in first.text and walks == []  # the view does not walk it
    token = _csrf(http)
    verified = http.post("/ui/audit/verify", data={"csrf_token": token, "filters": "actor=abe&x=1"})
    assert verified.status_code == 303, verified.text
    assert verified.headers["location"] == "/ui/audit?actor=abe"  # back, the filters kept
    assert walks == [1]
    monkeypatch.setattr(audit, "REUSE_MS", 60_000)
    shown = http.get(verified.headers["location"])
    assert "Chain intact" in shown.text and "(just now)" in shown.text
    # Pressed again at once: the fresh check is reused, the chain not walked again.
    again = http.post("/ui/audit/verify", data={"csrf_token": token})
    assert again.status_code == 303 and again.headers["location"] == "/ui/audit"
    assert walks == [1]
    monkeypatch.setattr(audit, "REUSE_MS", 0)
    kept = http.get("/ui/audit")
    assert "Chain intact" in kept.text and "(kept from the last check)" in kept.text
    assert http.post("/ui/audit/verify", data={"csrf_token": token}).status_code == 303
    assert walks == [1, 1]  # an older check is walked anew
    monkeypatch.setattr(audit, "INLINE_VERIFY", 10_000)
    assert "(on this view)" in http.get("/ui/audit").text


def test_verifying_needs_a_post_with_the_csrf_token(http: httpx.Client, walks: list[int]) -> None:
    assert http.get("/ui/audit/verify").status_code == 405  # no link or <img> can run it
    _csrf(http)
    walks.clear()
    refused = http.post("/ui/audit/verify", data={"csrf_token": "forged"})
    assert refused.status_code == 403 and "CSRF token" in refused.text
    assert http.post("/ui/audit/verify", data={}).status_code == 403
    assert walks == []


def test_a_missing_head_is_decided_by_the_newest_event_not_walked_per_view(
    http: httpx.Client, ui_server: Any, monkeypatch: pytest.MonkeyPatch, walks: list[int]
) -> None:
    from loopwright.server.ui import audit

    with open_store(ui_server.settings, migrate=False) as store:
        with store.db.write() as conn:
            head = conn.execute(sa.select(t.audit_head)).mappings().one()
            conn.execute(t.audit_head.delete())
        try:
            monkeypatch.setattr(audit, "INLINE_VERIFY", 1)
            monkeypatch.setattr(audit, "REUSE_MS", 0)
            page = http.get("/ui/audit")
            assert page.status_code == 200 and walks == []  # long: not walked on each view
            assert "(kept from the last check)" in page.text  # the earlier test's button
            monkeypatch.setattr(audit, "INLINE_VERIFY", 10_000)
            short = http.get("/ui/audit")
            assert walks == [1] and "Chain broken" in short.text  # short: walked, and it says
        finally:
            with store.db.write() as conn:
                conn.execute(t.audit_head.insert().values(**head))
    assert "Chain intact" in http.get("/ui/audit").text


def test_a_tampered_row_shows_the_chain_broken_where_it_is(
    open_ui: Callable[..., Any], ui_server: Any, snap: Callable[..., Any], accessible: Any
) -> None:
    """Last in the module: the chain stays broken for the rest of this server's life."""
    with open_store(ui_server.settings, migrate=False) as store, store.db.write() as conn:
        conn.execute(
            t.audit_events.update().where(t.audit_events.c.seq == 3).values(actor="mallory")
        )
        total = conn.execute(sa.select(sa.func.count()).select_from(t.audit_events)).scalar()
    assert total and total > 3
    page = open_ui("vic")
    settled(page)
    page.goto("/ui/audit")  # a short chain: the view verifies it
    alert = page.locator("section.card [role=alert]")
    assert "Chain broken at event #3" in alert.inner_text()
    assert "the row was edited" in alert.inner_text()
    accessible(page)
    settled(page)
    snap(page, "audit-broken")
