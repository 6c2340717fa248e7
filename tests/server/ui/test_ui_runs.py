"""The experiments and runs pages in Chromium: filter (good and bad, the caret shown), sort by a
metric, page through 120 runs, a run's charts (axis and smoothing), artifact previews, and the
comparison of two runs (overlaid curves, parallel coordinates, params diff)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from _browsing import settle as _settle
from _runs_world import SWEEP_RUNS, seed


@pytest.fixture(scope="module")
def ui_seed(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Any], Any]:
    scratch = tmp_path_factory.mktemp("runs-files")
    return lambda settings: seed(settings, scratch)


def _run_rows(page: Any) -> int:
    return int(page.locator("table.runs tbody tr").count())


def test_filter_sort_and_page_the_runs_table(
    open_ui: Callable[..., Any], ui_server: Any, snap: Callable[..., Any], accessible: Any
) -> None:
    world = ui_server.seeded
    page = open_ui("vic", allow=(400,))
    page.goto("/ui/experiments")
    _settle(page)
    with page.expect_navigation():
        page.click("a:text-is('sweep')")
    assert page.locator("h1").inner_text() == "sweep"
    accessible(page)
    snap(page, "runs-experiments-table")
    # Page through all 120 runs, 50 at a time.
    seen = _run_rows(page)
    while page.locator("a[rel=next]").count():
        _settle(page)
        with page.expect_navigation():
            page.click("a[rel=next]")
        seen += _run_rows(page)
    assert seen == SWEEP_RUNS
    assert "101\N{EN DASH}120" in page.locator(".pager").inner_text()
    # Sort by a metric, highest first: the best run comes first.
    _settle(page)
    page.goto(f"/ui/experiments/{world.sweep_id}")
    _settle(page)
    with page.expect_navigation():
        page.click("th a:text-is('metrics.auc')")  # first click sorts descending
    first = page.locator("table.runs tbody tr").first
    assert first.locator("input[type=checkbox]").get_attribute("value") == world.best_run
    assert page.locator("th[aria-sort=descending]").inner_text().startswith("metrics.auc")
    # A good filter keeps the sort; a bad one says where it is wrong.
    page.fill("#filter", "params.model = 'rf' and metrics.auc > 0.85")
    _settle(page)
    with page.expect_navigation():
        page.click("form.filter button[type=submit]")
    assert _run_rows(page) == 1
    page.fill("#filter", "metrics.auc >> 0.9")
    _settle(page)
    with page.expect_navigation():
        page.click("form.filter button[type=submit]")
    alert = page.locator("#filter-error")
    assert "unknown operator" in alert.inner_text()
    assert page.locator("pre.caret").inner_text().splitlines()[1] == " " * 12 + "^"
    accessible(page)
    snap(page, "runs-experiment-bad-filter")
    _settle(page)


def test_a_run_page_draws_its_charts_and_previews_artifacts(
    open_ui: Callable[..., Any], ui_server: Any, snap: Callable[..., Any], accessible: Any
) -> None:
    from playwright.sync_api import expect  # installed: the browser fixture skips otherwise

    world = ui_server.seeded
    page = open_ui("vic")
    page.goto(f"/ui/runs/{world.long_run}")
    chart = page.locator(".lw-chart").first
    chart.locator("canvas").wait_for()
    assert "downsampled" in chart.inner_text()
    assert page.locator("a[href^='/ui/lineage?subject=']").count() == 1
    axis = page.locator("select[aria-label='x axis']").first
    with page.expect_response(lambda r: "x=relative" in r.url and r.status == 200):
        axis.select_option("relative")
    # The new chart is drawn once the response's JSON is read: wait for it (expect retries).
    expect(chart).to_contain_text("seconds since the run started")
    # Smoothing redraws the curves: the canvas's pixels change.
    canvas = chart.locator("canvas")
    canvas.wait_for()
    before = canvas.evaluate("(c) => c.toDataURL()")
    page.locator("input[aria-label=smoothing]").first.fill("0.9")
    page.wait_for_function(
        "([c, before]) => c.toDataURL() !== before", arg=[canvas.element_handle(), before]
    )
    accessible(page)
    snap(page, "runs-run")
    # Artifacts: a text file (escaped), an image, a CSV as a table.
    _settle(page)
    with page.expect_navigation():
        page.click("a:text-is('notes.txt')")
    assert "<b>not bold</b>" in page.locator("pre.artifact-text").inner_text()
    accessible(page)
    _settle(page)
    page.goto(f"/ui/runs/{world.long_run}/artifacts?path=plots")
    _settle(page)
    with page.expect_navigation():
        page.click("a:text-is('curve.png')")
    image = page.locator(".artifact-image img")
    image.wait_for()
    assert page.evaluate("(img) => img.complete && img.naturalWidth", image.element_handle()) == 1
    accessible(page)
    snap(page, "runs-artifact-image")
    _settle(page)
    page.goto(f"/ui/runs/{world.long_run}/artifacts?path=data/sample.csv")
    assert page.locator("table th").all_inner_texts() == ["id", "score", "label"]
    assert page.locator("table tbody tr").count() == 3
    accessible(page)
    snap(page, "runs-artifact-table")
    _settle(page)


def test_compare_two_runs(
    open_ui: Callable[..., Any], ui_server: Any, snap: Callable[..., Any], accessible: Any
) -> None:
    world = ui_server.seeded
    page = open_ui("vic")
    page.goto(f"/ui/experiments/{world.sweep_id}")
    for run_id in (world.run_ids[-1], world.run_ids[-2]):
        page.check(f"input[value='{run_id}']")
    _settle(page)
    with page.expect_navigation():
        page.click("text=Compare selected")
    assert page.url.count("runs=") == 2
    auc = page.locator(".lw-chart[aria-label='auc of each run']")
    auc.locator("canvas").wait_for()
    assert auc.locator(".u-legend .u-series").count() == 3  # x, then one per run
    svg = page.locator("figure.parallel svg[role=img]")
    assert svg.locator("path").count() == 2
    assert "metrics.auc" in svg.inner_html()
    assert page.locator("table.params-diff tr.diff-chg").count() >= 1
    accessible(page)
    snap(page, "runs-compare")
    _settle(page)
    with page.expect_navigation():
        page.click("text=Show only differences")
    rows = page.locator("table.params-diff tbody tr")
    assert rows.count() == page.locator("table.params-diff tbody tr.diff-chg").count()
    _settle(page)
