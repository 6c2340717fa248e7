"""A metric's history as a chart spec (see ``lw.js``), downsampled in SQL.

A long history (a million points) never reaches Python whole: the x axis is cut into equal
ranges and one ``GROUP BY`` keeps each range's lowest and highest value, so spikes survive; the
first and last points are read exactly, so the curve's ends are true. The step axis is cut by
step, served by the primary key ``(run_id, key, step, ...)`` of ``metrics``; the time axes are
cut by timestamp, since steps need not follow time (``log_metric`` defaults to step 0: a long
history may sit on one step). Each range gives two points; they are ordered to continue the line
(a falling curve shows max then min), a choice that never invents a value.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa

from ...errors import InvalidInput
from ...store import schema as t

__all__ = [
    "AXES",
    "DEFAULT_POINTS",
    "MIN_POINTS",
    "Series",
    "parse_axis",
    "parse_points",
    "read_series",
    "spec",
]

Axis = Literal["step", "time", "relative"]
AXES: tuple[Axis, ...] = ("step", "time", "relative")
DEFAULT_POINTS = 1000
MIN_POINTS, MAX_POINTS = 10, 2_000  # a chart's cost is bounded by its points
Point = tuple[int, int, float | None]  # (step, timestamp, value)
_X_LABELS = {"step": "step", "time": "time (UTC)", "relative": "seconds since the run started"}


@dataclass(frozen=True)
class Series:
    """Points of one run's metric, x as asked (step, epoch ms or seconds since the start)."""

    run_id: str
    key: str
    x: list[float]
    y: list[float | None]
    total: int  # points stored

    @property
    def downsampled(self) -> bool:
        return len(self.x) < self.total


def parse_axis(value: str | None) -> Axis:
    if value is None or value == "":
        return "step"
    for axis in AXES:
        if value == axis:
            return axis
    raise InvalidInput(f"x must be one of {', '.join(AXES)}, not {value!r}")


def parse_points(value: str | None) -> int:
    if value is None or value == "":
        return DEFAULT_POINTS
    try:
        points = int(value)
    except ValueError:
        points = -1
    if not MIN_POINTS <= points <= MAX_POINTS:
        raise InvalidInput(
            f"points must be a whole number from {MIN_POINTS} to {MAX_POINTS}, not {value!r}"
        )
    return points


def _finite(value: float, is_nan: bool) -> float | None:
    # JSON has no NaN or infinity: a gap in the line says "no plottable value here".
    return None if is_nan or not math.isfinite(value) else value


def read_series(
    conn: sa.Connection, run_id: str, key: str, start_time: int, axis: Axis, points: int
) -> Series:
    """``run_id``'s metric ``key`` with at most ``points`` points (ends included)."""
    m = t.metrics.c
    mine = (m.run_id == run_id, m.key == key)
    # Whether it fits, without counting a long history.
    head = sa.select(m.step).where(*mine).limit(points + 1).subquery()
    rows: list[tuple[int, int, float | None]]  # (step, timestamp, value)
    if conn.execute(sa.select(sa.func.count()).select_from(head)).scalar_one() <= points:
        found = conn.execute(
            sa.select(m.step, m.timestamp, m.value, m.is_nan)
            .where(*mine)
            .order_by(m.step, m.timestamp)
        ).all()
        rows = [(r.step, r.timestamp, _finite(r.value, r.is_nan)) for r in found]
        total = len(rows)
    else:
        stored = conn.execute(sa.select(sa.func.count()).where(*mine)).scalar_one()
        key_of = (str(conn.engine.url), run_id, key, axis != "step", points, stored)
        cached = _DOWNSAMPLED.get(key_of)
        if cached is None:
            cached = _downsampled(conn, mine, points, axis != "step")
            _DOWNSAMPLED.put(key_of, cached)
        rows, total = cached
    x = [_x(step, ts, start_time, axis) for step, ts, _ in rows]
    if axis != "step":  # uPlot wants x ascending; times need not follow steps
        order = sorted(range(len(rows)), key=x.__getitem__)
        x = [x[i] for i in order]
        rows = [rows[i] for i in order]
    return Series(run_id, key, x, [value for _, _, value in rows], total)


