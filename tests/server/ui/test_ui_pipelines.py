"""The pipelines and loops pages in Chromium: pipelines and their runs, a run's step graph (its
steps as boxes with their state in words, an edge per dependency) and step table, a cached
rerun; loops and their iterations (gate, approval, canary, promotion); over HTTP: unknown
pipelines, runs and loops, bad paging."""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import pytest
from _browsing import go as _go
from _browsing import signed_in as _session
from _ui_world import LOOP, MODEL, PIPELINE_MODULE, World, pipeline_code, seed

import loopwright as lw
from loopwright.config import Settings
from loopwright.server.ui.loops import steps

PIPELINE = f"{PIPELINE_MODULE}:train"


@dataclass(frozen=True)
class Seeded:
    world: World
    rerun_id: str  # the same pipeline again: every step served from the cache


def _seed(settings: Settings) -> Seeded:
    """The shared world, a cached rerun of its pipeline, and three iterations of its loop: one
    whose gate failed, one promoted, one waiting for approval."""
    world = seed(settings)
    client = lw.connect(settings.db_uri, home=settings.home, user="ada")
    try:
        with pipeline_code(settings.home / "code") as module:  # the seed's folder again
            rerun = module.train.run(client=client, params={"rows": 50})
        loops = client.loops
        moves = {
            "rejected": ("training", "gating", "rejected"),
            "promoted": (
                "training",
                "gating",
                "awaiting_approval",
                "canary",
                "comparing",
                "promoted",
            ),
            "awaiting_approval": ("training", "gating", "awaiting_approval"),
        }
        for end, path in moves.items():
            iteration = loops.start_iteration(LOOP, trigger="manual", detail=f"to {end}")
            here = "triggered"
            for there in path:
                fields: dict[str, Any] = {}
                if there == "gating":
                    fields = {"pipeline_run_id": world.pipeline_run_id, "model_version": 2}
                if there == "canary":
                    fields = {"canary_revision": 2, "canary_started_at": iteration.created_at}
                reason = "accuracy 0.61 < 0.7" if there == "rejected" else None
                loops.transition(
                    iteration.id,
                    expect=cast(Any, here),
                    to=cast(Any, there),
                    reason=reason,
                    **fields,
                )
                here = there
    finally:
        client.close()
    return Seeded(world, str(rerun.id))


@pytest.fixture(scope="module")
def ui_seed() -> Any:
    return _seed


def test_a_pipeline_run_shows_its_step_graph_and_steps(
    open_ui: Callable[..., Any], ui_server: Any, snap: Any, accessible: Any
) -> None:
    seeded: Seeded = ui_server.seeded
    page = open_ui("vic")
    _go(page, "/ui/pipelines")
    row = page.locator("tbody tr", has_text=PIPELINE).locator("td").all_inner_texts()
    assert row[1:3] == ["2", "2"]  # two runs, both completed
    accessible(page)
    snap(page, "pipelines-list")

    page.wait_for_load_state("networkidle")
    with page.expect_navigation():
        page.click("tbody a")
    assert page.locator("tbody tr").count() == 2
    accessible(page)
    snap(page, "pipelines-detail")

    _go(page, f"/ui/pipelines/runs/{seeded.world.pipeline_run_id}")
    graph = page.locator(".graph svg")
    assert graph.get_attribute("role") == "img"
    boxes = graph.locator("g.step")
    assert [boxes.nth(i).get_attribute("data-step") for i in range(2)] == ["make", "summarise"]
    assert boxes.first.locator("text.state").first.text_content() == "completed"  # not colour alone
    assert graph.locator("path.edge").count() == 1  # make -> summarise
    assert "output → values" in graph.locator("path.edge title").text_content()
    steps_table = page.locator("table", has=page.locator("th", has_text="Attempts"))
    assert steps_table.locator("tbody tr").count() == 2
    accessible(page)
    snap(page, "pipelines-run")

    _go(page, f"/ui/pipelines/runs/{seeded.rerun_id}")
    states = page.locator(".graph g.step").evaluate_all("gs => gs.map(g => g.dataset.status)")
    assert states == ["cached", "cached"]
    hit = page.locator("td", has_text="hit: from run").first
    href = hit.locator("a").get_attribute("href")
    assert href == f"/ui/pipelines/runs/{seeded.world.pipeline_run_id}"
    assert page.locator(".graph text.state", has_text="cache hit").count() == 2
    accessible(page)


