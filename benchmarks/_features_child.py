"""What every feature-benchmark contender process measures about itself (standard library only:
it is imported inside Feast's venv too). Each workload runs in a process of its own, so the
process's peak RSS (``ru_maxrss``, interpreter and imports included, as ``/usr/bin/time`` shows
it) is that workload's. A process ends by printing one JSON line, the last line of its output.
"""

from __future__ import annotations

import json
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

MIB = 1024 * 1024


def peak_rss_mib() -> float:
    """This process's peak resident memory (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(work: Callable[[], Any], repeat: int) -> tuple[list[float], list[float], Any]:
    """Wall and process CPU seconds of ``repeat`` calls, and the last call's result."""
    walls: list[float] = []
    cpus: list[float] = []
    result: Any = None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = work()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return walls, cpus, result


def latencies(call: Callable[[Any], Any], batches: Sequence[Any], warmup: int) -> dict[str, float]:
    """Median, p99 and mean milliseconds of ``call`` over ``batches`` (the first ``warmup``
    calls not counted)."""
    for batch in batches[:warmup]:
        call(batch)
    samples: list[float] = []
    for batch in batches[warmup:]:
        start = time.perf_counter()
        call(batch)
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return {
        "median_ms": statistics.median(samples),
        "p99_ms": samples[min(len(samples) - 1, int(len(samples) * 0.99))],
        "mean_ms": statistics.fmean(samples),
        "calls": len(samples),
    }


def report(figures: dict[str, Any]) -> None:
    """The process's result: one JSON line, with its peak RSS."""
    print(json.dumps({**figures, "peak_rss_mib": peak_rss_mib()}), flush=True)
