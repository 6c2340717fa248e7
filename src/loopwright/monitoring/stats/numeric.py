"""Numeric tests (``ks``, ``wasserstein``) and the binned tests for both kinds (``psi``,
``jensenshannon``), all computed against the reference sketch, never the reference rows.

The current side is read once per column: two ``searchsorted`` passes on the reference's grid
give the current CDF at every grid point (``CurrentColumn.grid_counts``); KS, W1 and the bins of
PSI/JS all come from it, and the current values are never sorted.

Every effect size here is gated by a null test in ``compare`` (see ``_base``): ``ks`` and
``wasserstein`` by the KS p-value, ``psi`` and ``jensenshannon`` by the chi-square test of
homogeneity on their bins.
"""

from __future__ import annotations

import functools
import math
from typing import Any, ClassVar, Literal

import numpy as np

from ..sketch import CategoricalSketch, ColumnSketch, FloatArray, IntArray, NumericSketch
from ._base import CurrentColumn, Score
from ._distributions import chi2_homogeneity, ks_sf
from .categorical import aligned, categorical_ready

__all__ = [
    "KS",
    "PSI",
    "AndersonDarling",
    "JensenShannon",
    "Wasserstein",
    "binned",
    "ks_statistic",
]

PSI_EPSILON = 1e-4
_BLOCK = 1 << 16


def numeric_ready(ref: ColumnSketch, cur: CurrentColumn) -> Score | None:
    """A skip when the column cannot be compared as numeric, else None."""
    if not isinstance(ref, NumericSketch) or cur.kind != "numeric":
        return Score.skip("the column is not numeric on both sides")
    if ref.count == 0:
        return Score.skip("the reference has no finite value")
    if cur.count == 0:
        return Score.skip("the current window has no finite value")
    return None


def _cdfs(ref: NumericSketch, cur: CurrentColumn) -> tuple[FloatArray, ...]:
    le, lt = cur.grid_counts
    n, m = ref.count, cur.count
    return ref.le / n, ref.lt / n, le / m, lt / m


def ks_statistic(ref: NumericSketch, cur: CurrentColumn) -> tuple[float, float, float]:
    """``(D, p, location)``: the KS distance between the reference and current CDFs on the
    reference's grid, its p-value and the grid value where it is reached (cached per column)."""

    def compute() -> tuple[float, float, float]:
        r_le, r_lt, c_le, c_lt = _cdfs(ref, cur)
        gap_le = np.abs(c_le - r_le)
        gap_lt = np.abs(c_lt - r_lt)
        j_le, j_lt = int(np.argmax(gap_le)), int(np.argmax(gap_lt))
        d, j = (float(gap_le[j_le]), j_le)
        if gap_lt[j_lt] > d:
            d, j = float(gap_lt[j_lt]), j_lt
        return d, ks_sf(d, ref.count, cur.count), float(ref.grid[j])

    return cur.memo("numeric.ks", compute)


class KS:
    """Two-sample Kolmogorov-Smirnov distance D = sup |F_ref - F_cur| (threshold 0.1), gated by
    its p-value (asymptotic with Stephens' correction, ``_distributions.ks_sf``).

    Against the sketch's grid, not the sample: both CDFs are exact at every grid point (the
    grid holds every distinct reference value when there are at most 2048, so D is then exact;
    otherwise the 1001 reference quantiles, and D can only be under-estimated, by at most the
    reference mass between two grid points, 0.1 %). A sample of 20k rows would instead add an
    error of ~1/sqrt(20k) = 0.7 % and cost a sort.
    """

    name: ClassVar[str] = "ks"
    kind: ClassVar[Literal["numeric"]] = "numeric"
    default_threshold: ClassVar[float] = 0.1
    higher_is_drift: ClassVar[bool] = True

    def score(self, ref: ColumnSketch, cur: CurrentColumn) -> Score:
        if (skip := numeric_ready(ref, cur)) is not None:
            return skip
        assert isinstance(ref, NumericSketch)
        d, p, at = ks_statistic(ref, cur)
        return Score(d, p, {"location": at})


