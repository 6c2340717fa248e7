"""A deployment's live figures from its prediction log, aggregated in DuckDB: per variant the
latency percentiles, throughput and error rate over a window, the same per time bucket for the
charts, and the newest requests.

A request logs one row per input row (``row`` 0, 1, ...); every figure counts requests, so the
queries keep ``row = 0``. The log is read through :func:`predictions_view`, the view the
prediction service offers for SQL, over the files of the window only.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


# One in-memory DuckDB per process, a cursor (its own connection) per request: opening a
# database costs ~10 ms, a cursor ~0.1 ms. Each request's view has its own name, dropped after.
_DATABASE: list[duckdb.DuckDBPyConnection] = []
_OPENING = threading.Lock()
# A page's query shares the server's cores with the other requests.
_CONFIG: dict[str, str | bool | int | float | list[str]] = {"threads": 2}


def _database() -> duckdb.DuckDBPyConnection:
    import duckdb

    with _OPENING:
        if not _DATABASE:
            _DATABASE.append(duckdb.connect(config=_CONFIG))
        return _DATABASE[0]


@contextmanager
def _window(location: str, deployment: str, span: timedelta) -> Iterator[Callable[[str], Any]]:
    """``query(sql)`` over the log of ``deployment`` in the last ``span``: ``sql`` names the
    rows ``{log}``; the answer is its rows."""
    from ...serving.predictions import predictions_view

    name = f"log_{secrets.token_hex(8)}"
    with _database().cursor() as cursor:
        predictions_view(cursor, location, deployment, since=span, name=name)
        try:
            yield lambda sql: cursor.execute(sql.format(log=f'"{name}"')).fetchall()
        finally:
            cursor.execute(f'DROP VIEW IF EXISTS "{name}"')


def figures(location: str, deployment: str, window: str) -> Figures:
    """The figures of ``deployment`` over the last ``window`` (a key of :data:`WINDOWS`)."""
    span, _ = WINDOWS[window_of(window)]
    seconds = span.total_seconds()
    with _window(location, deployment, span) as query:
        rows = query(
            """
            SELECT variant, count(*) AS requests,
                   quantile_cont(latency_ms, [0.5, 0.95, 0.99]) AS quantiles,
                   avg(CASE WHEN status >= 400 THEN 1.0 ELSE 0.0 END) AS error_rate,
                   list(DISTINCT model_version ORDER BY model_version) AS versions
            FROM {log} WHERE "row" = 0
            GROUP BY variant ORDER BY variant
            """
        )
        recent = query(
            f"""
            SELECT request_id, epoch_ms("timestamp") AS timestamp_ms, variant, model,
                   model_version, status, latency_ms
            FROM {{log}} WHERE "row" = 0
            ORDER BY "timestamp" DESC, request_id DESC LIMIT {RECENT}
            """  # noqa: S608 - RECENT is this module's constant; {log} a name made here
        )
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
    with _window(location, deployment, span) as query:
        rows = query(
            f"""
            SELECT variant, (epoch_ms("timestamp") // {step}) * {step} AS bucket, count(*),
                   quantile_cont(latency_ms, [0.5, 0.95, 0.99])
            FROM {{log}} WHERE "row" = 0
            GROUP BY variant, bucket ORDER BY variant, bucket
            """  # noqa: S608 - step is an int computed here; {log} a name made here
        )
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
