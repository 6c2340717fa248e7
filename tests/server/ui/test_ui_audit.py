"""The audit page: events newest first with filters and paging, an approval made through the
API under the approver's name, and the chain's verification, intact and then tampered with."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from _ui_world import World, seed

from loopwright.store import schema as t
from loopwright.store.home import open_store


@pytest.fixture(scope="module")
def ui_seed() -> Any:  # _ui_world.seed (a bare-name import mypy reads as Any)
    return seed


@pytest.fixture
def http(ui_server: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=ui_server.url) as client:
        client.cookies.set("lw_session", ui_server.tokens["vic"], path="/ui")
        yield client


def settled(page: Any) -> None:
    """Wait for the page's last requests (its favicon): leaving earlier aborts them, which the
    request watch counts as failures."""
    page.wait_for_load_state("networkidle")


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
    assert "/ui/audit/verify" in page.url and "actor=abe" in page.url  # the filters kept
    assert "just now" in page.locator("section.card").inner_text()
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
        ("subject_id=%00", "the subject_id filter is no valid"),
    ],
)
def test_bad_filters_are_a_400_page(http: httpx.Client, query: str, said: str) -> None:
    response = http.get(f"/ui/audit?{query}")
    assert response.status_code == 400, response.text
    assert said in response.text.replace("&#39;", "'")


def test_a_time_range_filters_events(http: httpx.Client) -> None:
    assert "No event matches" in http.get("/ui/audit?until=2001-01-01").text
    assert "No event matches" not in http.get("/ui/audit?since=2001-01-01T00:00").text


def test_a_long_chain_is_verified_on_request_and_the_result_kept(
    http: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loopwright.server.ui import audit

    monkeypatch.setattr(audit, "INLINE_VERIFY", 1)  # every chain here is "long"
    first = http.get("/ui/audit")
    assert "(on this view)" not in first.text  # a long chain: the view does not walk it
    verified = http.get("/ui/audit/verify")
    assert "Chain intact" in verified.text and "(just now)" in verified.text
    kept = http.get("/ui/audit")
    assert "Chain intact" in kept.text and "(kept from the last check)" in kept.text
    monkeypatch.setattr(audit, "INLINE_VERIFY", 10_000)
    assert "(on this view)" in http.get("/ui/audit").text


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
    page.goto("/ui/audit/verify")
    alert = page.locator("section.card [role=alert]")
    assert "Chain broken at event #3" in alert.inner_text()
    assert "the row was edited" in alert.inner_text()
    accessible(page)
    settled(page)
    snap(page, "audit-broken")
