"""The system metrics sampler: real readings on a real thread, logged to a real run."""

from __future__ import annotations

import logging
import sys
import threading
import time
from pathlib import Path

import pytest

from loopwright.client import Client
from loopwright.config import resolve_settings
from loopwright.errors import InvalidInput
from loopwright.tracking import system_metrics
from loopwright.tracking.system_metrics import (
    CPU_PERCENT,
    KEYS,
    MEMORY_PERCENT,
    MEMORY_RSS_MB,
    SystemMetricsSampler,
)

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


class Recorder:
    def __init__(self) -> None:
        self.samples: list[tuple[dict[str, float], int]] = []
        self.lock = threading.Lock()

    def __call__(self, metrics: dict[str, float], step: int) -> None:
        with self.lock:
            self.samples.append((metrics, step))

    def wait_for(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.samples) < count:
            assert time.monotonic() < deadline, f"only {len(self.samples)} samples"
            time.sleep(0.01)


def _assert_plausible(metrics: dict[str, float]) -> None:
    assert 0.0 <= metrics[CPU_PERCENT] <= 100.0
    assert 1.0 < metrics[MEMORY_RSS_MB] < 1024 * 1024
    assert 0.0 < metrics[MEMORY_PERCENT] <= 100.0


def test_sampler_logs_plausible_values_and_stops_cleanly() -> None:
    recorder = Recorder()
    sampler = SystemMetricsSampler(recorder, interval_s=0.05)
    sampler.start()
    sampler.start()  # already running: no second thread
    recorder.wait_for(3)
    sampler.stop()
    count = len(recorder.samples)
    assert [step for _, step in recorder.samples] == list(range(count))
    (first, _), *timed, (last, _) = recorder.samples
    assert set(first) == {MEMORY_RSS_MB, MEMORY_PERCENT}  # at start: no interval for CPU use
    assert len(timed) >= 2
    for metrics, _ in timed:
        assert set(metrics) == set(KEYS)
        _assert_plausible(metrics)
    # At stop CPU use is there unless the CPU clock did not tick since the previous sample.
    assert {MEMORY_RSS_MB, MEMORY_PERCENT} <= set(last) <= set(KEYS)
    time.sleep(0.2)
    assert len(recorder.samples) == count  # nothing after stop
    sampler.stop()  # idempotent
    assert not any(t.name == "loopwright-system-metrics" for t in threading.enumerate())


def test_sampler_as_context_manager_logs_to_a_run(tmp_path: Path) -> None:
    with (
        Client(resolve_settings(home=tmp_path / "h")) as client,
        client.start_run(experiment="sys") as run,
    ):
        with SystemMetricsSampler(lambda m, step: run.log_metrics(m, step=step), interval_s=0.05):
            deadline = time.monotonic() + 10
            while not client.get_metric_history(run.id, MEMORY_RSS_MB):
                assert time.monotonic() < deadline
                time.sleep(0.05)
        history = client.get_metric_history(run.id, MEMORY_RSS_MB)
    assert history and all(point.value > 1.0 for point in history)


def test_a_sampler_stopped_within_one_interval_logs_at_start_and_at_stop() -> None:
    recorder = Recorder()
    with SystemMetricsSampler(recorder, interval_s=3600):
        time.sleep(0.05)  # lets the CPU clock move, so the last sample measures CPU use
    first, last = recorder.samples
    assert (first[1], last[1]) == (0, 1)
    assert set(first[0]) == {MEMORY_RSS_MB, MEMORY_PERCENT}  # no interval to measure CPU over
    assert set(last[0]) == set(KEYS)
    _assert_plausible(last[0])


def test_a_run_shorter_than_the_interval_has_system_metrics(tmp_path: Path) -> None:
    with Client(resolve_settings(home=tmp_path / "h")) as client:
        with client.start_run(experiment="sys", log_system_metrics=True) as run:
            pass  # far shorter than the default 10 s interval
        memory = client.get_metric_history(run.id, MEMORY_RSS_MB)
        assert [point.step for point in memory] == [0, 1]
        assert all(point.value > 1.0 for point in memory)
        assert len(client.get_metric_history(run.id, MEMORY_PERCENT)) == 2


def test_a_failing_log_is_reported_once_and_sampling_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[int] = []

    def broken(metrics: dict[str, float], step: int) -> None:
        calls.append(step)
        raise RuntimeError("store is down")

    with (
        caplog.at_level(logging.WARNING, logger="loopwright"),
        SystemMetricsSampler(broken, interval_s=0.02),
    ):
        deadline = time.monotonic() + 10
        while len(calls) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    assert [r.message for r in caplog.records] == ["system metrics could not be logged"]


@linux_only
def test_proc_reader_without_psutil() -> None:
    reader = system_metrics._ProcReader()
    time.sleep(0.05)
    _assert_plausible(reader.read())


def test_psutil_reader_when_installed() -> None:
    psutil = pytest.importorskip("psutil")
    reader = system_metrics._PsutilReader(psutil)
    time.sleep(0.05)
    _assert_plausible(reader.read())


@pytest.mark.parametrize("interval", [0, -1.0, float("nan")])
def test_interval_must_be_positive(interval: float) -> None:
    with pytest.raises(InvalidInput, match="interval_s"):
        SystemMetricsSampler(lambda m, s: None, interval_s=interval)
