"""What every monitoring-benchmark contender process measures about itself (standard library only:
it is imported by the script that runs inside Evidently's venv too).

Memory is read from /proc/self/status: ``VmRSS`` now, ``VmHWM`` the peak. Writing ``5`` to
/proc/self/clear_refs resets the peak to the current RSS (Linux >= 4.0), so the peak of the drift
pass alone is measured after the data is loaded; ``ru_maxrss`` stays the whole process's peak.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

MIB = 1024 * 1024


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field} line (not Linux?)")


def rss_mib() -> float:
    """Resident memory now."""
    return _status_kib("VmRSS") / 1024


def settle() -> None:
    """Hand memory freed while loading back to the system before "loaded" RSS is read: Arrow's
    pool (mimalloc or jemalloc) keeps the Parquet reader's freed buffers otherwise, which would
    count as data held."""
    gc.collect()
    arrow = sys.modules.get("pyarrow")
    if arrow is not None:
        arrow.default_memory_pool().release_unused()


def reset_peak() -> bool:
    """Restart the peak at the current RSS; False where the kernel does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_mib() -> float:
    """Peak resident memory since the start, or since the last :func:`reset_peak`."""
    return _status_kib("VmHWM") / 1024


def process_peak_mib() -> float:
    """The whole process's peak (``ru_maxrss`` is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(run: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    """``run`` ``repeat`` times: the wall times in seconds and the last run's value."""
    times: list[float] = []
    value: Any = None
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        value = run()
        times.append(time.perf_counter() - start)
    return times, value


def median(values: list[float]) -> float:
    return statistics.median(values)


def arguments(description: str) -> argparse.ArgumentParser:
    """The options every contender takes (the driver passes them)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--reference", type=Path, required=True)
    parser.add_argument("--current", type=Path, required=True)
    parser.add_argument("--numeric", default="", help="comma-separated numeric columns")
    parser.add_argument("--categorical", default="", help="comma-separated categorical columns")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, required=True, help="write the JSON figures here")
    return parser


def names(text: str) -> list[str]:
    return [name for name in text.split(",") if name]


def write(out: Path, figures: dict[str, Any]) -> None:
    """The figures as JSON, with the process's own peak and pid added."""
    figures = {**figures, "process_peak_mib": process_peak_mib(), "pid": os.getpid()}
    out.write_text(json.dumps(figures, indent=1))
