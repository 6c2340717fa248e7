"""``/ui/monitoring``: monitors with their last run, drift status and open alerts; a monitor's
page with drift per feature over time, the latest report's tests and histograms (reference vs
current) for the drifted features, its alerts, and performance with label coverage over time.

Alerts are read in SQL a page at a time (a monitor's, newest first, with their count) and
counted per monitor for the list, so neither page reads every alert ever raised.

The monitoring API offers no way to acknowledge or resolve an alert (the alert book resolves
one when its rule stops firing), so these pages have no write buttons.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import TYPE_CHECKING, Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from ...errors import InvalidInput
from ...store import schema as t
from ..api._deps import State, Viewer
from ..auth import UI_PREFIX
from ._page import render
from ._paging import Offset

if TYPE_CHECKING:
    from ...governance.tokens import Identity
    from ...monitoring.entities import Alert, Distribution, MonitorRun
    from ...monitoring.service import MonitoringService

__all__ = ["router"]

router = APIRouter(prefix=UI_PREFIX, include_in_schema=False)

HISTORY = 200  # runs a monitor's charts draw (newest)
TOP_CATEGORIES = 20  # categories a categorical histogram lists
ALERTS = 50  # alerts a monitor's page lists at a time
MAX_ALERTS = 500


def _service(state: State, caller: Identity) -> MonitoringService:
    from ...monitoring.service import MonitoringService
    from ...serving.prediction_log import log_location
    from ...serving.predictions import PredictionService

    log = PredictionService(log_location(state.settings))
    return MonitoringService(state.store, log, actor=caller.user)


def _latest_runs(service: MonitoringService, names: dict[str, str]) -> dict[str, MonitorRun]:
    """Each monitor's newest run (by window end), in one query: monitor name -> run."""
    from ...monitoring._runs import run_from_row

    runs = t.monitor_runs.c
    newest = (
        sa.select(runs.monitor_id, sa.func.max(runs.window_end).label("window_end"))
        .group_by(runs.monitor_id)
        .subquery()
    )
    query = (
        sa.select(t.monitor_runs)
        .join(
            newest,
            sa.and_(runs.monitor_id == newest.c.monitor_id, runs.window_end == newest.c.window_end),
        )
        .order_by(runs.started_at)
    )
    with service.db.read() as conn:
        rows = conn.execute(query).all()
    found: dict[str, MonitorRun] = {}
    for row in rows:  # ties on window_end: the run started last wins
        if row.monitor_id in names:
            found[names[row.monitor_id]] = run_from_row(row, names[row.monitor_id])
    return found


@router.get("/monitoring")
def monitors(request: Request, state: State, caller: Viewer) -> Response:
    service = _service(state, caller)
    found = service.list()
    latest = _latest_runs(service, {m.id: m.name for m in found})
    open_alerts = _open_alerts(service, {m.id: m.name for m in found})
    return render(
        request, "monitoring/list.html", monitors=found, latest=latest, open_alerts=open_alerts
    )


@router.get("/monitoring/{monitor}")
def monitor(
    request: Request,
    monitor: str,
    state: State,
    caller: Viewer,
    test: str | None = None,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_ALERTS)] = ALERTS,
) -> Response:
    """A monitor's drift, report, performance and runs, and a page of its alerts."""
    service = _service(state, caller)
    found = service.get(monitor)
    history = list(reversed(service.history(found.name, limit=HISTORY)))  # oldest first
    tests = sorted({r.test for run in history if run.drift for r in run.drift.tests})
    latest = history[-1] if history else None
    chosen = test or _default_test(latest, tests)
    if test is not None and test not in tests:
        listed = ", ".join(tests) or "none yet"
        raise InvalidInput(
            f"monitor {found.name!r} has no results of test {test[:40]!r}; tests: {listed}"
        )
    alerts, total = _alerts_page(service, found.id, found.name, offset, limit)
    drifted = set(latest.drift.drifted_columns) if latest and latest.drift else set()
    histograms = [
        _histogram(d)
        for d in (latest.drift.distributions if latest and latest.drift else ())
        if d.column in drifted
    ]
    return render(
        request,
        "monitoring/detail.html",
        monitor=found,
        latest=latest,
        runs=list(reversed(history))[:20],
        tests=tests,
        test=chosen,
        statistic=_drift_spec(history, chosen, p_value=False),
        p_values=_drift_spec(history, chosen, p_value=True),
        histograms=histograms,
        quality=_performance_spec(history),
        coverage=_coverage_spec(history),
        alerts=alerts,
        offset=offset,
        limit=limit,
        total=total,
        params={"test": test, "limit": limit if limit != ALERTS else None},
    )


