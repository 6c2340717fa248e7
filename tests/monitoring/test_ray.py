"""Monitoring on Ray (``executor="ray"``): a wide pass scored as Ray tasks over column groups,
and a backfill scoring its windows in parallel, give exactly what the local executor gives.

Ray runs once per test session (``tests/serving/_ray_cluster.py``, two CPUs), shared with the
batch-scoring tests.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "serving"))  # the session's Ray fixture

from _deployment_log import (
    DEPLOYMENT,
    SHIFTED_END,
    START,
    UNSHIFTED_END,
    Clock,
    Deployed,
    deploy,
)
from _ray_cluster import ray_local  # noqa: F401  (the session fixture, used by name)
from test_api import AT, Api, api  # noqa: F401
from test_api import DEPLOYMENT as SCORER_API
from test_monitors_cli import CREATE, as_json, lw, one_line_error, store  # noqa: F401

from loopwright.config import resolve_settings
from loopwright.errors import ConfigError, InvalidInput, PermissionDenied
from loopwright.monitoring.compare import compare
from loopwright.monitoring.entities import DriftResult, MonitorRun
from loopwright.monitoring.service import MonitoringService
from loopwright.serving.predictions import PredictionService
from loopwright.store.home import Store, open_store

pytest.importorskip("ray")
pytest.importorskip("sklearn")


def same(a: DriftResult | None, b: DriftResult | None) -> None:
    """Equal results; ``repr`` because a skipped test's NaN statistic is not == itself."""
    assert a is not None and b is not None
    assert repr(a) == repr(b)


def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """A wide reference and a window: 30 numeric features (every third moved), a categorical
    one with a new category, a prediction, a column only the window has and one it lacks."""
    rng = np.random.default_rng(11)
    ref = {f"input.x{i}": rng.normal(size=3000) for i in range(30)}
    ref |= {"input.c": rng.choice(list("abc"), 3000), "output.p": rng.normal(size=3000)}
    ref |= {"input.gone": rng.normal(size=3000)}
    cur = {f"input.x{i}": rng.normal(0.2 * (i % 3 == 0), size=2000) for i in range(30)}
    cur |= {"input.c": rng.choice(list("abd"), 2000), "output.p": rng.normal(size=2000)}
    cur |= {"input.new": rng.normal(size=2000)}
    return pd.DataFrame(ref), pd.DataFrame(cur)


@pytest.mark.usefixtures("ray_local")
def test_a_wide_pass_on_ray_equals_the_local_pass() -> None:
    ref, cur = frames()
    local = compare(ref, cur, p_values=True)
    on_ray = compare(ref, cur, p_values=True, executor="ray")
    same(local, on_ray)
    assert local.dataset_drift and {"input.x0", "input.x3", "input.c"} <= set(local.drifted_columns)
    skipped = {r.column for r in on_ray.tests if "skipped" in r.detail}
    assert {"input.gone", "input.new"} <= skipped  # missing on one side, as locally

    # Chosen columns, thresholds and tests go to the tasks as they apply locally.
    options: dict[str, Any] = {
        "tests": ["psi", "ks"],
        "columns": ["input.x0", "input.x1", "input.c"],
        "thresholds": {"psi:input.x1": 0.001},
    }
    same(compare(ref, cur, **options), compare(ref, cur, executor="ray", **options))


def test_an_unknown_executor_is_refused_naming_the_choices() -> None:
    ref, cur = frames()
    with pytest.raises(InvalidInput, match=r"executor 'spark' is unknown; use one of local, ray"):
        compare(ref, cur, executor="spark")


def test_without_ray_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    ref, cur = frames()
    with pytest.raises(ConfigError, match=r"pip install 'loopwright\[ray\]'"):
        compare(ref, cur, executor="ray")


# --- through the service --------------------------------------------------------------------


@pytest.fixture
def home(tmp_path: Path) -> Any:
    with open_store(resolve_settings(home=tmp_path / "home")) as s:
        yield s


@pytest.fixture
def deployed(home: Store, tmp_path: Path) -> Deployed:
    return deploy(home, tmp_path)


@pytest.fixture
def monitoring(home: Store, deployed: Deployed) -> MonitoringService:
    return MonitoringService(home, PredictionService(deployed.log), actor="ada", clock=Clock())


@pytest.mark.usefixtures("ray_local")
def test_a_run_on_ray_equals_the_local_run(monitoring: MonitoringService) -> None:
    monitoring.create("churn", deployment=DEPLOYMENT)
    local = monitoring.run("churn", at=SHIFTED_END)
    on_ray = monitoring.run("churn", at=SHIFTED_END, executor="ray")
    assert local.status == on_ray.status == "ok"
    same(local.drift, on_ray.drift)
    assert local.drift is not None and local.drift.dataset_drift
    assert [r.id for r in monitoring.history("churn")] == [on_ray.id, local.id]


def windows(runs: list[MonitorRun]) -> list[tuple[int, int]]:
    return [(r.window_start, r.window_end) for r in runs]


def ms(moment: Any) -> int:
    return int(moment.timestamp() * 1000)


