"""Aggregates over traces (MLflow's ``query_trace_metrics``, traces view): how many, how long,
how many tokens, grouped by status and/or name.

Example:
    >>> rows = [{"trace_status": "OK", "latency": 10}, {"trace_status": "OK", "latency": 30}]
    >>> wanted = [("AVG", None), ("PERCENTILE", 90.0)]
    >>> (point,) = aggregate(rows, "latency", wanted, ["trace_status"])
    >>> point["dimensions"], point["values"]
    ({'trace_status': 'OK'}, {'AVG': 20.0, 'P90.0': 28.0})
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import InvalidInput

__all__ = ["DIMENSIONS", "METRICS", "aggregate"]

# metric name -> the row value it aggregates (trace_count counts rows)
METRICS = ("trace_count", "latency", "input_tokens", "output_tokens", "total_tokens")
DIMENSIONS = ("trace_status", "trace_name")
_AGGREGATIONS = ("COUNT", "SUM", "AVG", "PERCENTILE", "MIN", "MAX")


def aggregate(
    rows: Sequence[Mapping[str, Any]],
    metric: str,
    aggregations: Sequence[tuple[str, float | None]],
    dimensions: Sequence[str],
) -> list[dict[str, Any]]:
    """One data point per group of ``dimensions`` values (sorted), each aggregation a value."""
    if metric not in METRICS:
        raise InvalidInput(f"trace metric {metric!r} is not one of {', '.join(METRICS)}")
    for dimension in dimensions:
        if dimension not in DIMENSIONS:
            raise InvalidInput(f"dimension {dimension!r} is not one of {', '.join(DIMENSIONS)}")
    groups: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
    for row in rows:
        key = tuple(str(row.get(d) or "") for d in dimensions)
        groups.setdefault(key, []).append(row)
    points = []
    for key in sorted(groups):
        members = groups[key]
        values = [float(r[metric]) for r in members if r.get(metric) is not None]
        found = {}
        for kind, percentile in aggregations:
            name = kind if kind != "PERCENTILE" else f"P{float(percentile or 0)}"
            found[name] = _one(
                kind, percentile, len(members) if metric == "trace_count" else None, values
            )
        points.append(
            {
                "metric_name": metric,
                "dimensions": dict(zip(dimensions, key, strict=True)),
                "values": found,
            }
        )
    return points


def _one(kind: str, percentile: float | None, count: int | None, values: list[float]) -> float:
    if kind not in _AGGREGATIONS:
        raise InvalidInput(f"aggregation {kind!r} is not one of {', '.join(_AGGREGATIONS)}")
    if kind == "COUNT":
        return float(count if count is not None else len(values))
    if not values:
        return math.nan
    if kind == "SUM":
        return float(sum(values))
    if kind == "AVG":
        return sum(values) / len(values)
    if kind == "MIN":
        return min(values)
    if kind == "MAX":
        return max(values)
    if percentile is None or not 0 <= percentile <= 100:
        raise InvalidInput("a PERCENTILE aggregation needs percentile_value in 0..100")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * percentile / 100  # linear between neighbours
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
