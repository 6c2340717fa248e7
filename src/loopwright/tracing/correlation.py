"""How strongly two trace filters go together: normalised pointwise mutual information (NPMI)
over the traces of some experiments, as MLflow's ``calculate_trace_filter_correlation``
answers it (same counts, same rules, same smoothing).

NPMI is in [-1, 1]: 1 when the filters always hold together, 0 when independent, -1 when they
never do although both hold somewhere; NaN when either never holds. The smoothed value adds a
Jeffreys prior (0.5) to each cell of the 2x2 table, so small counts do not swing it to the ends.

Example:
    >>> [round(value, 3) for value in npmi(joint=6, first=6, second=7, total=10)]
    [0.698, 0.54]
"""

from __future__ import annotations

import math

__all__ = ["JEFFREYS_PRIOR", "npmi"]

JEFFREYS_PRIOR = 0.5


def npmi(*, joint: int, first: int, second: int, total: int) -> tuple[float, float]:
    """(NPMI, smoothed NPMI) from the counts of traces matching both, each, and in all."""
    nan = float("nan")
    if total <= 0 or first == 0 or second == 0:
        return nan, nan
    cells = (joint, first - joint, second - joint, total - first - second + joint)
    if min(cells) < 0:
        return nan, nan
    plain = -1.0 if joint == 0 else _npmi(*cells, smoothing=0.0)
    return plain, _npmi(*cells, smoothing=JEFFREYS_PRIOR)


def _npmi(n11: float, n10: float, n01: float, n00: float, *, smoothing: float) -> float:
    if n10 == 0 and n01 == 0 and n00 == 0:
        return 1.0  # the two always hold together
    a, b, c, d = (n + smoothing for n in (n11, n10, n01, n00))
    total, first, second = a + b + c + d, a + b, a + c
    if first <= 0 or second <= 0 or a <= 0:
        return float("nan")
    pmi = math.log(a) + math.log(total) - math.log(first) - math.log(second)
    return max(-1.0, min(1.0, pmi / -(math.log(a) - math.log(total))))
