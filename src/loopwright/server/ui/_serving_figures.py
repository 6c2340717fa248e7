"""A deployment's live figures from its prediction log, aggregated in DuckDB: per variant the
latency percentiles, throughput and error rate over a window, the same per time bucket for the
charts, and the newest requests.

A request logs one row per input row (``row`` 0, 1, ...); every figure counts requests, so the
queries keep ``row = 0``. The log is read through :func:`predictions_view`, the view the
prediction service offers for SQL, over the files of the window only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ...errors import InvalidInput

if TYPE_CHECKING:
    import duckdb

__all__ = ["WINDOWS", "Figures", "VariantFigures", "figures", "series", "window_of"]

# The windows a page offers: its span and the bucket its charts use (60 to 100 buckets).
WINDOWS: dict[str, tuple[timedelta, timedelta]] = {
    "1h": (timedelta(hours=1), timedelta(minutes=1)),
    "6h": (timedelta(hours=6), timedelta(minutes=5)),
    "24h": (timedelta(hours=24), timedelta(minutes=15)),
    "7d": (timedelta(days=7), timedelta(hours=2)),
}
RECENT = 50


def window_of(text: str) -> str:
    """``text`` if it names a window, else ``InvalidInput`` listing the windows."""
    if text not in WINDOWS:
        choices = ", ".join(WINDOWS)
        raise InvalidInput(f"window {text[:40]!r} is not one of {choices}; pick one of those")
    return text


@dataclass(frozen=True)
class VariantFigures:
    variant: str
    requests: int
    throughput: float  # requests per second over the window
    p50: float | None
    p95: float | None
    p99: float | None
    error_rate: float
    versions: tuple[int, ...]  # the model versions that answered


@dataclass(frozen=True)
class Figures:
    window: str
    variants: tuple[VariantFigures, ...]
    recent: tuple[dict[str, Any], ...]  # newest first: request_id, timestamp_ms, variant, ...


def _connect(location: str, deployment: str, span: timedelta) -> duckdb.DuckDBPyConnection:
    import duckdb

    from ...serving.predictions import predictions_view

    connection = duckdb.connect()
    predictions_view(connection, location, deployment, since=span)
    return connection


def figures(location: str, deployment: str, window: str) -> Figures:
    """The figures of ``deployment`` over the last ``window`` (a key of :data:`WINDOWS`)."""
    span, _ = WINDOWS[window_of(window)]
    seconds = span.total_seconds()
    with _connect(location, deployment, span) as db:
        rows = db.execute(
            """
            SELECT variant, count(*) AS requests,
                   quantile_cont(latency_ms, [0.5, 0.95, 0.99]) AS quantiles,
                   avg(CASE WHEN status >= 400 THEN 1.0 ELSE 0.0 END) AS error_rate,
                   list(DISTINCT model_version ORDER BY model_version) AS versions
            FROM predictions WHERE "row" = 0
            GROUP BY variant ORDER BY variant
            """
        ).fetchall()
        recent = db.execute(
            f"""
            SELECT request_id, epoch_ms("timestamp") AS timestamp_ms, variant, model,
                   model_version, status, latency_ms
            FROM predictions WHERE "row" = 0
            ORDER BY "timestamp" DESC, request_id DESC LIMIT {RECENT}
            """  # noqa: S608 - RECENT is this module's constant
        ).fetchall()
    variants = tuple(
        VariantFigures(
            variant=name,
            requests=count,
            throughput=count / seconds,
            p50=_float(quantiles[0]) if quantiles else None,
            p95=_float(quantiles[1]) if quantiles else None,
            p99=_float(quantiles[2]) if quantiles else None,
            error_rate=float(errors or 0.0),
            versions=tuple(int(v) for v in versions if v is not None),
        )
        for name, count, quantiles, errors, versions in rows
    )
    keys = ("request_id", "timestamp_ms", "variant", "model", "model_version", "status", "latency")
    return Figures(window, variants, tuple(dict(zip(keys, row, strict=True)) for row in recent))


def series(location: str, deployment: str, window: str, what: str) -> dict[str, Any]:
    """A chart spec (see ``lw.js``): ``what`` is ``latency`` (P50/P95/P99 per variant, ms) or
    ``throughput`` (requests/s per variant), per time bucket."""
    if what not in ("latency", "throughput"):
        raise InvalidInput(f"series {what[:40]!r} is not one of latency, throughput")
    span, bucket = WINDOWS[window_of(window)]
    step = int(bucket.total_seconds() * 1000)
    with _connect(location, deployment, span) as db:
        rows = db.execute(
            f"""
            SELECT variant, (epoch_ms("timestamp") // {step}) * {step} AS bucket, count(*),
                   quantile_cont(latency_ms, [0.5, 0.95, 0.99])
            FROM predictions WHERE "row" = 0
            GROUP BY variant, bucket ORDER BY variant, bucket
            """  # noqa: S608 - step is an int this function computed
        ).fetchall()
    by_variant: dict[str, list[tuple[int, int, list[Any]]]] = {}
    for variant, start, count, quantiles in rows:
        by_variant.setdefault(variant, []).append((int(start), int(count), quantiles))
    lines: list[dict[str, Any]] = []
    for variant, points in by_variant.items():
        xs = [p[0] for p in points]
        if what == "throughput":
            seconds = step / 1000
            lines.append({"label": variant, "x": xs, "y": [p[1] / seconds for p in points]})
            continue
        for index, name in enumerate(("P50", "P95", "P99")):
            ys = [_float(p[2][index]) for p in points]
            lines.append({"label": f"{variant} {name}", "x": xs, "y": ys})
    label = "latency (ms)" if what == "latency" else "requests/s"
    return {"kind": "line", "x_label": "time", "x_time": True, "y_label": label, "series": lines}


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
