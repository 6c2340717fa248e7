"""System metrics sampled on a background thread while a run trains.

When it starts, every ``interval_s`` seconds, and when it stops, the sampler reads

- ``system/cpu_percent``: whole-machine CPU use since the previous sample (0-100),
- ``system/memory_rss_mb``: this process's resident memory in MiB,
- ``system/memory_percent``: the machine's used memory in percent,

and hands them to ``log(metrics, step)`` with steps 0, 1, 2 … The samples at start and stop
mean that a run shorter than the interval still has its readings; the one at start has no CPU
use (that needs an interval), nor has any sample taken before the CPU clock moved. It uses
psutil when it is installed and ``/proc`` on Linux otherwise; values neither can read are left
out (psutil is optional, not a dependency). A failing ``log`` call is reported once and the
sampling goes on.

Example:
    >>> samples = []
    >>> with SystemMetricsSampler(lambda m, step: samples.append(m), interval_s=0.01) as s:
    ...     _ = s.sample()
    >>> set(s.sample()) <= set(KEYS)
    True
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, Protocol

from .._logging import get_logger
from ..errors import InvalidInput

__all__ = ["CPU_PERCENT", "KEYS", "MEMORY_PERCENT", "MEMORY_RSS_MB", "SystemMetricsSampler"]

CPU_PERCENT = "system/cpu_percent"
MEMORY_RSS_MB = "system/memory_rss_mb"
MEMORY_PERCENT = "system/memory_percent"
KEYS = (CPU_PERCENT, MEMORY_RSS_MB, MEMORY_PERCENT)
_MIB = 1024 * 1024
_logger = get_logger(__name__)


class _Reader(Protocol):
    def read(self) -> dict[str, float]: ...


class _PsutilReader:
    def __init__(self, psutil: Any) -> None:
        self._psutil = psutil
        self._process = psutil.Process()
        # Our own baseline: psutil.cpu_percent() keeps one per process, shared by all callers.
        self._last_cpu = self._cpu_times()

    def _cpu_times(self) -> tuple[float, float]:
        times = self._psutil.cpu_times()
        # On Linux guest time is also counted in user/nice: leave it out of the total.
        guest = float(getattr(times, "guest", 0.0)) + float(getattr(times, "guest_nice", 0.0))
        total = float(sum(times)) - guest
        idle = float(times.idle) + float(getattr(times, "iowait", 0.0))
        return total - idle, total

    def read(self) -> dict[str, float]:
        now = self._cpu_times()
        busy, total = now[0] - self._last_cpu[0], now[1] - self._last_cpu[1]
        self._last_cpu = now
        found = {
            MEMORY_RSS_MB: self._process.memory_info().rss / _MIB,
            MEMORY_PERCENT: float(self._psutil.virtual_memory().percent),
        }
        if total > 0:
            found[CPU_PERCENT] = min(100.0, max(0.0, 100.0 * busy / total))
        return found


class _ProcReader:
    """Linux ``/proc``: ``stat`` for CPU, ``self/statm`` for RSS, ``meminfo`` for memory."""

    def __init__(self) -> None:
        self._page_size = os.sysconf("SC_PAGE_SIZE")
        self._last_cpu = self._cpu_times()

    @staticmethod
    def _cpu_times() -> tuple[int, int] | None:
        """(busy, total) jiffies of all CPUs since boot."""
        try:
            with open("/proc/stat", encoding="ascii") as f:
                fields = [int(v) for v in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        idle = sum(fields[3:5])  # idle + iowait
        total = sum(fields[:8])  # guest time is already counted in user/nice
        return total - idle, total

    def read(self) -> dict[str, float]:
        found: dict[str, float] = {}
        now = self._cpu_times()
        if now is not None and self._last_cpu is not None:
            busy, total = now[0] - self._last_cpu[0], now[1] - self._last_cpu[1]
            if total > 0:
                found[CPU_PERCENT] = 100.0 * busy / total
        self._last_cpu = now
        try:
            with open("/proc/self/statm", encoding="ascii") as f:
                found[MEMORY_RSS_MB] = int(f.read().split()[1]) * self._page_size / _MIB
        except (OSError, ValueError, IndexError):
            pass
        try:
            with open("/proc/meminfo", encoding="ascii") as f:
                info = {k: int(v.split()[0]) for k, _, v in (line.partition(":") for line in f)}
            total_kb, available_kb = info["MemTotal"], info["MemAvailable"]
            found[MEMORY_PERCENT] = 100.0 * (total_kb - available_kb) / total_kb
        except (OSError, ValueError, KeyError, IndexError, ZeroDivisionError):
            pass
        return found


def _default_reader() -> _Reader:
    try:
        import psutil
    except ImportError:
        return _ProcReader()
    return _PsutilReader(psutil)


class SystemMetricsSampler:
    """Samples CPU and memory at start, every ``interval_s`` seconds (on a thread) and at stop.

    Args:
        log: called as ``log(metrics, step)``, e.g. ``run.log_metrics``: from the sampler thread,
            and from the threads that call ``start`` and ``stop``.
        interval_s: seconds between samples.
    """

    def __init__(
        self, log: Callable[[dict[str, float], int], object], *, interval_s: float = 10.0
    ) -> None:
        if not interval_s > 0:
            raise InvalidInput(f"interval_s must be a positive number of seconds, not {interval_s}")
        self._log = log
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._reader: _Reader | None = None
        self._step = 0
        self._failed = False
        self._lock = threading.Lock()

    def sample(self) -> dict[str, float]:
        """One reading now (CPU use is measured since the previous reading)."""
        with self._lock:
            if self._reader is None:
                self._reader = _default_reader()
            return self._reader.read()

    def start(self) -> None:
        """Log a first sample and start sampling; starting a running sampler does nothing."""
        if self._thread is not None:
            return
        self._take(cpu=False)  # also the CPU baseline for the first interval
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._loop, name="loopwright-system-metrics", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling, wait for the thread and log a last sample; stopping again does nothing."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        thread.join()
        self._take()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self._take()

    def _take(self, *, cpu: bool = True) -> None:
        """Sample and log; ``cpu=False`` leaves CPU use out (no interval to measure it over)."""
        try:
            metrics = self.sample()
            if not cpu:
                metrics.pop(CPU_PERCENT, None)
            if metrics:
                self._log(metrics, self._step)
                self._step += 1
        except Exception:
            if not self._failed:  # a broken store must not flood the log every interval
                _logger.warning("system metrics could not be logged", exc_info=True)
            self._failed = True

    def __enter__(self) -> SystemMetricsSampler:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
