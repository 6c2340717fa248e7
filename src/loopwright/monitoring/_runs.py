"""Monitor runs in the store: one ``monitor_runs`` row per run and one ``monitor_results`` row
per test, written together, and read back into the same entities.

``summary_json`` holds the drift result as ``DriftResult.to_dict(distributions=True)`` (its keys at
the top level, so SQL and the Prometheus exporter read ``share_drifted`` directly), plus
``performance``, ``model_versions`` and ``alerts``. A run with nothing tested (``no_data``,
``failed``) has no drift keys.

A result whose statistic or threshold is NaN (nothing to compare), or whose column name is
longer than a result row holds (``limits.KEY``), has no ``monitor_results`` row, since SQLite
stores NaN as NULL and those columns are NOT NULL; the summary keeps it (NaN as null).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from ..store import limits
from ..store import schema as t
from .entities import (
    Distribution,
    DriftResult,
    MonitorRun,
    Performance,
    TestResult,
)

__all__ = ["insert_run", "run_from_row", "set_run_alerts", "summary_of"]

_r = t.monitor_runs.c


def summary_of(run: MonitorRun) -> dict[str, Any]:
    """The run's ``summary_json`` document (JSON-safe: non-finite numbers are null)."""
    summary: dict[str, Any] = {} if run.drift is None else run.drift.to_dict(distributions=True)
    summary["performance"] = None if run.performance is None else _performance(run.performance)
    summary["model_versions"] = list(run.model_versions)
    summary["alerts"] = list(run.alerts)
    return summary


def insert_run(conn: sa.Connection, monitor_id: str, run: MonitorRun) -> None:
    """Write ``run`` and its per-test results inside the caller's transaction."""
    conn.execute(
        t.monitor_runs.insert(),
        {
            "id": run.id,
            "monitor_id": monitor_id,
            "started_at": run.started_at,
            "finished_at": run.finished_at,
            "window_start": run.window_start,
            "window_end": run.window_end,
            "status": run.status,
            "rows": run.rows,
            "dataset_drift": None if run.drift is None else run.drift.dataset_drift,
            "summary_json": json.dumps(summary_of(run), separators=(",", ":")),
            "error": run.error,
        },
    )
    if run.drift is None:
        return
    results: dict[tuple[str, str], dict[str, Any]] = {}
    for result in run.drift.tests:
        if math.isnan(result.statistic) or math.isnan(result.threshold):
            continue
        if len(result.column) > limits.KEY:
            continue
        results[result.column, result.test] = {  # one row per column and test: the last
            "run_id": run.id,
            "monitor_id": monitor_id,
            "column_name": result.column,
            "test": result.test,
            "kind": result.kind,
            "statistic": float(result.statistic),
            "threshold": float(result.threshold),
            "p_value": _finite(result.p_value),
            "drifted": bool(result.drifted),
            "window_end": run.window_end,
        }
    if results:
        conn.execute(t.monitor_results.insert(), list(results.values()))


def set_run_alerts(conn: sa.Connection, run: MonitorRun) -> None:
    """Record in the stored summary which alerts were open after ``run`` (known only once the
    alert book has evaluated the stored run)."""
    conn.execute(
        t.monitor_runs.update()
        .where(_r.id == run.id)
        .values(summary_json=json.dumps(summary_of(run), separators=(",", ":")))
    )


def run_from_row(row: Any, monitor: str) -> MonitorRun:
    """The :class:`MonitorRun` a ``monitor_runs`` row stores."""
    summary = json.loads(row.summary_json)
    return MonitorRun(
        id=row.id,
        monitor=monitor,
        started_at=row.started_at,
        finished_at=row.finished_at,
        window_start=row.window_start,
        window_end=row.window_end,
        status=row.status,
        rows=row.rows,
        model_versions=tuple(summary.get("model_versions") or ()),
        drift=_drift(summary) if "tests" in summary else None,
        performance=_performance_of(summary.get("performance")),
        alerts=tuple(summary.get("alerts") or ()),
        error=row.error,
    )


def _drift(summary: Mapping[str, Any]) -> DriftResult:
    return DriftResult(
        tests=tuple(
            TestResult(
                column=item["column"],
                test=item["test"],
                statistic=_number(item.get("statistic")),
                threshold=_number(item.get("threshold")),
                drifted=bool(item["drifted"]),
                p_value=item.get("p_value"),
                kind=item.get("kind", "drift"),
                detail=item.get("detail") or {},
            )
            for item in summary["tests"]
        ),
        dataset_drift=bool(summary["dataset_drift"]),
        drifted_columns=tuple(summary.get("drifted_columns") or ()),
        share_drifted=_number(summary.get("share_drifted")),
        rule=summary.get("rule") or "",
        correction=summary.get("correction"),
        reference_rows=int(summary.get("reference_rows") or 0),
        current_rows=int(summary.get("current_rows") or 0),
        distributions=tuple(
            Distribution(
                column=item["column"],
                kind=item["kind"],
                bins=tuple(item["bins"]),
                reference=tuple(_number(v) for v in item["reference"]),
                current=tuple(_number(v) for v in item["current"]),
            )
            for item in summary.get("distributions") or ()
        ),
    )


def _performance(performance: Performance) -> dict[str, Any]:
    return {
        "task": performance.task,
        "metrics": _numbers(performance.metrics),
        "rows": performance.rows,
        "predictions": performance.predictions,
        "coverage": _finite(performance.coverage),
        "by_version": {k: _numbers(v) for k, v in performance.by_version.items()},
        "by_slice": {
            column: {value: _numbers(m) for value, m in values.items()}
            for column, values in performance.by_slice.items()
        },
    }


def _performance_of(data: Mapping[str, Any] | None) -> Performance | None:
    if data is None:
        return None
    return Performance(
        task=data["task"],
        metrics=_numbers_of(data["metrics"]),
        rows=int(data["rows"]),
        predictions=int(data["predictions"]),
        coverage=_number(data.get("coverage")),
        by_version={k: _numbers_of(v) for k, v in (data.get("by_version") or {}).items()},
        by_slice={
            column: {value: _numbers_of(m) for value, m in values.items()}
            for column, values in (data.get("by_slice") or {}).items()
        },
    )


def _numbers(values: Mapping[str, float]) -> dict[str, float | None]:
    return {key: _finite(value) for key, value in values.items()}


def _numbers_of(values: Mapping[str, float | None]) -> dict[str, float]:
    return {key: _number(value) for key, value in values.items()}


def _finite(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def _number(value: float | None) -> float:
    """A stored figure back as a float (null, which was NaN or infinite, as NaN)."""
    return math.nan if value is None else float(value)
