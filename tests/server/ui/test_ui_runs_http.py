"""The runs pages over plain HTTP: downsampling a long metric in SQL, artifact paths that try to
leave the run, and bad queries answered by a page saying what was wrong."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from _runs_world import DIP, DIP_STEP, LONG_POINTS, SPIKE, SPIKE_STEP, SWEEP_RUNS, loss, seed


@pytest.fixture(scope="module")
def ui_seed(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Any], Any]:
    scratch = tmp_path_factory.mktemp("runs-files")
    return lambda settings: seed(settings, scratch)


def test_a_long_metric_is_downsampled_keeping_its_extremes_and_ends(
    http: httpx.Client, ui_server: Any
) -> None:
    world = ui_server.seeded
    url = f"/ui/runs/{world.long_run}/metrics/loss.json"
    for points in (1000, 101):
        got = http.get(url, params={"points": points})
        assert got.status_code == 200, got.text
        spec = got.json()
        (series,) = spec["series"]
        assert len(series["x"]) == len(series["y"]) <= points
        assert len(series["x"]) >= points // 2  # the budget is used, not wasted
        assert series["x"][0] == 0 and series["x"][-1] == LONG_POINTS - 1  # the true ends
        assert series["y"][0] == loss(0) and series["y"][-1] == loss(LONG_POINTS - 1)
        assert max(series["y"]) == SPIKE and min(series["y"]) == DIP  # spikes survive
        assert series["x"] == sorted(series["x"])
        # Each kept value is a real point's value, at a step near it.
        spike_at = series["x"][series["y"].index(SPIKE)]
        assert abs(spike_at - SPIKE_STEP) <= 2 * LONG_POINTS / points
        dip_at = series["x"][series["y"].index(DIP)]
        assert abs(dip_at - DIP_STEP) <= 2 * LONG_POINTS / points
        assert f"of {LONG_POINTS:,} points" in spec["note"]
    short = http.get(f"/ui/runs/{world.run_ids[0]}/metrics/loss.json").json()
    assert len(short["series"][0]["x"]) == 10 and "note" not in short
    timed = http.get(url, params={"x": "time"}).json()
    assert timed["x_time"] is True and timed["series"][0]["x"] == sorted(timed["series"][0]["x"])
    relative = http.get(url, params={"x": "relative"}).json()
    assert relative["x_time"] is False
    assert relative["series"][0]["x"][-1] == (LONG_POINTS - 1) * 10 / 1000  # seconds


def test_a_point_logged_after_a_chart_was_drawn_is_in_the_next_one(
    http: httpx.Client, ui_server: Any
) -> None:
    """Downsampled histories are kept between requests: a new point must still show."""
    from loopwright.client import Client

    with Client(ui_server.settings) as client, client.start_run(experiment="growing") as run:
        for step in range(3000):
            run.log_metric("grow", float(step % 7), step=step)
    url = f"/ui/runs/{run.id}/metrics/grow.json"
    before = http.get(url).json()["series"][0]
    assert before["x"][-1] == 2999 and max(before["y"]) == 6
    with Client(ui_server.settings) as client:  # closing flushes the buffered point
        client.tracking.log_metrics(run.id, {"grow": 99.0}, step=5000)  # a finished run takes it
    after = http.get(url).json()["series"][0]
    assert after["x"][-1] == 5000 and after["y"][-1] == 99


def test_a_history_on_one_step_keeps_its_curve_on_the_time_axes(
    http: httpx.Client, ui_server: Any
) -> None:
    """``log_metric`` defaults to step 0: the time axes cut the history by time, not step."""
    from loopwright.client import Client
    from loopwright.tracking.entities import Metric

    count, spike_at, dip_at = 5000, 3210, 1234
    with Client(ui_server.settings) as client, client.start_run(experiment="clock") as run:
        start = run.info().start_time
        values = [math.sin(n / 300) for n in range(count)]
        values[spike_at], values[dip_at] = 9.0, -9.0
        client.tracking.log_metric_points(
            run.id, [Metric("tick", v, 0, start + n * 1000) for n, v in enumerate(values)]
        )
    url = f"/ui/runs/{run.id}/metrics/tick.json"
    for axis in ("time", "relative"):
        got = http.get(url, params={"x": axis, "points": 500})
        assert got.status_code == 200, got.text
        (series,) = got.json()["series"]
        assert 250 <= len(series["x"]) <= 500  # the curve, not its two ends
        assert max(series["y"]) == 9.0 and min(series["y"]) == -9.0
        assert series["y"][0] == values[0] and series["y"][-1] == values[-1]
        assert series["x"] == sorted(series["x"])
        scale = 1 if axis == "time" else 1000
        origin = start if axis == "time" else 0
        # Each extreme sits at its real time, within one range of it.
        at = series["x"][series["y"].index(9.0)] * scale - origin
        assert abs(at - spike_at * 1000) <= 2 * count * 1000 / 500
        assert series["x"][-1] * scale - origin == (count - 1) * 1000
    on_steps = http.get(url, params={"points": 500}).json()["series"][0]
    assert set(on_steps["x"]) == {0}  # the step axis is unchanged: every point is at step 0


def test_chart_points_are_bounded_and_shared_across_compared_runs(
    http: httpx.Client, ui_server: Any
) -> None:
    world = ui_server.seeded
    url = f"/ui/runs/{world.long_run}/metrics/loss.json"
    assert http.get(url, params={"points": 2001}).status_code == 400
    assert len(http.get(url, params={"points": 2000}).json()["series"][0]["x"]) <= 2000
    runs = f"{world.long_run},{world.run_ids[0]}"
    spec = http.get("/ui/compare/metrics/loss.json", params={"runs": runs, "points": 1000})
    long, short = spec.json()["series"]
    assert 250 <= len(long["x"]) <= 500 and len(short["x"]) == 10  # 1,000 split two ways


def test_chart_json_carries_the_dashboard_security_headers(
    http: httpx.Client, ui_server: Any
) -> None:
    world = ui_server.seeded
    for url, params in (
        (f"/ui/runs/{world.long_run}/metrics/val/acc.json", {}),
        ("/ui/compare/metrics/auc.json", {"runs": f"{world.run_ids[0]},{world.run_ids[1]}"}),
    ):
        got = http.get(url, params=params)
        assert got.status_code == 200, got.text
        assert got.headers["x-frame-options"] == "DENY"
        assert got.headers["x-content-type-options"] == "nosniff"
        assert "default-src" in got.headers["content-security-policy"]
        assert got.headers["cache-control"] == "no-store"


def test_a_json_artifact_too_deep_to_parse_is_previewed_as_text(
    http: httpx.Client, ui_server: Any, tmp_path: Path
) -> None:
    from loopwright.client import Client

    deep = tmp_path / "deep.json"
    deep.write_bytes(b"[" * 200_000)
    broken = tmp_path / "broken.jsonl"
    broken.write_bytes(b'{"a": 1}\n{"a": \n')
    with Client(ui_server.settings) as client, client.start_run(experiment="deep") as run:
        run.log_artifact(deep)
        run.log_artifact(broken)
    got = http.get(f"/ui/runs/{run.id}/artifacts", params={"path": "deep.json"})
    assert got.status_code == 200, got.text[:500]
    assert "[[[[[[[[" in got.text
    lines = http.get(f"/ui/runs/{run.id}/artifacts", params={"path": "broken.jsonl"})
    assert lines.status_code == 200 and "{&#34;a&#34;: 1}" in lines.text.replace("&quot;", "&#34;")


@pytest.mark.parametrize(
    ("query", "says"),
    [({"x": "epoch"}, "x must be one of"), ({"points": "0"}, "points must be"),
     ({"points": "many"}, "points must be")],
)  # fmt: skip
def test_a_bad_chart_query_is_refused(
    http: httpx.Client, ui_server: Any, query: dict[str, str], says: str
) -> None:
    got = http.get(f"/ui/runs/{ui_server.seeded.long_run}/metrics/loss.json", params=query)
    assert got.status_code == 400 and says in got.text


def test_the_run_page_does_not_read_the_history(http: httpx.Client, ui_server: Any) -> None:
    page = http.get(f"/ui/runs/{ui_server.seeded.long_run}")
    assert page.status_code == 200
    assert f"/ui/runs/{ui_server.seeded.long_run}/metrics/loss.json" in page.text
    assert "data/" in page.text and "notes.txt" in page.text
    assert "/ui/lineage?subject=" in page.text
    assert "<dt>Python</dt><dd>3." in page.text and "packages</summary>" in page.text
    child = http.get(f"/ui/runs/{ui_server.seeded.child_run}")
    assert f'<a href="/ui/runs/{ui_server.seeded.long_run}">long-run</a>' in child.text
    nested = f"/ui/runs/{ui_server.seeded.long_run}/metrics/val/acc.json"
    assert nested in page.text  # a key with a slash keeps it in the chart's address
    assert http.get(nested).json()["series"][0]["y"] == [0.1 * s for s in range(5)]
    assert http.get(f"/ui/runs/{ui_server.seeded.long_run}/metrics/nope.json").status_code == 404


@pytest.mark.parametrize(
    "path",
    ["../notes.txt", "/etc/passwd", "%2e%2e/notes.txt", "data/../../x", "..", "data/%2e%2e/x",
     "C:\\x", "data//../notes.txt"],
)  # fmt: skip
def test_artifact_paths_cannot_leave_the_run(http: httpx.Client, ui_server: Any, path: str) -> None:
    run = ui_server.seeded.long_run
    for route in ("artifacts", "artifact"):
        # Sent raw, so %2e%2e reaches the server as written (httpx would escape the %).
        got = http.get(f"/ui/runs/{run}/{route}?path={path}")
        assert got.status_code in (400, 404), (route, path, got.status_code)
        assert "artifact path" in got.text or "no artifact" in got.text


def test_artifacts_are_listed_previewed_and_served_safely(
    http: httpx.Client, ui_server: Any
) -> None:
    run = ui_server.seeded.long_run
    root = http.get(f"/ui/runs/{run}/artifacts")
    assert root.status_code == 200 and "plots/" in root.text and "notes.txt" in root.text
    text = http.get(f"/ui/runs/{run}/artifacts", params={"path": "notes.txt"})
    assert "&lt;b&gt;not bold&lt;/b&gt;" in text.text and "<b>not bold" not in text.text
    table = http.get(f"/ui/runs/{run}/artifacts", params={"path": "data/sample.csv"})
    assert '<th scope="col">score</th>' in table.text and "&lt;i&gt;x&lt;/i&gt;" in table.text
    parquet = http.get(f"/ui/runs/{run}/artifacts", params={"path": "data/table.parquet"})
    assert "the first 100 rows of 250" in parquet.text
    assert parquet.text.count("<tr>") == 101  # the header and 100 rows
    records = http.get(f"/ui/runs/{run}/artifacts", params={"path": "data/records.json"})
    assert '<th scope="col">n</th>' in records.text and "<td>&lt;b&gt;</td>" in records.text
    binary = http.get(f"/ui/runs/{run}/artifacts", params={"path": "data/blob.bin"})
    assert "No preview" in binary.text and "download=1" in binary.text
    missing = http.get(f"/ui/runs/{run}/artifacts", params={"path": "nope.txt"})
    assert missing.status_code == 404 and "nope.txt" in missing.text
    svg = http.get(f"/ui/runs/{run}/artifact", params={"path": "plots/shape.svg"})
    assert svg.headers["content-type"] == "image/svg+xml"
    assert "sandbox" in svg.headers["content-security-policy"]
    assert svg.headers["content-disposition"].startswith("inline;")
    png = http.get(f"/ui/runs/{run}/artifact", params={"path": "plots/curve.png"})
    assert png.headers["content-type"] == "image/png" and png.content.startswith(b"\x89PNG")
    down = http.get(f"/ui/runs/{run}/artifact", params={"path": "notes.txt", "download": "1"})
    assert down.headers["content-type"] == "application/octet-stream"
    assert down.headers["content-disposition"].startswith('attachment; filename="notes.txt"')
    page = http.get(f"/ui/runs/{run}/artifacts", params={"path": "plots/shape.svg"})
    assert "<img src=" in page.text and "<svg xmlns" not in page.text  # never inlined


@pytest.mark.parametrize(
    ("query", "says"),
    [({"sort": "bogus"}, "sort &#39;bogus&#39; is not a column"),
     ({"sort": "metrics.auc", "desc": "yes"}, "desc must be"),
     ({"offset": "-1"}, "offset must be"), ({"limit": "501"}, "limit must be"),
     ({"filter": "metrics.auc >> 0.9"}, "unknown operator")],
)  # fmt: skip
def test_a_bad_table_query_gives_a_400_page(
    http: httpx.Client, ui_server: Any, query: dict[str, str], says: str
) -> None:
    got = http.get(f"/ui/experiments/{ui_server.seeded.sweep_id}", params=query)
    assert got.status_code == 400
    assert got.headers["content-type"].startswith("text/html")
    assert says in got.text


def test_a_bad_filter_shows_a_caret_under_the_offending_character(
    http: httpx.Client, ui_server: Any
) -> None:
    got = http.get(
        f"/ui/experiments/{ui_server.seeded.sweep_id}", params={"filter": "metrics.auc >> 0.9"}
    )
    caret = got.text.split('<pre class="caret" aria-hidden="true">', 1)[1].split("</pre>", 1)[0]
    shown, pointer = caret.split("\n")
    assert shown == "metrics.auc &gt;&gt; 0.9" and pointer == " " * 12 + "^"


def test_the_table_sorts_and_pages_in_sql(http: httpx.Client, ui_server: Any) -> None:
    world = ui_server.seeded
    path = f"/ui/experiments/{world.sweep_id}"
    best = http.get(path, params={"sort": "metrics.auc", "desc": "1", "limit": "5"})
    assert best.status_code == 200
    first_row = best.text.split("<tbody>", 1)[1]
    assert f'value="{world.best_run}"' in first_row.split("</tr>", 1)[0]
    seen = set()
    for offset in range(0, SWEEP_RUNS, 50):
        page = http.get(path, params={"offset": offset})
        seen |= {r for r in world.run_ids if f'value="{r}"' in page.text}
    assert len(seen) == SWEEP_RUNS
    past = http.get(path, params={"offset": 5000})
    assert past.status_code == 200 and "No runs past the first 5,000" in past.text
    last = http.get(path, params={"offset": 100})
    assert "101\N{EN DASH}120" in last.text and 'rel="next"' not in last.text
    filtered = http.get(path, params={"filter": "params.model = 'rf' and metrics.auc > 0.85"})
    assert filtered.status_code == 200 and f'value="{world.best_run}"' in filtered.text
    assert filtered.text.count('name="runs"') == 1


def test_unknown_ids_give_404_pages_naming_them(http: httpx.Client, ui_server: Any) -> None:
    for url in ("/ui/runs/nope-run", "/ui/experiments/nope-exp", "/ui/runs/nope-run/artifacts"):
        got = http.get(url)
        assert got.status_code == 404 and "nope-" in got.text, url
    ids = f"{ui_server.seeded.run_ids[0]},missing-run-id"
    got = http.get("/ui/compare", params={"runs": ids})
    assert got.status_code == 404 and "missing-run-id" in got.text


def test_compare_takes_at_most_twenty_runs(http: httpx.Client, ui_server: Any) -> None:
    ids = ui_server.seeded.run_ids
    too_many = http.get("/ui/compare", params={"runs": ",".join(ids[:21])})
    assert too_many.status_code == 400 and "at most 20" in too_many.text
    assert http.get("/ui/compare").status_code == 400
    two = http.get("/ui/compare", params=[("runs", ids[0]), ("runs", ids[1])])
    assert two.status_code == 200 and "Parallel coordinates" in two.text
    spec = http.get("/ui/compare/metrics/auc.json", params={"runs": f"{ids[0]},{ids[1]}"}).json()
    assert len(spec["series"]) == 2
    only = http.get("/ui/compare", params={"runs": f"{ids[0]},{ids[2]}", "only": "diff"})
    assert 'class="diff-chg"' in only.text


def test_experiments_list_counts_runs(http: httpx.Client, ui_server: Any) -> None:
    got = http.get("/ui/experiments")
    assert got.status_code == 200
    row = got.text.split(">sweep</a>", 1)[1].split("</tr>", 1)[0]
    assert f'<td class="num">{SWEEP_RUNS}</td>' in row
