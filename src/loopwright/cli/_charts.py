"""Unicode sparklines: a metric's history in one line of block characters.

Example:
    >>> sparkline([1, 2, 3, 4, 5, 6, 7, 8])
    '▁▂▃▄▅▆▇█'
    >>> sparkline([0.5, float("nan"), 0.7])
    '▁ █'
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["BARS", "sparkline"]

BARS = "▁▂▃▄▅▆▇█"
_FLAT = BARS[3]  # a constant series sits mid-height: it is neither low nor high


def sparkline(values: Sequence[float], width: int = 40) -> str:
    """One block character per point, scaled from the series' minimum to its maximum.

    Longer series are cut into buckets that each contribute their minimum and maximum, in the
    order they occurred, so spikes and the overall range survive at most ``width`` characters.
    NaN (and infinities) show as a space; an empty series gives ``""``.
    """
    if width < 1:
        raise ValueError(f"sparkline width must be at least 1, not {width}")
    points = _downsample([float(v) for v in values], width)
    finite = [v for v in points if math.isfinite(v)]
    if not finite:
        return " " * len(points)
    low, high = min(finite), max(finite)
    span = high - low
    top = len(BARS) - 1

    def bar(value: float) -> str:
        if not math.isfinite(value):
            return " "
        if span == 0:
            return _FLAT
        return BARS[min(top, round((value - low) / span * top))]

    return "".join(bar(v) for v in points)


def _downsample(values: list[float], width: int) -> list[float]:
    """At most ``width`` points: each bucket's min and max in time order (NaN-only buckets stay
    NaN)."""
    if len(values) <= width:
        return values
    buckets = max(1, width // 2)
    per_bucket = 1 if width == 1 else 2
    out: list[float] = []
    for i in range(buckets):
        chunk = values[i * len(values) // buckets : (i + 1) * len(values) // buckets]
        finite = [(n, v) for n, v in enumerate(chunk) if math.isfinite(v)]
        if not finite:
            out.extend([math.nan] * per_bucket)
        elif per_bucket == 1:
            out.append(finite[-1][1])
        else:
            low = min(finite, key=lambda item: item[1])
            high = max(finite, key=lambda item: item[1])
            out.extend(v for _, v in sorted((low, high)))
    return out