class _Recent:
    """The last few downsampled histories, keyed by what they were read from and how many
    points the metric held: points are only ever added (a run's history is append-only; a
    duplicate point is not stored twice), so an unchanged count is an unchanged history. A
    1M-point history's count takes ~20 ms on SQLite against ~160 ms for its ranges."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[tuple[Any, ...], tuple[list[Point], int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> tuple[list[Point], int] | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: tuple[Any, ...], value: tuple[list[Point], int]) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


_DOWNSAMPLED = _Recent(64)  # ~2,000 points each: well under a megabyte in all


def _x(step: int, timestamp: int, start_time: int, axis: Axis) -> float:
    if axis == "step":
        return step
    if axis == "time":
        return timestamp
    return (timestamp - start_time) / 1000


def _edge(conn: sa.Connection, mine: tuple[Any, ...], last: bool, by_time: bool) -> Point:
    """The first or last point along the axis: by step (then time), or by time (then step)."""
    m = t.metrics.c
    keys = (m.timestamp, m.step) if by_time else (m.step, m.timestamp)
    order = tuple(k.desc() for k in keys) if last else keys
    row = conn.execute(
        sa.select(m.step, m.timestamp, m.value, m.is_nan).where(*mine).order_by(*order).limit(1)
    ).one()
    return row.step, row.timestamp, _finite(row.value, row.is_nan)


@dataclass(frozen=True)
class _Range:
    first: int  # along the axis: a step, or a timestamp on the time axes
    last: int
    low: float | None
    high: float | None
    points: int


def _ranges(
    conn: sa.Connection, mine: tuple[Any, ...], lo: int, width: int, count: int, by_time: bool
) -> list[_Range]:
    """Per range of the axis (steps, or timestamps when ``by_time``): its first and last step
    or timestamp, its lowest and highest value (NaN left out), and its points."""
    m = t.metrics.c
    real = sa.case((m.is_nan == sa.false(), m.value))
    along = m.timestamp if by_time else m.step
    columns = (
        sa.func.min(along),
        sa.func.max(along),
        sa.func.min(real),
        sa.func.max(real),
        sa.func.count(),
    )
    if conn.dialect.name == "sqlite" and not by_time:
        # In process, one index range scan per range beats a GROUP BY's temporary b-tree
        # (measured: 0.16 s against 0.36 s for 1M points). No index orders a run's points by
        # time, so the time axes take the one pass of the GROUP BY below.
        found = []
        for n in range(count):
            low = lo + n * width
            query = sa.select(*columns).where(*mine, m.step >= low, m.step < low + width)
            row = conn.execute(query).one()
            if row[4]:
                found.append(_Range(*row))
        return found
    bucket = (along - lo) // width  # values >= lo: floor and truncation agree
    query = sa.select(*columns).where(*mine).group_by(bucket).order_by(bucket)
    return [_Range(*row) for row in conn.execute(query)]


def _downsampled(
    conn: sa.Connection, mine: tuple[Any, ...], points: int, by_time: bool
) -> tuple[list[Point], int]:
    """At most ``points`` points standing for the history, and how many it holds."""
    first = _edge(conn, mine, last=False, by_time=by_time)
    last = _edge(conn, mine, last=True, by_time=by_time)
    # What the axis shows of a point: its timestamp, or its step.
    lo, hi = (first[1], last[1]) if by_time else (first[0], last[0])
    count = max(1, (points - 2) // 2)
    width = max(1, -(-(hi - lo + 1) // count))  # ceil, in integers: no overflow
    ranges = _ranges(conn, mine, lo, width, count, by_time)
    rows = [first]
    previous = first[2]
    for r in ranges:
        low = None if r.low is None else _finite(r.low, False)
        high = None if r.high is None else _finite(r.high, False)
        # Only the field the axis shows is read; the other is 0.
        start, end = ((0, r.first), (0, r.last)) if by_time else ((r.first, 0), (r.last, 0))
        if low == high or start == end:
            rows.append((*end, high))
            previous = high
            continue
        # A falling line enters a range near its max: show max first, then min.
        falling = (
            previous is not None
            and low is not None
            and high is not None
            and abs(previous - high) < abs(previous - low)
        )
        pair = ((*start, high), (*end, low)) if falling else ((*start, low), (*end, high))
        rows.extend(pair)
        previous = pair[1][2]
    rows.append(last)
    total = sum(r.points for r in ranges)
    # A range's point that repeats an exact end adds nothing.
    ends = (first, last)
    return [r for n, r in enumerate(rows) if n in (0, len(rows) - 1) or r not in ends], total


def spec(series: list[Series], key: str, axis: Axis, labels: dict[str, str]) -> dict[str, Any]:
    """The chart spec ``lw.js`` draws: one series per run, labelled by ``labels[run_id]``."""
    notes = [
        f"{labels[s.run_id]}: {len(s.x):,} of {s.total:,} points" for s in series if s.downsampled
    ]
    out: dict[str, Any] = {
        "kind": "line",
        "x_label": _X_LABELS[axis],
        "x_time": axis == "time",
        "y_label": key,
        "series": [{"label": labels[s.run_id], "x": s.x, "y": s.y} for s in series],
    }
    if notes:
        out["note"] = (
            "downsampled (each range of the x axis keeps its lowest and highest value): "
            + "; ".join(notes)
        )
    return out
