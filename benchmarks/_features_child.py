"""What every feature-benchmark contender process measures about itself (standard library only:
it is imported inside Feast's venv too). Each workload runs in a process of its own, so the
process's peak RSS (``ru_maxrss``, interpreter and imports included, as ``/usr/bin/time`` shows
it) is that workload's. A process ends by printing one JSON line, the last line of its output.
"""

from __future__ import annotations

import json
import random
import resource
import statistics
import subprocess
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
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


def entity_batches(batch: int, calls: int, seed: int) -> list[list[int]]:
    """``calls`` lists of ``batch`` random entity ids (of 10,000), the same for every tool."""
    rng = random.Random(seed)
    return [[rng.randrange(10_000) for _ in range(batch)] for _ in range(calls)]


def http_latencies(
    server: subprocess.Popen[bytes], base: str, path: str, log: Path, args: Any, refs: list[str]
) -> dict[str, Any]:
    """Wait for ``server``'s /health, then time POSTs of ``{"features", "entities"}`` to
    ``path`` per batch size in ``args.batch`` (the same body for Feast and Loopwright)."""
    started = time.perf_counter()
    while True:
        if server.poll() is not None:
            raise SystemExit(f"{base} exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=1) as answer:
                if answer.status == 200:
                    break
        except OSError:
            time.sleep(0.05)
        if time.perf_counter() - started > 120:
            raise SystemExit(f"{base} did not answer /health within 120 s")
    figures: dict[str, Any] = {"startup_s": time.perf_counter() - started}
    for batch in args.batch:
        batches = entity_batches(batch, args.calls + args.warmup, batch)

        def post(ids: list[int]) -> Any:
            body = json.dumps({"features": refs, "entities": {"entity_id": ids}}).encode()
            request = urllib.request.Request(
                f"{base}{path}", data=body, headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=30) as answer:
                return json.loads(answer.read())

        figures[str(batch)] = latencies(post, batches, args.warmup)
    return figures