def test_a_loop_lists_its_iterations_newest_first(
    open_ui: Callable[..., Any], snap: Any, accessible: Any
) -> None:
    page = open_ui("vic")
    _go(page, "/ui/loops")
    row = page.locator("tbody tr", has_text=LOOP).locator("td").all_inner_texts()
    assert row[6] == "#3 awaiting_approval"
    accessible(page)
    snap(page, "loops-list")

    page.wait_for_load_state("networkidle")
    with page.expect_navigation():
        page.click(f"a[href='/ui/loops/{LOOP}']")
    rows = page.locator("tbody tr")
    table = [rows.nth(i).locator("td").all_inner_texts() for i in range(rows.count())]
    # number, state, gate, approval, canary, promotion: newest first
    assert [(r[0], r[2], r[5], r[6], r[7].split()[-1] if r[7] else "", r[8]) for r in table] == [
        ("3", "awaiting_approval", "passed", "pending", "", ""),
        ("2", "promoted", "passed", "approved", "ended", "promoted"),
        ("1", "rejected", "failed", "", "", ""),
    ]
    assert table[2][10] == "accuracy 0.61 < 0.7"
    candidate = rows.first.locator("td").nth(4).locator("a").get_attribute("href")
    assert candidate == f"/ui/models/{MODEL}/versions/2"
    accessible(page)
    snap(page, "loops-detail")


def test_paging_and_unknown_names_are_plain_error_pages(ui_server: Any) -> None:
    with _session(ui_server) as http:
        one = http.get(f"/ui/loops/{LOOP}", params={"limit": "1", "offset": "1"})
        assert one.status_code == 200
        assert one.text.count('<td class="num">') == 1 and 'rel="next"' in one.text
        cases = {
            "/ui/loops/no-such-loop": 404,
            "/ui/pipelines/no.such:pipeline": 404,
            "/ui/pipelines/runs/no-such-run": 404,
            "/ui/pipelines?offset=-1": 400,
            f"/ui/loops/{LOOP}?limit=501": 400,
            f"/ui/loops/{LOOP}?offset=9999": 400,
            f"/ui/pipelines/{PIPELINE}?limit=x": 400,
        }
        for path, status in cases.items():
            answer = http.get(path)
            assert answer.status_code == status, path
            assert "text/html" in answer.headers["content-type"]
        missing = html.unescape(http.get("/ui/pipelines/no.such:pipeline").text)
        assert "pipeline 'no.such:pipeline' has no recorded runs" in missing


def test_an_iterations_stages_come_from_its_transitions() -> None:
    from loopwright.loop.entities import Iteration

    def iteration(state: str, *path: str) -> Iteration:
        history = tuple((s, n) for n, s in enumerate(path))
        return Iteration(
            "i", "l", 1, state, "manual", None, None, None, None, None, None, None, None,  # type: ignore[arg-type]
            None, None, None, 0, 0, None, history,
        )  # fmt: skip

    unapproved = iteration("canary", "triggered", "training", "gating", "canary")
    assert steps(unapproved) == steps(unapproved).__class__("passed", "not required", "running", "")
    rolled = iteration(
        "rolled_back", "triggered", "training", "gating", "awaiting_approval", "canary",
        "rolled_back",
    )  # fmt: skip
    found = steps(rolled)
    assert (found.approval, found.canary, found.promotion) == (
        "approved", "rolled back", "rolled back",
    )  # fmt: skip
    gating = steps(iteration("gating", "triggered", "training", "gating"))
    assert (gating.gate, gating.approval) == ("running", "")


def test_the_step_graph_layers_a_diamond_by_the_digests_steps_pass() -> None:
    from loopwright.pipelines.entities import ArtifactRef, StepRun
    from loopwright.server.ui._step_graph import layout

    def ref(name: str, digest: str) -> ArtifactRef:
        return ArtifactRef(name, digest, "json", run_id="r")

    def step(name: str, at: int, takes: tuple[str, ...], makes: str, status: str) -> StepRun:
        inputs = (*(ref(f"in_{d}", d) for d in takes), ArtifactRef("n", "lit", "json"))
        return StepRun(
            f"s-{name}", "p", name, name, status, "k", "why", None, None, 1, inputs,  # type: ignore[arg-type]
            (ref("output", makes),), "boom" if status == "failed" else None, at, at + 5,
        )  # fmt: skip

    graph = layout(
        [
            step("join", 4, ("b", "c"), "d", "failed"),
            step("load", 1, (), "a", "completed"),
            step("left", 2, ("a",), "b", "completed"),
            step("right", 3, ("a",), "c", "cached"),
        ]
    )
    assert [(b.step.invocation, b.layer) for b in graph.boxes] == [
        ("load", 0),
        ("left", 1),
        ("right", 1),
        ("join", 2),
    ]
    assert sorted(e.label for e in graph.edges) == [
        "output → in_a",
        "output → in_a",
        "output → in_b",
        "output → in_c",
    ]
    left, right = graph.boxes[1], graph.boxes[2]
    assert left.x == right.x and left.y < right.y  # one column, one row each
    assert graph.width > graph.boxes[3].x and graph.height > right.y
    assert layout([]).boxes == ()
