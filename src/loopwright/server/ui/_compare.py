"""The compare page's figures: which runs (checked, at most :data:`MAX_RUNS`), the params diff,
and a parallel-coordinates chart of params against one metric, laid out here and drawn as
server-rendered SVG (no script needed).

Numeric params (every run's value parses as a number) get a numeric axis; the others are
ordered categories. A run lacking a value has no point on that axis (its line breaks there).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ...errors import InvalidInput, NotFound
from ...tracking.entities import Run

__all__ = ["MAX_RUNS", "Axis", "Parallel", "diff_rows", "parallel", "run_ids_of", "runs_in_order"]

MAX_RUNS = 20
PALETTE = (
    "#1f4fa3",
    "#e0702b",
    "#2a9d5b",
    "#c0392b",
    "#8e44ad",
    "#16a0b4",
    "#b8860b",
    "#d6338a",
    "#5d6d7e",
    "#6b8e23",
)  # fmt: skip  (lw.js's, in order)
WIDTH, HEIGHT, TOP, BOTTOM, SIDE = 900, 320, 36, 40, 130


def run_ids_of(values: Iterable[str]) -> list[str]:
    """Run ids from ``?runs=a,b`` and/or ``?runs=a&runs=b`` (the table's checkboxes), in order,
    each once; 1 to :data:`MAX_RUNS`."""
    ids = list(dict.fromkeys(p.strip() for v in values for p in v.split(",") if p.strip()))
    if not ids:
        raise InvalidInput("runs is empty: name runs to compare, as ?runs=ID,ID")
    if len(ids) > MAX_RUNS:
        raise InvalidInput(
            f"{len(ids)} runs were given; the compare page takes at most {MAX_RUNS}: "
            "select fewer runs"
        )
    return ids


def runs_in_order(found: Sequence[Run], ids: Sequence[str]) -> list[Run]:
    """``found`` (from ``get_runs``) checked to hold every id; NotFound names the first missing."""
    have = {run.id for run in found}
    missing = [run_id for run_id in ids if run_id not in have]
    if missing:
        raise NotFound(f"run {missing[0]!r} does not exist; check the ids in the compare link")
    return list(found)


def diff_rows(runs: Sequence[Run]) -> list[tuple[str, list[str | None], bool]]:
    """(param key, each run's value or None, whether they differ), keys sorted."""
    keys = sorted({k for run in runs for k in run.params})
    rows = []
    for key in keys:
        values = [run.params.get(key) for run in runs]
        rows.append((key, values, len(set(values)) > 1))
    return rows


@dataclass(frozen=True)
class Axis:
    label: str
    x: float
    ticks: list[tuple[float, str]]  # (y, text)


@dataclass(frozen=True)
class Line:
    run_id: str
    label: str
    color: str
    points: str  # SVG path: segments separated by "M" moves (a gap where a value is missing)
    dots: list[tuple[float, float]]


@dataclass(frozen=True)
class Parallel:
    axes: list[Axis]
    lines: list[Line]
    width: int = WIDTH
    height: int = HEIGHT


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _scale(low: float, high: float) -> tuple[float, float]:
    return (low - 0.5, high + 0.5) if low == high else (low, high)


def _y(value: float, low: float, high: float) -> float:
    return TOP + (HEIGHT - TOP - BOTTOM) * (1 - (value - low) / (high - low))


def _label(value: float) -> str:
    return f"{value:.4g}"


def parallel(runs: Sequence[Run], labels: dict[str, str], metric: str | None) -> Parallel | None:
    """The chart: one axis per param whose values differ (all params when none differ), then
    ``metric``; None without at least one axis."""
    rows = diff_rows(runs)
    keys = [key for key, _, differs in rows if differs] or [key for key, _, _ in rows]
    columns: list[tuple[str, list[str | None] | list[float | None]]] = [
        (f"params.{key}", [run.params.get(key) for run in runs]) for key in keys[:12]
    ]
    if metric:
        values = [run.metrics.get(metric) for run in runs]
        columns.append(
            (f"metrics.{metric}", [None if m is None else _number(str(m.value)) for m in values])
        )
    if not columns:
        return None
    step = (WIDTH - 2 * SIDE) / max(1, len(columns) - 1)
    axes: list[Axis] = []
    positions: list[list[float | None]] = []
    for n, (label, raw) in enumerate(columns):
        x = SIDE + n * step if len(columns) > 1 else WIDTH / 2
        present = [v for v in raw if v is not None]
        numbers = [n for n in (_number(str(v)) for v in present) if n is not None]
        if present and len(numbers) == len(present):
            low, high = _scale(min(numbers), max(numbers))
            ys = [None if v is None else _y(float(str(v)), low, high) for v in raw]
            ticks = [(_y(v, low, high), _label(v)) for v in (low, (low + high) / 2, high)]
        else:
            categories = sorted({str(v) for v in present})
            spots = {c: i for i, c in enumerate(categories)}
            low, high = _scale(0, max(0, len(categories) - 1))
            ys = [None if v is None else _y(spots[str(v)], low, high) for v in raw]
            ticks = [(_y(i, low, high), c[:18]) for c, i in spots.items()]
        axes.append(Axis(label, x, ticks))
        positions.append(ys)
    lines = []
    for i, run in enumerate(runs):
        path, dots, pen_down = [], [], False
        for axis, ys in zip(axes, positions, strict=True):
            y = ys[i]
            if y is None:
                pen_down = False
                continue
            path.append(f"{'L' if pen_down else 'M'}{axis.x:.1f},{y:.1f}")
            dots.append((round(axis.x, 1), round(y, 1)))
            pen_down = True
        lines.append(Line(run.id, labels[run.id], PALETTE[i % len(PALETTE)], " ".join(path), dots))
    return Parallel(axes, lines)
