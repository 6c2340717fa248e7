"""Subprocess bodies for the concurrency and crash tests (run as ``python _workers.py MODE …``)."""

from __future__ import annotations

import sys
import time

from loopwright.config import resolve_settings
from loopwright.store import schema
from loopwright.store.home import open_store
from loopwright.tracking import Metric, TrackingService


def concurrent_writer(home: str, worker: str, runs: int, start_at: float) -> None:
    """Wait for a common start time, then open the store and log ``runs`` runs quickly."""
    time.sleep(max(0.0, start_at - time.time()))
    store = open_store(resolve_settings(home=home))  # the first openers race to migrate
    tracking = TrackingService(store)
    for i in range(runs):
        run = tracking.create_run(experiment="shared", name=f"{worker}-{i}")
        tracking.log_params(run.id, {"worker": worker, "i": i})
        tracking.log_metric_points(run.id, [Metric("m", float(s), s, 1000 + s) for s in range(10)])
        tracking.list_runs(experiment="shared", limit=5)  # readers interleave with writers
    store.close()


def opener(home: str, start_at: float) -> None:
    """Open (creating) a store at a common start time, then write once."""
    time.sleep(max(0.0, start_at - time.time()))
    store = open_store(resolve_settings(home=home))
    TrackingService(store).get_or_create_experiment("race")
    store.close()


def batch_writer(db_uri: str, rows_per_batch: int) -> None:
    """Write batches in one transaction each; print a batch's number once it has committed."""
    from loopwright.store.database import Database

    db = Database.open(db_uri)
    batch = int(time.time() * 1000)
    while True:
        batch += 1
        rows = [
            {
                "run_id": "crash-run",
                "key": f"b{batch}",
                "step": s,
                "timestamp": 0,
                "value": float(s),
                "is_nan": False,
            }
            for s in range(rows_per_batch)
        ]
        with db.write() as conn:
            conn.execute(schema.metrics.insert(), rows)
        print(batch, flush=True)


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    if mode == "concurrent":
        concurrent_writer(args[0], args[1], int(args[2]), float(args[3]))
    elif mode == "open":
        opener(args[0], float(args[1]))
    elif mode == "batches":
        batch_writer(args[0], int(args[1]))
    else:
        raise SystemExit(f"unknown mode {mode}")