@pytest.mark.usefixtures("ray_local")
def test_backfill_stores_one_run_per_window_and_ray_equals_local(
    monitoring: MonitoringService,
) -> None:
    # Windows of 40 minutes, no schedule: three steps of 40 minutes over the log's two hours.
    for name in ("local", "ray"):
        monitoring.create(name, deployment=DEPLOYMENT, window=timedelta(minutes=40))
    local = monitoring.backfill("local", since=START, until=SHIFTED_END)
    on_ray = monitoring.backfill("ray", since=START, until=SHIFTED_END, executor="ray")

    step = 40 * 60 * 1000
    expected = [(ms(START) + i * step, ms(START) + (i + 1) * step) for i in range(3)]
    assert windows(local) == windows(on_ray) == expected
    assert [r.status for r in on_ray] == ["ok"] * 3
    for a, b in zip(local, on_ray, strict=True):
        assert a.rows == b.rows > 0
        same(a.drift, b.drift)
    # The last window (the shifted hour's last 40 minutes) drifts, the first does not.
    assert [r.drift is not None and r.drift.dataset_drift for r in on_ray] == [False, True, True]
    # Stored as run(at=end) stores them: the history holds them, newest first.
    assert [r.id for r in monitoring.history("ray")] == [r.id for r in reversed(on_ray)]
    single = monitoring.run("local", at=UNSHIFTED_END + timedelta(minutes=20))
    same(single.drift, local[1].drift)


def test_backfill_follows_every_and_refuses_bad_spans(monitoring: MonitoringService) -> None:
    monitoring.create(
        "m", deployment=DEPLOYMENT, window=timedelta(hours=1), every=timedelta(minutes=30)
    )
    runs = monitoring.backfill("m", since=START, until=SHIFTED_END)
    assert [r.window_end - ms(START) for r in runs] == [m * 60_000 for m in (60, 90, 120)]

    with pytest.raises(InvalidInput, match=r"shorter than its window \(1:00:00\)"):
        monitoring.backfill("m", since=START, until=START + timedelta(minutes=59))
    with pytest.raises(InvalidInput, match=r"more than 10000 per backfill"):
        monitoring.backfill("m", since=START - timedelta(days=400), until=START)
    with pytest.raises(InvalidInput, match=r"executor 'dask' is unknown"):
        monitoring.backfill("m", since=START, executor="dask")
    with pytest.raises(InvalidInput, match=r"executor 'dask' is unknown"):
        monitoring.run("m", executor="dask")
    assert len(monitoring.history("m")) == 3  # nothing stored by the refused calls


def test_a_span_cut_into_parts_asks_for_exactly_its_windows(
    monitoring: MonitoringService,
) -> None:
    from loopwright.monitoring._backfill import parts, window_ends

    monitor = monitoring.create("m", deployment=DEPLOYMENT, every=timedelta(minutes=15))
    now = ms(SHIFTED_END)
    ends = window_ends(monitor, timedelta(hours=2), None, now)
    assert len(ends) == 5  # 1h windows every 15 minutes over two hours
    cut = parts(monitor, timedelta(hours=2), None, now, 2)
    assert [count for _, _, count in cut] == [2, 2, 1]
    again = [e for since, until, _ in cut for e in window_ends(monitor, since, until, now)]
    assert again == ends


# --- CLI ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("ray_local")
def test_cli_backfill_and_run_on_ray(store: list[str]) -> None:  # noqa: F811
    as_json(store, *CREATE)  # mon: window 1h, every 15m
    span = ["--since", "2026-12-05T09", "--until", "2026-12-05T11"]
    runs = as_json(store, "monitors", "backfill", "mon", *span, "--executor", "ray")
    assert [r["status"] for r in runs] == ["ok"] * 5  # ends 10:00, 10:15, ..., 11:00
    assert runs[0]["window_end"] < runs[-1]["window_end"]
    local = as_json(store, "monitors", "backfill", "mon", *span)
    assert [r["drift"] for r in local] == [r["drift"] for r in runs]
    run = as_json(store, "monitors", "run", "mon", "--at", "2026-12-05T11", "--executor", "ray")
    assert run["drift"] == runs[-1]["drift"]

    one_line_error(
        lw(store, "monitors", "backfill", "mon", *span, "--executor", "spark"),
        "executor 'spark' is unknown",
    )
    one_line_error(
        lw(store, "monitors", "backfill", "mon", "--since", "2026-12-05T10", "--until",
           "2026-12-05T10:30"),
        "shorter than its window",
    )  # fmt: skip


# --- through a server ---------------------------------------------------------------------


@pytest.mark.usefixtures("ray_local")
def test_backfill_and_run_through_a_server(
    api: Api,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from loopwright.remote import monitoring as remote

    monkeypatch.setattr(remote, "BACKFILL_WINDOWS", 2)  # the three windows in two requests
    for name in ("here", "there"):
        api.local.monitoring.create(
            name, deployment=SCORER_API, reference="ref@v1", every=timedelta(minutes=30)
        )  # window 1h: ends at AT, AT + 30m and AT + 1h
    span: dict[str, Any] = {"since": AT - timedelta(hours=1), "until": AT + timedelta(hours=1)}
    here = api.local.monitoring.backfill("here", **span)
    there = api.ed.monitoring.backfill("there", executor="ray", **span)
    assert [(r.status, r.error) for r in there] == [("ok", None)] * 3
    assert windows(here) == windows(there)
    for a, b in zip(here, there, strict=True):
        same(a.drift, b.drift)
    assert api.vic.monitoring.history("there") == list(reversed(there))
    with pytest.raises(PermissionDenied):
        api.vic.monitoring.backfill("there", **span)
    with pytest.raises(InvalidInput, match=r"executor 'spark' is unknown"):
        api.ed.monitoring.backfill("there", executor="spark", **span)
    with pytest.raises(InvalidInput, match=r"executor 'spark' is unknown"):
        api.ed.monitoring.run("there", executor="spark")
    on_ray = api.ed.monitoring.run("there", at=AT + timedelta(hours=1), executor="ray")
    same(on_ray.drift, here[-1].drift)
