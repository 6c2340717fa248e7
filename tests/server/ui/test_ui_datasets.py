"""The datasets pages: the list, a dataset's versions, a version's profile (histograms, top
values) and validation results, and the diff of two versions; in Chromium and, for the
unhappy paths, over plain HTTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from _browsing import settle as settled
from _ui_world import DATASET, seed


@pytest.fixture(scope="module")
def ui_seed() -> Any:  # _ui_world.seed (a bare-name import mypy reads as Any)
    return seed


def test_datasets_versions_profile_and_diff_in_the_browser(
    open_ui: Callable[..., Any], snap: Callable[..., Any], accessible: Any
) -> None:
    page = open_ui("vic")
    settled(page)
    page.goto("/ui/datasets")
    row = page.locator("tr", has_text=DATASET)
    assert "v2" in row.inner_text()
    accessible(page)
    snap(page, "datasets-list")

    settled(page)
    with page.expect_navigation():
        row.locator(f"a:text-is('{DATASET}')").click()
    versions = page.locator("main table tbody tr")
    assert versions.count() == 2
    newest, oldest = versions.nth(0).inner_text(), versions.nth(1).inner_text()
    assert "v2" in newest and "1,600" in newest and "with November" in newest
    assert "v1" in oldest and "1,500" in oldest and "logreg-c1.0" in oldest  # read by runs
    assert "v1" in versions.nth(0).locator("td").nth(6).inner_text()  # v2's parent
    accessible(page)
    snap(page, "datasets-dataset")

    settled(page)
    with page.expect_navigation():
        page.click("a:text-is('v1')")
    assert page.locator("h1").inner_text() == f"{DATASET}@v1"
    charts = page.locator(".lw-chart[data-spec]")
    assert charts.count() >= 3  # age, income, churned: numeric histograms, drawn as bars
    page.wait_for_selector(".lw-chart canvas")
    validation = page.locator("h2:text('Validation') + h3")
    assert "passed" in validation.inner_text() or "failed" in validation.inner_text()
    lineage = page.locator("a", has_text=f"Lineage of {DATASET}@v1")
    assert "kind=dataset_version" in (lineage.get_attribute("href") or "")
    accessible(page)
    snap(page, "datasets-version")

    settled(page)
    page.goto(f"/ui/datasets/{DATASET}/diff")  # by default: the newest against its previous
    assert f"{DATASET}@v1" in page.locator("h1").inner_text()
    assert "1,500 → 1,600" in page.locator("main").inner_text()
    page.select_option("#diff-a", "2")
    page.select_option("#diff-b", "1")
    settled(page)
    with page.expect_navigation():
        page.click("form.filter button[type=submit]")
    assert "a=2" in page.url and "1,600 → 1,500" in page.locator("main").inner_text()
    accessible(page)
    settled(page)
    snap(page, "datasets-diff")


@pytest.mark.parametrize(
    ("path", "status", "said"),
    [
        ("/ui/datasets/nope", 404, "dataset 'nope' does not exist"),
        (f"/ui/datasets/{DATASET}/versions/9", 404, "has no version '9'; versions: v1..v2"),
        ("/ui/datasets/nope/versions/1", 404, "dataset 'nope' does not exist"),
        (f"/ui/datasets/{DATASET}/diff?a=1&b=v1", 400, "choose two different versions"),
        (f"/ui/datasets/{DATASET}/diff?a=1&b=7", 404, "has no version '7'"),
        (f"/ui/datasets/{DATASET}/diff?a=x%40y&b=1", 400, "is no version"),
        ("/ui/datasets/nope/diff", 404, "dataset 'nope' does not exist"),
        ("/ui/datasets?offset=-1", 400, "offset '-1' is not a whole number"),
        ("/ui/datasets?limit=501", 400, "limit 501 is outside 1 to 500"),
        (f"/ui/datasets/{DATASET}?limit=0", 400, "limit 0 is outside 1 to 500"),
    ],
)
def test_bad_dataset_addresses_are_pages_that_say_why(
    http: httpx.Client, path: str, status: int, said: str
) -> None:
    response = http.get(path)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert said in response.text.replace("&#39;", "'")


def test_a_dataset_page_pages_its_versions(http: httpx.Client) -> None:
    first = http.get(f"/ui/datasets/{DATASET}?limit=1")
    assert first.status_code == 200
    assert ">v2<" in first.text and ">v1<" not in first.text
    assert "offset=1" in first.text  # a next link
    second = http.get(f"/ui/datasets/{DATASET}?limit=1&offset=1")
    assert ">v1<" in second.text and ">v2<" not in second.text


def test_a_profile_of_every_column_kind_renders(http: httpx.Client, ui_server: Any) -> None:
    """Text, boolean, time and all-null columns carry other statistics than numbers do."""
    import pandas as pd

    import loopwright as lw

    client = lw.connect(ui_server.settings.db_uri, home=ui_server.settings.home, user="eve")
    try:
        frame = pd.DataFrame(
            {
                "city": ["Oslo", "Lima", "Oslo", None],
                "ok": [True, False, True, True],
                "at": pd.to_datetime(["2026-01-01", "2026-02-01", None, "2026-03-01"]),
                "nothing": [None, None, None, None],
            }
        )
        client.datasets.add("mixed", frame, message="every kind")
    finally:
        client.close()
    response = http.get("/ui/datasets/mixed/versions/1")
    assert response.status_code == 200, response.text
    assert "Top values of city" in response.text and ">Oslo<" in response.text
    assert "None" not in response.text.split("<h2>Profile</h2>")[1].split("<h2>Files")[0]
