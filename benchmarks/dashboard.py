"""Dashboard benchmark: the time the server takes for each page of the web dashboard, on SQLite.

    .venv/bin/python benchmarks/dashboard.py [--size small|full] [--repeat 20] [--paints 5]
                                             [--no-mlflow] [--no-browser]

The store (built once per size and cached under /tmp, see STORE_ROOT): ``--size full`` holds
10,000 runs in one experiment, each with 3 parameters and 5 metrics (one point each), plus one
run with a 1,000,000-point metric ``big`` and a dataset with two versions; ``--size small`` holds
500 runs and a 20,000-point metric, to check the script works. Loopwright's side is written
through the tracking service's batch logging (no per-point calls); MLflow's side holds the same
runs, written by MLflow's own client into its SQLite store (from benchmarks/.venvs/mlflow, made
by benchmarks/server.py's setup when missing).

Then `loopwright server` (uvicorn, auth off: no tokens) serves the store, and each page is
fetched ``--repeat`` times with httpx on loopback after one warm-up GET; the table shows the
median and the slowest (the server sends no Server-Timing header, so this is the wall time of a
whole request on loopback: the server's time plus a few hundred microseconds). In Chromium
(LOOPWRIGHT_TEST_CHROMIUM or `chromium` on PATH), the runs table and the run page are loaded
``--paints`` times in a fresh context each (no cache) and the first-contentful-paint is read from
``performance.getEntriesByType('paint')``. The size of loopwright/ui/static is summed.

Anchor: the MLflow UI's own data calls against `mlflow server` on the same runs: its runs table
loads through ``POST /ajax-api/2.0/mlflow/runs/search`` (100 runs ordered by a metric), its chart
through ``GET /ajax-api/2.0/mlflow/metrics/get-history-bulk-interval`` for the big metric; these
are set against our runs table sorted by a metric (100 rows, HTML rendered) and our chart JSON
(1,000 points, as the dashboard asks). "ratio" > 1 means Loopwright is faster.

Targets: < 100 ms per page, < 1 s first paint, < 1 MB of static assets. The load average is
printed at start and end: on a loaded machine every figure is slower.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from server import (
    MLFLOW_PYTHON,
    Failed,
    Server,
    clean_environment,
    ensure_mlflow,
    has_server_command,
    load_average,
    serving,
)

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "src" / "loopwright" / "ui" / "static"
STORE_ROOT = Path(tempfile.gettempdir()) / "loopwright-bench-dashboard"
STORE_FORMAT = 1  # bump when what a store holds changes: cached stores are then rebuilt
SIZES = {"small": (500, 20_000), "full": (10_000, 1_000_000)}  # runs, points of metric "big"
EXPERIMENT, BIG = "bench", "big"
METRICS = ("loss", "accuracy", "f1", "auc", "latency")
SORT_METRIC = "accuracy"
CHART_POINTS = 1000  # what the dashboard's charts ask for (lw.js's default)
PAGE_TARGET_MS, PAINT_TARGET_MS, ASSETS_TARGET = 100.0, 1000.0, 1024 * 1024
BATCH = 100_000  # points per log_batch for the big metric


def params_of(i: int) -> dict[str, str]:
    return {"lr": f"{10 ** -(1 + i % 4):g}", "depth": str(2 + i % 7), "optimizer": "adam"}


def metrics_of(i: int) -> dict[str, float]:
    return {key: ((i * 7919 + n * 104729) % 10_007) / 10_007 for n, key in enumerate(METRICS)}


# --- the stores --------------------------------------------------------------------------------


def build_loopwright(home: Path, runs: int, points: int) -> dict[str, str]:
    """Loopwright's store in ``home``; returns the ids the pages need."""
    import pyarrow as pa

    from loopwright.config import resolve_settings
    from loopwright.data.service import DatasetService
    from loopwright.store.home import open_store
    from loopwright.tracking.entities import Metric
    from loopwright.tracking.service import TrackingService

    settings = resolve_settings(home=home, user="bench")
    with open_store(settings) as store:
        tracking = TrackingService(store, capture=False)
        try:
            now = int(time.time() * 1000)
            ids = []
            for i in range(runs):
                run = tracking.create_run(experiment=EXPERIMENT, name=f"run-{i:05d}")
                values = metrics_of(i)
                tracking.log_batch(
                    run.id,
                    metrics=[Metric(k, v, 0, now + i) for k, v in values.items()],
                    params=params_of(i),
                )
                tracking.end_run(run.id)
                ids.append(run.id)
            big = tracking.create_run(experiment=EXPERIMENT, name="run-big")
            for first in range(0, points, BATCH):
                chunk = range(first, min(first + BATCH, points))
                tracking.log_batch(
                    big.id, metrics=[Metric(BIG, 1.0 / (s + 1), s, now + s) for s in chunk]
                )
                tracking.flush(big.id)
            tracking.end_run(big.id)
        finally:
            tracking.close()
        datasets = DatasetService(store)
        table = pa.table({"x": list(range(1000)), "y": [i % 3 for i in range(1000)]})
        datasets.add("bench-data", table, message="first")
        datasets.add("bench-data", table.slice(0, 900), message="second")
        experiment_id = tracking.get_run(big.id).experiment_id
    return {"experiment_id": experiment_id, "run_id": ids[runs // 2], "big_run_id": big.id}


MLFLOW_BUILD = """
import json, sys, time
from mlflow import MlflowClient
from mlflow.entities import Metric, Param

db, runs, points, metrics_keys = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
keys = metrics_keys.split(",")
client = MlflowClient(tracking_uri=f"sqlite:///{db}")
experiment = client.create_experiment("bench")
now = int(time.time() * 1000)
for i in range(runs):
    run = client.create_run(experiment, run_name=f"run-{i:05d}")
    values = [((i * 7919 + n * 104729) % 10007) / 10007 for n in range(len(keys))]
    params = {"lr": f"{10 ** -(1 + i % 4):g}", "depth": str(2 + i % 7), "optimizer": "adam"}
    client.log_batch(
        run.info.run_id,
        metrics=[Metric(k, v, now + i, 0) for k, v in zip(keys, values)],
        params=[Param(k, v) for k, v in params.items()],
    )
    client.set_terminated(run.info.run_id)
big = client.create_run(experiment, run_name="run-big").info.run_id
for first in range(0, points, 1000):  # MLflow's log_batch takes 1,000 metrics at most
    client.log_batch(big, metrics=[
        Metric("big", 1.0 / (s + 1), now + s, s) for s in range(first, min(first + 1000, points))
    ])
client.set_terminated(big)
print(json.dumps({"experiment_id": experiment, "big_run_id": big}))
"""


def build_mlflow(folder: Path, runs: int, points: int) -> dict[str, str]:
    done = subprocess.run(
        [
            str(MLFLOW_PYTHON),
            "-c",
            MLFLOW_BUILD,
            str(folder / "mlflow.db"),
            str(runs),
            str(points),
            ",".join(METRICS),
        ],
        cwd=folder,
        env=clean_environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise Failed(f"building MLflow's store failed: {done.stderr.strip()[-400:]}")
    ids: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    return ids


def stores(size: str, mlflow: bool) -> tuple[Path, dict[str, str]]:
    """The cached folder for ``size`` (``home/`` for Loopwright, ``mlflow.db``), built if
    missing; a half-built folder (no ``ids.json``) is discarded and built again."""
    runs, points = SIZES[size]
    folder = STORE_ROOT / f"{size}-{runs}x{points}-v{STORE_FORMAT}"
    ids_file = folder / "ids.json"
    ids: dict[str, str] = json.loads(ids_file.read_text()) if ids_file.exists() else {}
    if not ids:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        started = time.perf_counter()
        print(f"building Loopwright's store in {folder} ...", flush=True)
        ids = build_loopwright(folder / "home", runs, points)
        print(f"  built in {time.perf_counter() - started:.0f} s", flush=True)
        ids_file.write_text(json.dumps(ids))
    if mlflow and "mlflow" not in ids:
        started = time.perf_counter()
        print(f"building MLflow's store in {folder} (its client, slow) ...", flush=True)
        (folder / "mlflow.db").unlink(missing_ok=True)
        ids["mlflow"] = json.dumps(build_mlflow(folder, runs, points))
        print(f"  built in {time.perf_counter() - started:.0f} s", flush=True)
        ids_file.write_text(json.dumps(ids))
    return folder, ids


# --- measuring ---------------------------------------------------------------------------------


@dataclass
class Timing:
    label: str
    median_ms: float
    worst_ms: float
    bytes: int


def timed(
    http: httpx.Client, label: str, repeat: int, call: Callable[[httpx.Client], httpx.Response]
) -> Timing:
    """One warm-up call, then ``repeat`` timed ones; every answer must be a 200."""
    samples, size = [], 0
    for n in range(repeat + 1):
        started = time.perf_counter()
        try:
            response = call(http)
        except httpx.HTTPError as error:  # a page that crashes the worker resets the connection
            raise Failed(f"{label}: {type(error).__name__}: {error}") from error
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise Failed(f"{label}: HTTP {response.status_code}: {response.text[:200]}")
        size = len(response.content)
        if n:
            samples.append(elapsed)
    return Timing(label, statistics.median(samples), max(samples), size)


def pages(ids: dict[str, str], runs: int) -> dict[str, str]:
    """The dashboard's main pages on the bench store (label -> path)."""
    experiment, run, big = ids["experiment_id"], ids["run_id"], ids["big_run_id"]
    last_page = max(0, min(99, (runs - 1) // 50)) * 50  # page 100, or the last one
    return {
        "overview": "/ui/",
        "experiments": "/ui/experiments",
        "runs table, page 1": f"/ui/experiments/{experiment}",
        f"runs table, page {last_page // 50 + 1}": (
            f"/ui/experiments/{experiment}?offset={last_page}"
        ),
        f"runs sorted by {SORT_METRIC}, 100 rows": (
            f"/ui/experiments/{experiment}?sort=metrics.{SORT_METRIC}&desc=1&limit=100"
        ),
        "run page": f"/ui/runs/{run}",
        f"run page (the run of {BIG})": f"/ui/runs/{big}",
        f"chart JSON of {BIG}, {CHART_POINTS} points": (
            f"/ui/runs/{big}/metrics/{BIG}.json?x=step&points={CHART_POINTS}"
        ),
        "compare 5 runs": "/ui/compare?runs=" + ",".join(_five(ids)),
        "models": "/ui/models",
        "approvals": "/ui/approvals",
        "audit": "/ui/audit",
        "lineage of a run": f"/ui/lineage?subject={run}&kind=run",
        "datasets": "/ui/datasets",
        "deployments": "/ui/deployments",
        "monitoring": "/ui/monitoring",
    }


def _five(ids: dict[str, str]) -> list[str]:
    """Five runs of the table's first page (found by :func:`measure_pages`)."""
    five: list[str] = json.loads(ids.get("five", "[]"))
    return five or [ids["run_id"], ids["big_run_id"]]


def _getter(path: str) -> Callable[[httpx.Client], httpx.Response]:
    return lambda http: http.get(path)


def measure_pages(server: Server, ids: dict[str, str], runs: int, repeat: int) -> list[Timing]:
    with httpx.Client(base_url=server.url, timeout=120) as http:
        if "five" not in ids:  # five runs of the table's first page, for compare
            found = http.post(
                "/api/2.0/mlflow/runs/search",
                json={"experiment_ids": [ids["experiment_id"]], "max_results": 5},
            )
            ids["five"] = json.dumps([r["info"]["run_id"] for r in found.json()["runs"]])
        timings = []
        for label, path in pages(ids, runs).items():
            try:
                timings.append(timed(http, label, repeat, _getter(path)))
            except Failed as failure:
                print(f"  {failure}", flush=True)
                timings.append(Timing(f"{label} (failed)", float("nan"), float("nan"), 0))
        # The server keeps a few downsampled histories (keyed by their point count), so the
        # repeats above read the kept one; a first view asks for a new point count each time.
        counts = itertools.count(CHART_POINTS + 1)
        first_views = f"/ui/runs/{ids['big_run_id']}/metrics/{BIG}.json?x=step&points="
        timings.append(
            timed(
                http,
                f"chart JSON of {BIG}: first view (never kept)",
                repeat,
                lambda client: client.get(f"{first_views}{next(counts)}"),
            )
        )
        return timings


def measure_mlflow(server: Server, ids: dict[str, str], repeat: int) -> list[Timing]:
    mlflow_ids = json.loads(ids["mlflow"])
    search = {
        "experiment_ids": [mlflow_ids["experiment_id"]],
        "max_results": 100,
        "order_by": [f"metrics.`{SORT_METRIC}` DESC"],
        "run_view_type": "ACTIVE_ONLY",
    }
    interval = {
        "run_ids": mlflow_ids["big_run_id"],
        "metric_key": BIG,
        "max_results": CHART_POINTS,
    }
    with httpx.Client(base_url=server.url, timeout=120) as http:
        return [
            timed(
                http,
                "runs/search, 100 by a metric",
                repeat,
                lambda h: h.post("/ajax-api/2.0/mlflow/runs/search", json=search),
            ),
            timed(
                http,
                f"get-history-bulk-interval, {CHART_POINTS}",
                repeat,
                lambda h: h.get(
                    "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval", params=interval
                ),
            ),
        ]


# The first-contentful-paint entry, waited for (it can land after the load event).
PAINT = """() => new Promise((resolve) => {
  const fcp = (entries) => entries.find((e) => e.name === "first-contentful-paint");
  const found = fcp(performance.getEntriesByType("paint"));
  if (found) return resolve(found.startTime);
  new PerformanceObserver((list) => {
    const entry = fcp(list.getEntries());
    if (entry) resolve(entry.startTime);
  }).observe({type: "paint", buffered: true});
  setTimeout(() => resolve(null), 10000);
})"""


def chromium() -> str | None:
    return os.environ.get("LOOPWRIGHT_TEST_CHROMIUM") or next(
        filter(None, (shutil.which(n) for n in ("chromium", "chromium-browser"))), None
    )


def measure_paints(server: Server, paths: dict[str, str], loads: int) -> dict[str, float]:
    """Median first-contentful-paint (ms) of each page, each load in a fresh context."""
    from playwright.sync_api import sync_playwright

    executable = chromium()
    if executable is None:
        raise Failed("Chromium not found: set LOOPWRIGHT_TEST_CHROMIUM or install chromium")
    paints: dict[str, float] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        )
        try:
            for label, path in paths.items():
                samples = []
                for _ in range(loads):
                    context = browser.new_context(viewport={"width": 1280, "height": 800})
                    try:
                        page = context.new_page()
                        response = page.goto(server.url + path, wait_until="load")
                        if response is None or response.status != 200:
                            raise Failed(f"{label}: {response and response.status}")
                        value = page.evaluate(PAINT)
                        if value is None:
                            raise Failed(f"{label}: the browser reported no first paint")
                        samples.append(float(value))
                    finally:
                        context.close()
                paints[label] = statistics.median(samples)
        finally:
            browser.close()
    return paints


def static_size() -> int:
    return sum(path.stat().st_size for path in STATIC.rglob("*") if path.is_file())


# --- the report --------------------------------------------------------------------------------


def verdict(value: float, target: float) -> str:
    if value != value:  # NaN: failed
        return "failed"
    return "ok" if value < target else "OVER"


def report(
    timings: list[Timing],
    anchors: list[Timing] | None,
    paints: dict[str, float] | str,
    assets: int,
    repeat: int,
) -> None:
    head = f"page (GET on loopback, {repeat} times)"
    target = f"target < {PAGE_TARGET_MS:.0f} ms"
    print(f"\n{head:<55} {'median':>10} {'slowest':>10} {'size':>10}  {target}")
    for t in timings:
        print(
            f"{t.label:<55} {t.median_ms:>7.1f} ms {t.worst_ms:>7.1f} ms {t.bytes / 1024:>7.1f} KB"
            f"  {verdict(t.median_ms, PAGE_TARGET_MS)}"
        )
    print("\nanchor: the MLflow UI's data calls on `mlflow server` (same runs, same store size)")
    if anchors is None:
        print("  not run (--no-mlflow)")
    else:
        by_label = {t.label.split(",")[0]: t for t in timings}
        pairs = [
            (anchors[0], by_label.get(f"runs sorted by {SORT_METRIC}")),
            (anchors[1], by_label.get(f"chart JSON of {BIG}")),
        ]
        print(f"{'':<45} {'mlflow server':>14} {'loopwright':>12} {'ratio':>7}")
        for theirs, ours in pairs:
            if ours is None:
                continue
            ratio = theirs.median_ms / ours.median_ms if ours.median_ms > 0 else float("nan")
            print(
                f"{theirs.label:<45} {theirs.median_ms:>11.1f} ms {ours.median_ms:>9.1f} ms "
                f"{ratio:>6.1f}x   (ours: {ours.label})"
            )
        print("  (MLflow answers JSON its browser code then renders; ours is the rendered page)")
    print(
        "\nfirst contentful paint in Chromium (fresh context, no cache)"
        f"   target < {PAINT_TARGET_MS:.0f} ms"
    )
    if isinstance(paints, str):
        print(f"  {paints}")
    else:
        for label, value in paints.items():
            print(f"  {label:<53} {value:>7.0f} ms  {verdict(value, PAINT_TARGET_MS)}")
    print(
        f"\nstatic assets (loopwright/ui/static): {assets / 1024:.1f} KB"
        f"  target < {ASSETS_TARGET // 1024} KB  {verdict(assets, ASSETS_TARGET)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--repeat", type=int, default=20, help="timed GETs per page")
    parser.add_argument("--paints", type=int, default=5, help="page loads per first-paint figure")
    parser.add_argument("--no-mlflow", action="store_true", help="skip the MLflow anchor")
    parser.add_argument("--no-browser", action="store_true", help="skip the first paints")
    args = parser.parse_args()
    # Servers run in their own sessions: turn SIGTERM into an exit so `finally` stops them.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    runs, points = SIZES[args.size]
    mlflow = not args.no_mlflow
    mlflow_version = ensure_mlflow() if mlflow else "not used"
    print(
        f"machine: {os.cpu_count()} cores, shared with other work, so figures are noisy\n"
        f"store: {runs:,} runs x ({len(METRICS)} metrics, 3 params) + one run with a "
        f"{points:,}-point metric, SQLite; mlflow {mlflow_version}\n"
        f"load average at start: {load_average()}",
        flush=True,
    )
    folder, ids = stores(args.size, mlflow)
    cli = has_server_command()
    with serving("loopwright", folder, cli) as server:
        print(
            f"loopwright server ready in {server.seconds_to_ready:.1f} s; timing pages", flush=True
        )
        timings = measure_pages(server, ids, runs, args.repeat)
        paints: dict[str, float] | str = "not run (--no-browser)"
        if not args.no_browser:
            main_pages = pages(ids, runs)
            wanted = {k: main_pages[k] for k in ("runs table, page 1", "run page")}
            try:
                paints = measure_paints(server, wanted, args.paints)
            except (Failed, ImportError) as failure:
                paints = f"failed: {failure}"
    anchors = None
    if mlflow:
        with serving("mlflow", folder, cli=False) as server:
            print("mlflow server ready; timing its data calls", flush=True)
            anchors = measure_mlflow(server, ids, args.repeat)
    report(timings, anchors, paints, static_size(), args.repeat)
    print(f"load average at end: {load_average()}")


if __name__ == "__main__":
    main()
