"""Inline SVG charts for monitoring reports: paired bars (reference vs current) and line charts
over time with a threshold line.

The output is a string to embed in HTML: no ``xmlns`` URL, no script, no external font; every
label goes through :func:`escape`. Colours come from classes (see :data:`CSS`), so one stylesheet
themes every chart. Coordinates are rounded to one decimal, so equal input gives equal output.

Example:
    >>> svg = paired_bars("age", ["18", "30", "60"], [0.5, 0.5], [0.2, 0.8], edges=True)
    >>> svg.startswith("<svg") and svg.endswith("</svg>")
    True
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["CSS", "Series", "escape", "line_chart", "number", "paired_bars"]

CSS = (
    "svg.chart{display:block;margin:.25rem 0}svg.chart text{font:11px sans-serif;fill:#1f2328;"
    "paint-order:stroke;stroke:#fff;stroke-width:3px}"
    "svg.chart .title{font-weight:bold}svg.chart .axis{stroke:#8c959f}"
    ".ref{fill:#8c959f}.cur{fill:#0969da;fill-opacity:.6}"
    ".threshold{stroke:#bf8700;stroke-dasharray:4 3}.line{fill:none;stroke-width:1.5}"
    ".s0{stroke:#0969da}.s1{stroke:#1a7f37}.s2{stroke:#8250df}.s3{stroke:#bc4c00}"
    ".dot{fill:#0969da}.dot.flag{fill:#cf222e}.legend-ref{fill:#8c959f}.legend-cur{fill:#0969da}"
)

_WIDTH, _HEIGHT = 360, 150
_LEFT, _RIGHT, _TOP, _BOTTOM = 44, 30, 22, 28
_LABEL = 10  # characters of a category label shown under its bars (the tooltip has it all)


@dataclass(frozen=True)
class Series:
    """One line: ``values`` at the chart's x positions (None or NaN: a gap); ``flagged``
    points get a red dot (for example the runs that drifted)."""

    name: str
    values: Sequence[float | None]
    flagged: Sequence[bool] = ()


def escape(text: object) -> str:
    """``text`` safe inside HTML/SVG text and attribute values."""
    return html.escape(str(text), quote=True)


def number(value: float | None) -> str:
    """A figure in 4 significant digits; an em dash for None, NaN as 'nan'."""
    if value is None:
        return "—"
    if isinstance(value, int) or (value.is_integer() and abs(value) < 1e6):
        return str(int(value))
    return f"{value:.4g}"


def paired_bars(
    title: str,
    labels: Sequence[str],
    reference: Sequence[float],
    current: Sequence[float],
    *,
    edges: bool = False,
) -> str:
    """Reference and current proportions side by side, one slot per bin (bins of unequal width,
    such as quantile bins, get equal slots: the edge labels give their bounds).

    ``edges=True``: ``labels`` are the ``len(reference) + 1`` bin edges of a histogram, written at
    the slot boundaries (first, last and a few between); otherwise one label per slot.
    """
    if len(reference) != len(current) or len(labels) != len(reference) + (1 if edges else 0):
        raise ValueError(
            f"chart {title!r}: {len(labels)} labels for {len(reference)} reference and "
            f"{len(current)} current bars (edges={edges})"
        )
    inner_w, inner_h = _WIDTH - _LEFT - _RIGHT, _HEIGHT - _TOP - _BOTTOM
    slots = max(len(reference), 1)
    slot = inner_w / slots
    top = max([*reference, *current, 0.0]) or 1.0
    base = _TOP + inner_h
    parts = [_open(title), _y_axis(0.0, top, inner_h)]
    for i, (ref, cur) in enumerate(zip(reference, current, strict=True)):
        x = _LEFT + i * slot
        name = f"{labels[i]} to {labels[i + 1]}" if edges else labels[i]
        parts.append(
            f"<g><title>{escape(name)}: reference {number(ref)}, current {number(cur)}</title>"
        )
        for offset, value, css in ((0.1, ref, "ref"), (0.5, cur, "cur")):
            h = max(value, 0.0) / top * inner_h
            parts.append(
                f'<rect class="{css}" x="{x + offset * slot:.1f}" y="{base - h:.1f}" '
                f'width="{0.4 * slot:.1f}" height="{h:.1f}"></rect>'
            )
        parts.append("</g>")
    parts.append(_x_labels(labels, slot, base, edges=edges))
    parts.append(
        f'<rect class="legend-ref" x="{_WIDTH - 150}" y="6" width="8" height="8"></rect>'
        f'<text x="{_WIDTH - 139}" y="14">reference</text>'
        f'<rect class="legend-cur" x="{_WIDTH - 80}" y="6" width="8" height="8"></rect>'
        f'<text x="{_WIDTH - 69}" y="14">current</text></svg>'
    )
    return "".join(parts)


def line_chart(
    title: str,
    x: Sequence[float],
    series: Sequence[Series],
    *,
    x_labels: tuple[str, str] = ("", ""),
    threshold: float | None = None,
    zero: bool = True,
) -> str:
    """Lines over ``x`` (for example run times), a dashed ``threshold`` line if given.

    ``x_labels`` are written under the first and last positions. Gaps (None/NaN) break a line.
    ``zero=False`` fits the y axis to the values (a metric moving from 0.91 to 0.85 then shows).
    """
    inner_w, inner_h = _WIDTH - _LEFT - _RIGHT, _HEIGHT - _TOP - _BOTTOM
    finite = [v for s in series for v in s.values if v is not None and math.isfinite(v)]
    if threshold is not None:
        finite.append(threshold)
    floor = [0.0] if zero or not finite else []
    low, high = min([*finite, *floor]), max([*finite, *floor])
    if high == low:
        low, high = (low, low + 1.0) if zero else (low - 0.5, high + 0.5)
    x_low, x_high = (min(x), max(x)) if x else (0.0, 1.0)
    x_span = (x_high - x_low) or 1.0

    def px(value: float) -> float:
        # a single point sits in the middle rather than on the axis
        return _LEFT + (inner_w / 2 if x_high == x_low else (value - x_low) / x_span * inner_w)

    def py(value: float) -> float:
        return _TOP + (high - value) / (high - low) * inner_h

    parts = [_open(title), _y_axis(low, high, inner_h)]
    for n, line in enumerate(series):
        css = f"s{n % 4}"
        parts.append(f"<g><title>{escape(line.name)}</title>")
        for run in _segments(x, line.values):
            if len(run) == 1:  # a lone point between gaps: a line of one point would not show
                ((a, b),) = run
                parts.append(
                    f'<circle class="dot" cx="{px(a):.1f}" cy="{py(b):.1f}" r="2"></circle>'
                )
                continue
            points = " ".join(f"{px(a):.1f},{py(b):.1f}" for a, b in run)
            parts.append(f'<polyline class="line {css}" points="{points}"></polyline>')
        for i, flag in enumerate(line.flagged):
            value = line.values[i] if i < len(line.values) else None
            if flag and value is not None and math.isfinite(value):
                parts.append(
                    f'<circle class="dot flag" cx="{px(x[i]):.1f}" cy="{py(value):.1f}" r="2.5">'
                    "</circle>"
                )
        parts.append("</g>")
    if threshold is not None:
        y = py(threshold)
        parts.append(
            f'<line class="threshold" x1="{_LEFT}" y1="{y:.1f}" x2="{_WIDTH - _RIGHT}" '
            f'y2="{y:.1f}"><title>threshold {number(threshold)}</title></line>'
            f'<text x="{_WIDTH - _RIGHT}" y="{y - 3:.1f}" text-anchor="end">'
            f"threshold {number(threshold)}</text>"
        )
    base = _TOP + inner_h
    parts.append(
        f'<text x="{_LEFT}" y="{base + 14}">{escape(x_labels[0])}</text>'
        f'<text x="{_WIDTH - _RIGHT}" y="{base + 14}" text-anchor="end">'
        f"{escape(x_labels[1])}</text></svg>"
    )
    return "".join(parts)


def _open(title: str) -> str:
    return (
        f'<svg class="chart" width="{_WIDTH}" height="{_HEIGHT}" viewBox="0 0 {_WIDTH} {_HEIGHT}"'
        f' role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>'
        f'<text class="title" x="0" y="14">{escape(_cut(title, 34))}</text>'
    )


def _y_axis(low: float, high: float, inner_h: float) -> str:
    base = _TOP + inner_h
    return (
        f'<line class="axis" x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{base:.1f}"></line>'
        f'<line class="axis" x1="{_LEFT}" y1="{base:.1f}" x2="{_WIDTH - _RIGHT}" '
        f'y2="{base:.1f}"></line>'
        f'<text x="{_LEFT - 4}" y="{_TOP + 8}" text-anchor="end">{number(high)}</text>'
        f'<text x="{_LEFT - 4}" y="{base:.1f}" text-anchor="end">{number(low)}</text>'
    )


def _x_labels(labels: Sequence[str], slot: float, base: float, *, edges: bool) -> str:
    """At most about six labels, spread evenly, so they do not overlap."""
    count = len(labels)
    step = max(1, math.ceil(count / 6))
    picked = sorted({*range(0, count, step), count - 1}) if count else []
    out = []
    for i in picked:
        x = _LEFT + (i if edges else i + 0.5) * slot
        out.append(
            f'<text x="{x:.1f}" y="{base + 14:.1f}" text-anchor="middle">'
            f"{escape(_cut(labels[i], _LABEL))}</text>"
        )
    return "".join(out)


def _segments(
    x: Sequence[float], values: Sequence[float | None]
) -> list[list[tuple[float, float]]]:
    """The runs of consecutive finite points."""
    runs: list[list[tuple[float, float]]] = [[]]
    for a, b in zip(x, values, strict=False):
        if b is None or not math.isfinite(b):
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((a, b))
    return [run for run in runs if run]


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
