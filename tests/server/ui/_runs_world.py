"""The runs pages' test store (imported by bare name by ``test_ui_runs*.py``).

:func:`seed` fills experiment ``sweep`` with :data:`SWEEP_RUNS` finished runs (params ``model``
rf/gb and ``lr``, metrics ``auc`` and ``loss`` over ten steps; run ``sweep-007`` has the highest
auc), and experiment ``long`` with one run whose ``loss`` has :data:`LONG_POINTS` points: a
falling curve with one spike (:data:`SPIKE` at step :data:`SPIKE_STEP`) and one dip, plus
artifacts of each preview kind. Built through ``TrackingService``, as a client would.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from pathlib import Path

from loopwright.config import Settings
from loopwright.store.home import open_store
from loopwright.tracking import TrackingService
from loopwright.tracking.entities import Metric

SWEEP_RUNS = 120
LONG_POINTS = 200_000
SPIKE, SPIKE_STEP = 50.0, 123_457
DIP, DIP_STEP = -7.0, 61_001
START_MS = 1_780_000_000_000
# A 1x1 red PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20"><script>alert(1)</script>'
    b'<rect width="20" height="20" fill="#1f4fa3"/></svg>'
)


@dataclass(frozen=True)
class RunsWorld:
    sweep_id: str
    best_run: str  # highest auc
    run_ids: list[str]  # of sweep, in creation order
    long_run: str
    child_run: str  # of long_run
    long_id: str  # experiment id of "long"


def loss(step: int) -> float:
    if step == SPIKE_STEP:
        return SPIKE
    if step == DIP_STEP:
        return DIP
    return math.exp(-step / 50_000) + (step % 13) / 1000


def _parquet() -> bytes:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    out = io.BytesIO()
    pq.write_table(pa.table({"x": list(range(250)), "y": [f"v{i}" for i in range(250)]}), out)
    return out.getvalue()


def seed(settings: Settings, scratch: Path) -> RunsWorld:
    with open_store(settings) as store:
        return _fill(TrackingService(store, capture=False), scratch)


def _fill(tracking: TrackingService, scratch: Path) -> RunsWorld:
    try:
        ids = []
        for n in range(SWEEP_RUNS):
            run = tracking.create_run(experiment="sweep", name=f"sweep-{n:03d}")
            tracking.log_params(
                run.id, {"model": "rf" if n % 2 else "gb", "lr": 0.01 * (1 + n % 5)}
            )
            auc = 0.5 + (0.4 if n == 7 else 0.3 * ((n * 37) % 100) / 100)
            tracking.log_metric_points(
                run.id,
                [Metric("auc", auc * s / 9, s, START_MS + n * 1000 + s) for s in range(10)]
                + [
                    Metric("loss", 1 / (s + 1 + n % 3), s, START_MS + n * 1000 + s)
                    for s in range(10)
                ],
            )
            tracking.end_run(run.id)
            ids.append(run.id)
        captured = TrackingService(tracking.store)  # capture on: the environment and git
        long = captured.create_run(experiment="long", name="long-run")
        captured.close()
        child = tracking.create_run(experiment="long", name="child-run", parent_run_id=long.id)
        tracking.end_run(child.id)
        points = [Metric("loss", loss(s), s, long.start_time + s * 10) for s in range(LONG_POINTS)]
        tracking.log_metric_points(long.id, points)
        tracking.log_params(long.id, {"model": "rf", "lr": 0.05})
        tracking.log_metric_points(
            long.id, [Metric("val/acc", 0.1 * s, s, long.start_time + s) for s in range(5)]
        )
        scratch.mkdir(parents=True, exist_ok=True)
        files = {
            "notes.txt": b"line one <b>not bold</b>\nline two\n",
            "plots/curve.png": PNG,
            "plots/shape.svg": SVG,
            "data/sample.csv": b"id,score,label\n1,0.25,no\n2,0.75,yes\n3,0.5,<i>x</i>\n",
            "data/blob.bin": bytes(range(256)) * 8,
            "data/records.json": b'[{"k": "a", "n": 1}, {"k": "<b>", "n": 2}]',
            "data/table.parquet": _parquet(),
        }
        for rel, data in files.items():
            local = scratch / rel
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_bytes(data)
            folder = rel.rpartition("/")[0] or None
            stored = tracking.log_artifact(long.id, local, folder)
            assert stored.path == rel, stored.path
        tracking.end_run(long.id)
        return RunsWorld(
            sweep_id=tracking.get_experiment_by_name("sweep").id,
            best_run=ids[7],
            run_ids=ids,
            long_run=long.id,
            child_run=child.id,
            long_id=tracking.get_experiment_by_name("long").id,
        )
    finally:
        tracking.close()
