"""benchmarks/dashboard.py on a tiny store, so the pages it times cannot rot unnoticed: its
store builder runs, and every page it times answers 200 from a live server (the benchmark
itself is run by hand, at full size, on a quiet machine)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from types import ModuleType

import pytest

from loopwright.config import resolve_settings

BENCHMARKS = Path(__file__).resolve().parents[3] / "benchmarks"


def _load(name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered for this test only: dataclasses look their module up by name, and
    # dashboard.py imports benchmarks/server.py by its bare name.
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module


def test_every_page_the_benchmark_times_answers(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    serve_app: Callable[..., AbstractContextManager[str]],
) -> None:
    server = _load("server", monkeypatch)
    dashboard = _load("dashboard", monkeypatch)
    home = tmp_path / "home"
    runs = 60
    ids = dashboard.build_loopwright(home, runs, 2500)
    settings = resolve_settings(home=home, user="bench")
    with serve_app(settings, auth=False) as url:
        live = server.Server(process=None, url=url, seconds_to_ready=0.0)
        timings = dashboard.measure_pages(live, ids, runs, 1)
    # Every page, and the big chart's first view (a new point count each time: never kept).
    assert len(timings) == len(dashboard.pages(ids, runs)) + 1 >= 16
    assert timings[-1].label.endswith("first view (never kept)")
    failed = [t.label for t in timings if t.label.endswith("(failed)")]
    assert not failed, f"pages the benchmark times failed: {failed}"
    assert all(t.bytes > 0 and t.median_ms > 0 for t in timings)
    # Compare got five real runs of the table, and the chart of the big metric has points.
    assert len(dashboard._five(ids)) == 5
    chart = next(t for t in timings if t.label.startswith("chart JSON"))
    assert chart.bytes > 1000