class Wasserstein:
    """Wasserstein-1 distance divided by the reference's standard deviation (population):
    drift at 0.1, i.e. a tenth of a standard deviation of transport (Evidently's convention).

    W1 = integral of |F_ref - F_cur| dx. Inside the reference range it is integrated on the
    grid (both CDFs exact at grid points, linear in between: the trapezoid on each interval,
    with the exact area where the difference changes sign); beyond the reference's min and max
    the area is exact (the summed distances of the current values out there). A constant
    reference is scaled by |value| (or 1 for 0) instead of its zero deviation. Gated by KS.
    """

    name: ClassVar[str] = "wasserstein"
    kind: ClassVar[Literal["numeric"]] = "numeric"
    default_threshold: ClassVar[float] = 0.1
    higher_is_drift: ClassVar[bool] = True

    def score(self, ref: ColumnSketch, cur: CurrentColumn) -> Score:
        if (skip := numeric_ready(ref, cur)) is not None:
            return skip
        assert isinstance(ref, NumericSketch)
        r_le, r_lt, c_le, c_lt = _cdfs(ref, cur)
        width = np.diff(ref.grid)
        start = c_le[:-1] - r_le[:-1]  # just after grid[j]
        end = c_lt[1:] - r_lt[1:]  # just before grid[j+1]
        a, b = np.abs(start), np.abs(end)
        same = start * end >= 0
        with np.errstate(invalid="ignore", divide="ignore"):
            crossing = np.where(a + b > 0, (a * a + b * b) / (2 * (a + b)), 0.0)
        inside = float(np.sum(width * np.where(same, (a + b) / 2, crossing)))
        below, above = cur.tails
        w1 = inside + (below + above) / cur.count
        scale = ref.std if ref.std > 0 else (abs(ref.mean) or 1.0)
        _, p, _ = ks_statistic(ref, cur)
        return Score(w1 / scale, p, {"w1": w1, "scale": scale})


def binned(ref: ColumnSketch, cur: CurrentColumn) -> tuple[IntArray, IntArray, dict[str, Any]]:
    """Reference and current counts on the same bins: PSI bins (reference deciles, open ends)
    for numeric columns, the aligned categories for categorical ones."""
    if isinstance(ref, NumericSketch):
        return ref.counts, cur.bin_counts, {}
    assert isinstance(ref, CategoricalSketch)
    a = aligned(ref, cur)
    return a.ref, a.cur, a.detail


def _ready(ref: ColumnSketch, cur: CurrentColumn) -> Score | None:
    if isinstance(ref, NumericSketch):
        return numeric_ready(ref, cur)
    return categorical_ready(ref, cur)


class PSI:
    """Population Stability Index, sum (q - p) ln(q / p), on 10 bins at the reference deciles
    with open ends (numeric; a reference of at most 10 distinct values gets a bin per value and
    per gap, see ``NumericSketch.cuts``) or one bin per category (categorical). Proportions are
    floored at epsilon = 1e-4 so an empty bin gives a large but finite value. Threshold 0.1 (the
    usual "moderate shift" line); gated by the chi-square test of homogeneity on the same bins."""

    name: ClassVar[str] = "psi"
    kind: ClassVar[Literal["univariate"]] = "univariate"
    default_threshold: ClassVar[float] = 0.1
    higher_is_drift: ClassVar[bool] = True

    def score(self, ref: ColumnSketch, cur: CurrentColumn) -> Score:
        if (skip := _ready(ref, cur)) is not None:
            return skip
        r, c, detail = binned(ref, cur)
        p = np.maximum(r / r.sum(), PSI_EPSILON)
        q = np.maximum(c / c.sum(), PSI_EPSILON)
        psi = float(np.sum((q - p) * np.log(q / p)))
        _, _, p_value = chi2_homogeneity(r, c)
        return Score(psi, p_value, {"bins": len(r), **detail})


class JensenShannon:
    """Jensen-Shannon distance (the square root of the divergence) in base 2, so in [0, 1]
    (NannyML's convention; Evidently's natural-log 0.1 is 0.12 here). Bins as for PSI. Threshold
    0.1; gated by the chi-square test of homogeneity on the same bins."""

    name: ClassVar[str] = "jensenshannon"
    kind: ClassVar[Literal["univariate"]] = "univariate"
    default_threshold: ClassVar[float] = 0.1
    higher_is_drift: ClassVar[bool] = True

    def score(self, ref: ColumnSketch, cur: CurrentColumn) -> Score:
        if (skip := _ready(ref, cur)) is not None:
            return skip
        r, c, detail = binned(ref, cur)
        p, q = r / r.sum(), c / c.sum()
        mid = (p + q) / 2
        with np.errstate(divide="ignore", invalid="ignore"):
            kl_p = np.where(p > 0, p * np.log2(p / mid), 0.0)
            kl_q = np.where(q > 0, q * np.log2(q / mid), 0.0)
        js = math.sqrt(max(0.0, float(np.sum(kl_p) + np.sum(kl_q)) / 2))
        _, _, p_value = chi2_homogeneity(r, c)
        return Score(js, p_value, detail)


