"""Multiple-testing corrections over the p-values of one drift pass.

A pass over 25 columns at alpha = 0.05 raises about one false alarm per pass without
correction. ``bh`` (Benjamini-Hochberg) controls the false discovery rate, ``bonferroni`` the
family-wise error rate (stricter), ``none`` leaves p-values as they are. Each returns adjusted
p-values in the input's order, so the verdict stays ``adjusted_p < alpha``.

Example::

    correct([0.01, 0.04, 0.5], "bh")  # [0.03, 0.06, 0.5]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ...errors import InvalidInput

__all__ = ["METHODS", "correct"]

METHODS = ("bh", "bonferroni", "none")


def correct(p_values: Sequence[float], method: str) -> list[float]:
    """The adjusted p-values of ``p_values`` by ``method`` (one of :data:`METHODS`)."""
    if method not in METHODS:
        raise InvalidInput(f"unknown correction {method!r}; corrections: {', '.join(METHODS)}")
    p = np.asarray(p_values, dtype=np.float64)
    if p.size == 0 or method == "none":
        return [float(v) for v in p]
    m = p.size
    if method == "bonferroni":
        return [float(v) for v in np.minimum(p * m, 1.0)]
    order = np.argsort(p)
    ranked = p[order] * m / np.arange(1, m + 1)
    # Step-up: each adjusted value is the smallest ranked value at or above its rank.
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m, dtype=np.float64)
    out[order] = np.minimum(adjusted, 1.0)
    return [float(v) for v in out]
