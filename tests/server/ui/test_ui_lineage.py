"""The lineage page: a subject's graph as layered SVG with a table of its records, links to
each record's page and "lineage from here"; a subject not found is the form again (404)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from _browsing import settle as settled
from _ui_world import DATASET, MODEL, World, seed

from loopwright.loop.lineage import Edge, LineageGraph, Node
from loopwright.server.ui._lineage_layout import layout


@pytest.fixture(scope="module")
def ui_seed() -> Any:  # _ui_world.seed (a bare-name import mypy reads as Any)
    return seed


def test_from_a_run_to_its_dataset_version_and_back(
    open_ui: Callable[..., Any], ui_server: Any, snap: Callable[..., Any], accessible: Any
) -> None:
    world: World = ui_server.seeded
    run_id = world.run_ids[0]
    page = open_ui("vic")
    settled(page)
    page.goto("/ui/lineage")
    accessible(page)
    snap(page, "lineage-form")
    page.fill("#lineage-subject", run_id)
    settled(page)
    with page.expect_navigation():
        page.click("form.filter button[type=submit]")
    svg = page.locator(".lineage-graph svg")
    root = svg.locator("g.node.root")
    assert "logreg-c1.0" in (root.text_content() or "")
    dataset_node = svg.locator("g.node.kind-dataset_version", has_text=f"{DATASET}@v1")
    model_node = svg.locator("g.node.kind-model_version", has_text=f"{MODEL}/1")
    assert dataset_node.count() == 1 and model_node.count() == 1
    # Provenance right of the subject, what came of it (the registered model) left of it.
    x = {
        n: float(loc.bounding_box()["x"])
        for n, loc in (("run", root), ("data", dataset_node), ("model", model_node))
    }
    assert x["model"] < x["run"] < x["data"]
    dataset_node.hover()  # its links light up, the others dim
    assert svg.locator(".edge.hl").count() >= 1
    assert "focused" in (svg.get_attribute("class") or "")
    accessible(page)
    snap(page, "lineage-run")

    settled(page)
    with page.expect_navigation():
        dataset_node.locator("a").first.click()  # the record's own page
    assert page.locator("h1").inner_text() == f"{DATASET}@v1"
    settled(page)
    with page.expect_navigation():
        page.click(f"text=Lineage of {DATASET}@v1")
    assert "kind=dataset_version" in page.url
    assert "dataset version" in (page.locator("svg g.node.root").text_content() or "")
    runs = page.locator("main table tbody tr", has_text="logreg-c1.0")
    settled(page)
    with page.expect_navigation():
        runs.locator("a", has_text="lineage from here").click()  # and back: re-centred
    assert run_id in page.url
    assert "logreg-c1.0" in (page.locator("svg g.node.root").text_content() or "")
    accessible(page)
    settled(page)


@pytest.mark.parametrize(
    ("query", "status", "said"),
    [
        ("subject=ffffffffffffffffffffffffffffffff", 404, "is no run id"),
        (f"subject={DATASET}%40v9", 404, "names no model version and no dataset version"),
        (f"subject={DATASET}%40v9&kind=dataset_version", 404, "does not exist"),
        ("subject=x&kind=planet", 400, "is not one of"),
    ],
)
def test_a_subject_not_found_is_the_form_again(
    http: httpx.Client, query: str, status: int, said: str
) -> None:
    response = http.get(f"/ui/lineage?{query}")
    assert response.status_code == status, response.text
    text = response.text.replace("&#39;", "'")
    assert said in text and 'id="lineage-subject"' in text and "<svg" not in text


def test_a_model_version_subject_links_to_the_pages_of_its_records(
    http: httpx.Client, ui_server: Any
) -> None:
    response = http.get(f"/ui/lineage?subject={MODEL}%402&kind=model_version")
    assert response.status_code == 200
    assert f'href="/ui/models/{MODEL}/versions/2"' in response.text
    assert f'href="/ui/runs/{ui_server.seeded.run_ids[1]}"' in response.text


def test_the_layout_puts_provenance_right_and_downstream_left_even_with_a_cycle() -> None:
    graph = LineageGraph(subject="d", root="d")
    graph.nodes = [Node(n, "run", n) for n in ("d", "r", "p", "m", "q")]
    graph.edges = [
        Edge("d", "r", "used_by"),  # downstream
        Edge("r", "d", "used"),  # and back: a cycle of two
        Edge("d", "p", "derived_from"),
        Edge("p", "q", "produced_by"),
        Edge("d", "q", "produced_by"),  # q: one step and two steps away, the longer wins
        Edge("r", "m", "registered"),
    ]
    placed = {n.id: n for n in layout(graph).nodes}
    assert [placed[n].layer for n in ("m", "r", "d", "p", "q")] == [-2, -1, 0, 1, 2]
    assert placed["m"].x < placed["r"].x < placed["d"].x < placed["p"].x < placed["q"].x


def test_a_prediction_and_a_pipeline_run_are_subjects_too(
    http: httpx.Client, ui_server: Any
) -> None:
    world: World = ui_server.seeded
    prediction = http.get(f"/ui/lineage?subject={world.request_ids[-1]}")
    assert prediction.status_code == 200, prediction.text
    assert 'href="/ui/deployments/churn-api"' in prediction.text
    assert f'href="/ui/models/{MODEL}/versions/1"' in prediction.text
    pipeline = http.get(f"/ui/lineage?subject={world.pipeline_run_id}&kind=pipeline_run")
    assert pipeline.status_code == 200, pipeline.text
    assert "node kind-pipeline_run root" in pipeline.text