# Scholz and Stephens (1987), Table 2: critical values of the standardized statistic for k = 2
# samples (b0 + b1 / sqrt(k - 1) + b2 / (k - 1)) at these levels; SciPy interpolates the same way.
_AD_CRITICAL = (
    np.array([0.675, 1.281, 1.645, 1.96, 2.326, 2.573, 3.085])
    + np.array([-0.245, 0.25, 0.678, 1.149, 1.822, 2.364, 3.615])
    + np.array([-0.105, -0.305, -0.362, -0.391, -0.396, -0.345, -0.154])
)
_AD_LEVELS = np.array([0.25, 0.1, 0.05, 0.025, 0.01, 0.005, 0.001])


class AndersonDarling:
    """Anderson-Darling k-sample test (Scholz and Stephens 1987, the version for ties, eq. 7)
    of reference against current, more sensitive in the tails than KS. A p-value test: drift
    when p < 0.05. The p-value is interpolated from the paper's table, so it is capped to
    [0.001, 0.25] (as SciPy's ``anderson_ksamp``); the detail gives the standardized statistic.

    Computed on the reference's grid: each grid point and each open interval between two is one
    tied group, so with at most 2048 distinct reference values only the current values between
    two reference values are grouped (a slight loss of power, no loss of calibration).
    """

    name: ClassVar[str] = "anderson"
    kind: ClassVar[Literal["numeric"]] = "numeric"
    default_threshold: ClassVar[float] = 0.05
    higher_is_drift: ClassVar[bool] = False

    def score(self, ref: ColumnSketch, cur: CurrentColumn) -> Score:
        if (skip := numeric_ready(ref, cur)) is not None:
            return skip
        assert isinstance(ref, NumericSketch)
        n, m = ref.count, cur.count
        if n + m < 4:  # the null variance divides by (N - 1)(N - 2)(N - 3)
            return Score.skip("Anderson-Darling needs at least 4 values in all")
        c_le, c_lt = cur.grid_counts
        groups = []
        for le, lt, size in ((ref.le, ref.lt, n), (c_le, c_lt, m)):
            bounds = np.column_stack([lt, le]).ravel()  # below g0, at g0, between, at g1, ...
            groups.append(np.diff(np.concatenate([[0], bounds, [size]])).astype(np.float64))
        keep = (groups[0] + groups[1]) > 0
        f_ref, f_cur = groups[0][keep], groups[1][keep]
        tied = f_ref + f_cur
        if len(tied) < 2:
            return Score(1.0, 1.0, {"ad": 0.0})
        total = float(n + m)
        below = np.cumsum(tied) - tied / 2
        denominator = below * (total - below) - total * tied / 4
        a2 = 0.0
        for f, size in ((f_ref, n), (f_cur, m)):
            mid = np.cumsum(f) - f / 2  # this sample's values below each group, ties halved
            terms = tied / total * (total * mid - below * size) ** 2 / denominator
            a2 += float(np.sum(terms)) / size
        a2 *= (total - 1) / total
        t = (a2 - 1.0) / math.sqrt(_ad_variance(n, m))
        if t < _AD_CRITICAL[0]:
            p = float(_AD_LEVELS[0])
        elif t > _AD_CRITICAL[-1]:
            p = float(_AD_LEVELS[-1])
        else:
            fit = np.polyfit(_AD_CRITICAL, np.log(_AD_LEVELS), 2)
            p = float(np.exp(np.polyval(fit, t)))
        return Score(p, p, {"ad": t})


@functools.lru_cache(maxsize=64)  # columns of one window mostly share (n, m)
def _ad_variance(n: int, m: int) -> float:
    """The variance of the two-sample A2 statistic under the null (Scholz and Stephens, eq. 4)."""
    k, big_n = 2, n + m
    h_big = 1 / n + 1 / m
    # h = sum 1/i for i < N; g = sum over i < j < N of 1 / ((N - i) j), as SciPy computes it
    # (running sums of 1/(N-1), 1/(N-2), ...), in blocks so a 2M-row pass adds no 16 MB arrays.
    carry = g = 0.0
    for start in range(0, big_n - 2, _BLOCK):
        index = np.arange(start, min(start + _BLOCK, big_n - 2), dtype=np.float64)
        running = carry + np.cumsum(1.0 / (big_n - 1 - index))
        g += float(np.sum(running / (index + 2)))
        carry = float(running[-1])
    h = carry + 1
    a = (4 * g - 6) * (k - 1) + (10 - 6 * g) * h_big
    b = (2 * g - 4) * k**2 + 8 * h * k + (2 * g - 14 * h - 4) * h_big - 8 * h + 4 * g - 6
    c = (6 * h + 2 * g - 2) * k**2 + (4 * h - 4 * g + 6) * k + (2 * h - 6) * h_big + 4 * h
    d = (2 * h + 6) * k**2 - 4 * h * k
    return (a * big_n**3 + b * big_n**2 + c * big_n + d) / (
        (big_n - 1.0) * (big_n - 2.0) * (big_n - 3.0)
    )
