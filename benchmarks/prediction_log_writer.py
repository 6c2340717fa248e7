"""What the prediction log's writer thread costs the event loop that serves requests.

An asyncio loop runs cheap tasks back to back (each one a tiny bit of work, then a yield) while
appending single-row records, as served requests do, at ``--rate`` rows per second; the log's
writer thread flushes them to Parquet in the background. Every time the writer holds the GIL,
the loop's next step waits, so the tail of the step times (P99, P99.9, max) is what a request
would wait extra. Run with ``--no-log`` for the loop alone.

    .venv/bin/python benchmarks/prediction_log_writer.py --seconds 10 --rate 10000
"""

from __future__ import annotations

import argparse
import array
import asyncio
import gc
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime

import numpy as np

from loopwright.serving.prediction_log import PredictionLog, PredictionRecord

FEATURES = [f"f{i}" for i in range(20)]


# Seven different one-row requests of 20 features, as the decoded request bodies would be.
_ROWS = np.arange(7 * 20, dtype=np.float64).reshape(7, 1, 20) * 0.5
_PROBA = np.array([[0.3, 0.7]])


def _record(n: int) -> PredictionRecord:
    # What serving builds for one single-row OIP request (serving/_records.row_values: a view
    # of the request's array per column, the model's output arrays).
    return PredictionRecord(
        request_id=f"req-{n}",
        deployment="bench",
        variant="primary",
        model="bench-model",
        model_version=3,
        timestamp=datetime.now(UTC),
        latency_ms=1.25,
        status=200,
        inputs=dict(zip(FEATURES, _ROWS[n % 7].T, strict=True)),
        outputs={"predict": np.array([n % 2]), "predict_proba": _PROBA},
    )


async def _ticker(seconds: float, lateness: array.array[float]) -> None:
    """A timer every millisecond: how late it fires is what a request due then would wait."""
    end = time.perf_counter() + seconds
    while (before := time.perf_counter()) < end:
        await asyncio.sleep(0.001)
        lateness.append(time.perf_counter() - before - 0.001)


async def _loop(
    log: PredictionLog | None, seconds: float, rate: float
) -> tuple[array.array[float], array.array[float]]:
    # Arrays of doubles, not lists: the garbage collector would walk a list of millions of
    # floats on every full collection, and the script would measure itself.
    lateness = array.array("d")
    ticker = asyncio.get_running_loop().create_task(_ticker(seconds, lateness))
    steps = array.array("d")
    start = time.perf_counter()
    sent = 0
    last = start
    while (now := time.perf_counter()) - start < seconds:
        steps.append(now - last)
        last = now
        due = int((now - start) * rate)
        while log is not None and sent < due:  # catch up: appends are part of the loop's work
            log.append(_record(sent))
            sent += 1
        sum(range(20))  # the cheap task itself
        await asyncio.sleep(0)
    await ticker
    return steps, lateness


class _FullCollections:
    """CPU time of each full (generation 2) collection, in the thread that ran it: the GIL is
    held throughout, and unlike wall time this does not grow when other processes load the
    machine."""

    def __init__(self) -> None:
        self.cpu_ms: list[float] = []
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started = time.thread_time()
        else:
            self.cpu_ms.append((time.thread_time() - self._started) * 1000)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=10_000.0, help="rows appended per second")
    parser.add_argument("--no-log", action="store_true")
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="gc.freeze() once set up, as a server could after loading its models: full "
        "collections then skip everything imported and loaded",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as root:
        log = None if args.no_log else PredictionLog(root, max_queue=1_000_000)
        if args.gc_freeze:
            gc.collect()
            gc.freeze()
        collections = _FullCollections()
        gc.callbacks.append(collections)
        steps, lateness = asyncio.run(_loop(log, args.seconds, args.rate))
        gc.callbacks.remove(collections)
        stats = None
        if log is not None:
            log.close()
            stats = log.stats()
    result: dict[str, object] = {
        "log": not args.no_log,
        "gc_freeze": args.gc_freeze,
        "rate": args.rate,
    }
    for name, values in (("step", steps), ("timer_late", lateness)):
        ms = sorted(v * 1000 for v in values)
        result[name] = {
            "n": len(ms),
            "p50_ms": round(statistics.median(ms), 4),
            "p99_ms": round(ms[int(0.99 * len(ms))], 3),
            "p999_ms": round(ms[int(0.999 * len(ms))], 3),
            "max_ms": round(ms[-1], 3),
        }
    result["gc_full"] = {
        "count": len(collections.cpu_ms),
        "max_cpu_ms": round(max(collections.cpu_ms, default=0.0), 2),
        "total_cpu_ms": round(sum(collections.cpu_ms), 1),
    }
    result |= {
        "rows_written": None if stats is None else stats.rows_written,
        "files": None if stats is None else stats.files_written,
        "dropped": None if stats is None else stats.dropped,
    }
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
