"""Monitoring figures as Prometheus gauges, read from the stored runs.

Per monitor: the drift figures of its latest ``ok`` run (per column and test, the dataset
verdict, the share drifted, performance metrics), the rows and time of its latest run of any
status (and whether that run was ``ok``), and how many of its alerts are open. Per feature
view and online store: ``loopwright_feature_freshness_seconds``, the age of the newest event
loaded (``features/freshness.py``). Everything is read from the tables with SQLAlchemy Core:
the exposition needs no monitoring service (nor an online store).

Rendered with ``prometheus_client`` when it is installed (the ``serve`` extra), otherwise in the
same text format written here.

Example:
    >>> from loopwright.config import resolve_settings
    >>> from loopwright.store.home import open_store
    >>> store = open_store(resolve_settings(home="lw-doc-prometheus"))
    >>> b"loopwright_alerts_open" in render(store)
    True
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..store import schema as t

if TYPE_CHECKING:
    from ..store.home import Store

__all__ = ["CONTENT_TYPE", "render"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_m, _r, _res, _a = t.monitors.c, t.monitor_runs.c, t.monitor_results.c, t.alerts.c
_MONITOR = ("monitor", "deployment")


@dataclass
class _Family:
    name: str
    help: str
    labels: tuple[str, ...]
    samples: list[tuple[tuple[str, ...], float]] = field(default_factory=list)
    kind: str = "gauge"  # or "counter" (a ``_total`` name)


def render(
    store: Store,
    *,
    use_client: bool | None = None,
    counters: Sequence[tuple[str, str, float]] = (),
) -> bytes:
    """The gauges in Prometheus text exposition format (``CONTENT_TYPE``).

    ``use_client``: True/False forces or avoids ``prometheus_client`` (None: use it when
    installed); both give the same samples. ``counters``: ``(name, help, value)`` of
    process counters rendered too (the server passes the gateway's losses, whose counts live
    in its memory, not in the store); each name ends in ``_total``.
    """
    families = _families(store)
    families += [
        _Family(name, text, (), [((), value)], "counter") for name, text, value in counters
    ]
    if use_client is None:
        try:
            import prometheus_client  # noqa: F401
        except ImportError:
            use_client = False
        else:
            use_client = True
    return _with_client(families) if use_client else _text(families)


def _families(store: Store) -> list[_Family]:
    statistic = _Family(
        "loopwright_monitor_drift_statistic",
        "A test's statistic on a column in the monitor's latest ok run.",
        (*_MONITOR, "column", "test"),
    )
    drifted = _Family(
        "loopwright_monitor_drifted",
        "1 if the test flagged the column in the monitor's latest ok run, else 0.",
        (*_MONITOR, "column", "test"),
    )
    dataset = _Family(
        "loopwright_monitor_dataset_drift",
        "1 if the monitor's latest ok run found dataset drift, else 0.",
        _MONITOR,
    )
    share = _Family(
        "loopwright_monitor_drift_share",
        "Share of the tested columns that drifted in the monitor's latest ok run.",
        _MONITOR,
    )
    performance = _Family(
        "loopwright_monitor_performance",
        "A performance metric on the labelled rows of the monitor's latest ok run.",
        (*_MONITOR, "metric"),
    )
    rows = _Family(
        "loopwright_monitor_rows",
        "Rows logged in the window of the monitor's latest run.",
        _MONITOR,
    )
    last_run = _Family(
        "loopwright_monitor_last_run_timestamp_seconds",
        "When the monitor's latest run finished (Unix seconds).",
        _MONITOR,
    )
    last_ok = _Family(
        "loopwright_monitor_last_run_ok",
        "1 if the monitor's latest run ended ok, 0 if it found no data or failed.",
        _MONITOR,
    )
    alerts = _Family("loopwright_alerts_open", "Alerts of the monitor that are open now.", _MONITOR)
    with store.db.read() as conn:
        monitors = conn.execute(
            sa.select(
                _m.id,
                _m.name,
                _m.deployment,
                _latest_run_id(ok_only=False).label("latest"),
                _latest_run_id(ok_only=True).label("latest_ok"),
            ).order_by(_m.name)
        ).all()
        runs = _runs(conn, {i for m in monitors for i in (m.latest, m.latest_ok) if i is not None})
        latest = {m.id: runs[m.latest] for m in monitors if m.latest in runs}
        latest_ok = {m.id: runs[m.latest_ok] for m in monitors if m.latest_ok in runs}
        results = _results(conn, [row.id for row in latest_ok.values()])
        open_alerts: dict[str, int] = {
            row.monitor_id: row.n
            for row in conn.execute(
                sa.select(_a.monitor_id, sa.func.count().label("n"))
                .where(_a.status == "open")
                .group_by(_a.monitor_id)
            )
        }
    for monitor in monitors:
        who = (monitor.name, monitor.deployment)
        alerts.samples.append((who, float(open_alerts.get(monitor.id, 0))))
        run = latest.get(monitor.id)
        if run is not None:
            rows.samples.append((who, float(run.rows)))
            last_run.samples.append((who, run.finished_at / 1000))
            last_ok.samples.append((who, 1.0 if run.status == "ok" else 0.0))
        ok = latest_ok.get(monitor.id)
        if ok is None:
            continue
        for result in results.get(ok.id, ()):
            labels = (*who, result.column_name, result.test)
            statistic.samples.append((labels, float(result.statistic)))
            drifted.samples.append((labels, 1.0 if result.drifted else 0.0))
        summary = _summary(ok.summary_json)
        # B's summary: the drift result's dict under "drift" (or at the top), "performance".
        nested = summary.get("drift")
        drift: dict[str, Any] = nested if isinstance(nested, dict) else summary
        if ok.dataset_drift is not None:
            dataset.samples.append((who, 1.0 if ok.dataset_drift else 0.0))
        share_value = _number(drift.get("share_drifted"))
        if share_value is not None:
            share.samples.append((who, share_value))
        for metric, value in _metrics(summary.get("performance")):
            performance.samples.append(((*who, metric), value))
    return [
        statistic,
        drifted,
        dataset,
        share,
        performance,
        rows,
        last_run,
        last_ok,
        alerts,
        _feature_freshness(store),
    ]


def _feature_freshness(store: Store) -> _Family:
    """Each online view's age per online store, from what its loads recorded (no online store
    is opened to scrape)."""
    from .._ids import now_ms
    from ..features.freshness import GAUGE, gauge_samples, recorded

    family = _Family(
        GAUGE,
        "Age of the newest event time loaded into the online store for a feature view.",
        ("view", "store"),
    )
    family.samples.extend(gauge_samples(recorded(store.db, now_ms=now_ms())))
    return family


def _latest_run_id(*, ok_only: bool) -> sa.ScalarSelect[Any]:
    """The id of the monitor's newest run (of status ok when ``ok_only``), per monitor row.

    One index lookup per monitor ((monitor_id, window_end)), whatever the number of runs: a
    query over every run for its monitor's newest took PostgreSQL 20-30 s on 50,000 runs before
    the table was analyzed.
    """
    condition = [_r.monitor_id == _m.id]
    if ok_only:
        condition.append(_r.status == "ok")
    return (
        sa.select(_r.id)
        .where(*condition)
        .order_by(_r.window_end.desc(), _r.started_at.desc(), _r.id.desc())
        .limit(1)
        .correlate(t.monitors)
        .scalar_subquery()
    )


def _runs(conn: sa.Connection, run_ids: set[str]) -> dict[str, Any]:
    query = sa.select(
        _r.id, _r.status, _r.rows, _r.finished_at, _r.dataset_drift, _r.summary_json
    ).where(_r.id.in_(sorted(run_ids)))
    return {row.id: row for row in conn.execute(query)} if run_ids else {}


def _results(conn: sa.Connection, run_ids: Sequence[str]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for start in range(0, len(run_ids), 500):  # bounded IN lists
        chunk = run_ids[start : start + 500]
        query = (
            sa.select(_res.run_id, _res.column_name, _res.test, _res.statistic, _res.drifted)
            .where(_res.run_id.in_(chunk))
            .order_by(_res.run_id, _res.column_name, _res.test)
        )
        for row in conn.execute(query):
            out.setdefault(row.run_id, []).append(row)
    return out


def _summary(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _metrics(performance: object) -> Iterator[tuple[str, float]]:
    """``(metric, value)`` of a stored performance summary: its ``metrics`` and ``coverage``."""
    if not isinstance(performance, dict):
        return
    metrics = performance.get("metrics")
    if isinstance(metrics, dict):
        for name, value in sorted(metrics.items()):
            number = _number(value)
            if number is not None:
                yield str(name), number
    coverage = _number(performance.get("coverage"))
    if coverage is not None:
        yield "coverage", coverage


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _with_client(families: list[_Family]) -> bytes:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
    from prometheus_client.registry import Collector

    class _Snapshot(Collector):
        def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
            for family in families:
                kind = CounterMetricFamily if family.kind == "counter" else GaugeMetricFamily
                gauge = kind(family.name, family.help, labels=family.labels)
                for labels, value in family.samples:
                    gauge.add_metric(list(labels), value)
                yield gauge

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot())
    return generate_latest(registry)


def _text(families: list[_Family]) -> bytes:
    lines: list[str] = []
    for family in families:
        lines.append(f"# HELP {family.name} {_escape_help(family.help)}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for labels, value in family.samples:
            pairs = ",".join(
                f'{name}="{_escape_label(text)}"'
                for name, text in zip(family.labels, labels, strict=True)
            )
            selector = f"{{{pairs}}}" if pairs else ""
            lines.append(f"{family.name}{selector} {_value(value)}")
    return ("\n".join(lines) + "\n").encode()


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))