def _open_alerts(service: MonitoringService, names: dict[str, str]) -> dict[str, int]:
    """Each monitor's open alerts, counted in one query: monitor name -> count."""
    a = t.alerts.c
    query = (
        sa.select(a.monitor_id, sa.func.count()).where(a.status == "open").group_by(a.monitor_id)
    )
    with service.db.read() as conn:
        counted = conn.execute(query).all()
    return {names[row[0]]: int(row[1]) for row in counted if row[0] in names}


def _alerts_page(
    service: MonitoringService, monitor_id: str, name: str, offset: int, limit: int
) -> tuple[list[Alert], int]:
    """One page of the monitor's alerts (any status), newest first as ``alerts(monitor=)``
    lists them, and how many it has."""
    from ...monitoring._alerts import _alert as alert_from_row  # the book's own row reader

    a = t.alerts.c
    query = (
        sa.select(t.alerts, sa.literal(name).label("monitor_name"))
        .where(a.monitor_id == monitor_id)
        .order_by(a.opened_at.desc(), a.id.desc())
        .offset(offset)
        .limit(limit)
    )
    count = sa.select(sa.func.count()).where(a.monitor_id == monitor_id)
    with service.db.read() as conn:
        rows = conn.execute(query).all()
        total = int(conn.execute(count).scalar_one())
    return [alert_from_row(row) for row in rows], total


def _default_test(latest: MonitorRun | None, tests: Sequence[str]) -> str | None:
    """The latest run's first test (the monitor's main one), else the first known."""
    if latest is not None and latest.drift and latest.drift.tests:
        return latest.drift.tests[0].test
    return tests[0] if tests else None


def _drift_spec(
    history: Sequence[MonitorRun], test: str | None, *, p_value: bool
) -> dict[str, Any]:
    """One series per feature: the ``test``'s statistic (or p-value) per run's window end."""
    lines: dict[str, tuple[list[int], list[float | None]]] = {}
    for run in history:
        for result in run.drift.tests if run.drift else ():
            if result.test != test:
                continue
            value = result.p_value if p_value else result.statistic
            if p_value and value is None:
                continue
            xs, ys = lines.setdefault(result.column, ([], []))
            xs.append(run.window_end)
            ys.append(value)
    series = [{"label": column, "x": xs, "y": ys} for column, (xs, ys) in sorted(lines.items())]
    label = f"{test} p-value" if p_value else f"{test} statistic"
    return {
        "kind": "line",
        "x_label": "window end",
        "x_time": True,
        "y_label": label,
        "series": series,
    }


def _histogram(distribution: Distribution) -> dict[str, Any]:
    """Rows of (bin, reference share, current share): a numeric column's bins in order (the
    sketch's quantile bins, so the reference is about flat and a shift shows as a tilt), a
    categorical column's most frequent categories first."""
    if distribution.kind == "numeric":
        edges = [float(e) for e in distribution.bins]
        labels = [f"{low:.4g} to {high:.4g}" for low, high in pairwise(edges)]
        rows = list(zip(labels, distribution.reference, distribution.current, strict=False))
        return {"column": distribution.column, "kind": "numeric", "rows": rows}
    rows = sorted(
        zip(
            map(str, distribution.bins), distribution.reference, distribution.current, strict=False
        ),
        key=lambda row: -max(row[1], row[2]),
    )
    return {"column": distribution.column, "kind": "categorical", "rows": rows[:TOP_CATEGORIES]}


def _performance_spec(history: Sequence[MonitorRun]) -> dict[str, Any]:
    lines: dict[str, tuple[list[int], list[float]]] = {}
    for run in history:
        for name, value in (run.performance.metrics if run.performance else {}).items():
            xs, ys = lines.setdefault(name, ([], []))
            xs.append(run.window_end)
            ys.append(value)
    series = [{"label": name, "x": xs, "y": ys} for name, (xs, ys) in sorted(lines.items())]
    return {
        "kind": "line",
        "x_label": "window end",
        "x_time": True,
        "y_label": "metric",
        "series": series,
    }


def _coverage_spec(history: Sequence[MonitorRun]) -> dict[str, Any]:
    xs = [run.window_end for run in history if run.performance]
    ys = [run.performance.coverage for run in history if run.performance]
    series = [{"label": "share of predictions labelled", "x": xs, "y": ys}] if xs else []
    return {
        "kind": "line",
        "x_label": "window end",
        "x_time": True,
        "y_label": "label coverage",
        "series": series,
    }
