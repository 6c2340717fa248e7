"""A/B and canary comparison: a candidate variant against the baseline on one metric, with
confidence intervals, a significance test and the decision a rollout step acts on.

Metrics (``METRICS``): rates — ``accuracy`` and ``error_rate`` (labelled rows) — are compared
with the pooled two-proportion z test, each variant's rate given a Wilson interval and the
difference Newcombe's hybrid score interval (which, unlike the Wald interval, stays inside
[-1, 1] and keeps its coverage near 0 and 1). Means — ``mean_prediction`` (numeric
predictions), ``latency_ms`` (one sample per request: a request's rows share one latency) and
``mae`` (labelled rows) — are compared with Welch's t test and its interval.

The decision is ``continue`` until both variants have ``min_samples`` samples and the p-value
is below ``1 - confidence``; then ``promote`` if the candidate is better in the metric's
direction (``higher_is_better``), else ``rollback``. No correction is made for looking again
and again while data arrives (each look is a new test): a rollout that checks every few
minutes should ask for a higher ``confidence``.

Example:
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"variant": ["primary"] * 300 + ["canary"] * 300,
    ...                       "output.predict": [1] * 600,
    ...                       "label": [1, 0] * 150 + [1, 1, 1, 0] * 75})
    >>> found = compare_variants(frame, deployment="churn-api", metric=None, baseline=None,
    ...                          candidate=None, confidence=0.95, min_samples=100,
    ...                          window_start=0, window_end=1)
    >>> found.metric, round(found.difference, 2), found.decision
    ('accuracy', 0.25, 'promote')
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..errors import InvalidInput
from .entities import VariantComparison, VariantEstimate
from .performance import comparable, prediction_column, version_key

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["METRICS", "compare_variants", "t_cdf", "t_quantile"]


@dataclass(frozen=True)
class _Metric:
    kind: Literal["rate", "mean"]
    higher_is_better: bool
    needs_labels: bool


METRICS = {
    "accuracy": _Metric("rate", True, True),
    "error_rate": _Metric("rate", False, True),
    "mae": _Metric("mean", False, True),
    "latency_ms": _Metric("mean", False, False),
    # Nothing says which way a mean prediction should move; a higher one counts as better
    # (a predicted conversion, a score). Name another metric when that is wrong.
    "mean_prediction": _Metric("mean", True, False),
}
_PRIMARY, _CANARY = "primary", "canary"


def compare_variants(
    frame: pd.DataFrame,
    *,
    deployment: str,
    metric: str | None,
    baseline: str | None,
    candidate: str | None,
    confidence: float,
    min_samples: int,
    window_start: int,
    window_end: int,
) -> VariantComparison:
    """Compare ``candidate`` with ``baseline`` on ``metric`` over the log rows in ``frame``
    (with a ``variant`` column, and a ``label`` column for the labelled metrics).

    Defaults: ``metric``: ``accuracy`` if any row has a label, else ``mean_prediction``;
    ``baseline``: the ``primary`` variant, else the one with the most rows; ``candidate``: the
    ``canary``, else the other variant with the most rows. Variants named but absent from the
    frame count 0 samples (not enough data). The remaining variants are in ``others``.
    """
    if isinstance(confidence, bool) or not isinstance(confidence, int | float):
        raise InvalidInput(f"confidence must be a number between 0 and 1, not {confidence!r}")
    if not 0 < confidence < 1:
        raise InvalidInput(f"confidence must be between 0 and 1 (e.g. 0.95), not {confidence}")
    if isinstance(min_samples, bool) or not isinstance(min_samples, int) or min_samples < 2:
        raise InvalidInput(f"min_samples must be a whole number of 2 or more, not {min_samples!r}")
    if "variant" not in frame.columns:
        raise InvalidInput("the frame has no 'variant' column; pass prediction-log rows")
    labelled = "label" in frame.columns and bool(frame["label"].notna().any())
    name = metric if metric is not None else ("accuracy" if labelled else "mean_prediction")
    spec = METRICS.get(name)
    if spec is None:
        raise InvalidInput(
            f"metric {name!r} is not one a comparison knows; metrics: {', '.join(sorted(METRICS))}"
        )
    if spec.needs_labels and not labelled:
        raise InvalidInput(
            f"metric {name!r} needs labels and no row of deployment {deployment!r} in the window "
            "has one; log labels first, or compare on latency_ms or mean_prediction"
        )
    counts = frame["variant"].dropna().astype(str).value_counts()
    base, cand = _pick(deployment, counts, baseline, candidate)
    samples = _samples(frame, name)
    stats = {v: _stats(v, samples.get(v), spec, confidence, frame) for v in (base, cand)}
    b, c = samples.get(base, np.array([])), samples.get(cand, np.array([]))
    if spec.kind == "rate":
        test, (difference, low, high, p_value) = "two-proportion z", _rates(b, c, confidence)
    else:
        test, (difference, low, high, p_value) = "welch t", _means(b, c, confidence)
    enough = len(b) >= min_samples and len(c) >= min_samples
    significant = enough and p_value < 1 - confidence
    decision: Literal["promote", "rollback", "continue"] = "continue"
    if significant:
        decision = "promote" if (difference > 0) == spec.higher_is_better else "rollback"
    others = tuple(
        _stats(str(v), samples.get(str(v)), spec, confidence, frame)
        for v in counts.index
        if v not in (base, cand)
    )
    return VariantComparison(
        deployment=deployment,
        metric=name,
        higher_is_better=spec.higher_is_better,
        baseline=stats[base],
        candidate=stats[cand],
        difference=difference,
        ci_low=low,
        ci_high=high,
        test=test,
        p_value=p_value,
        confidence=float(confidence),
        significant=significant,
        enough_data=enough,
        min_samples=min_samples,
        decision=decision,
        window_start=window_start,
        window_end=window_end,
        others=others,
    )


def _pick(
    deployment: str, counts: pd.Series, baseline: str | None, candidate: str | None
) -> tuple[str, str]:
    logged = [str(v) for v in counts.index]  # most rows first
    if baseline is None:
        rest = [v for v in logged if v != candidate]
        if not rest:
            raise _too_few(deployment, logged)
        baseline = _PRIMARY if _PRIMARY in rest else rest[0]
    if candidate is None:
        rest = [v for v in logged if v != baseline]
        if not rest:
            raise _too_few(deployment, logged)
        candidate = _CANARY if _CANARY in rest else rest[0]
    for role, value in (("baseline", baseline), ("candidate", candidate)):
        if not isinstance(value, str) or not value:
            raise InvalidInput(f"{role} must be a variant name, not {value!r}")
    if baseline == candidate:
        raise InvalidInput(
            f"baseline and candidate are both {baseline!r}; name two different variants"
        )
    return baseline, candidate


def _too_few(deployment: str, logged: Sequence[str]) -> InvalidInput:
    return InvalidInput(
        f"deployment {deployment!r} logged {len(logged)} variant(s) in the window "
        f"({', '.join(map(repr, logged)) or 'none'}); a comparison needs two: widen the window, "
        "or name baseline and candidate"
    )


def _samples(frame: pd.DataFrame, metric: str) -> dict[str, np.ndarray]:
    """Each variant's samples of ``metric``: 0/1 outcomes for rates, values for means."""
    if metric == "latency_ms":
        rows = frame[frame["latency_ms"].notna()] if "latency_ms" in frame.columns else frame[:0]
        if "request_id" in rows.columns:
            rows = rows.drop_duplicates("request_id")
        return _by_variant(rows, rows["latency_ms"].to_numpy(dtype=float) if len(rows) else [])
    column = prediction_column(frame)
    rows = frame[frame[column].notna()]
    if metric == "mean_prediction":
        values = rows[column].tolist()
        # booleans count as 0/1: a binary classifier's mean prediction is its positive rate
        if not all(_numeric(v) or isinstance(v, bool | np.bool_) for v in values):
            raise InvalidInput(
                f"the predictions ({column}) are not numbers, so they have no mean; compare on "
                "accuracy (log labels) or latency_ms"
            )
        return _by_variant(rows, np.array(values, dtype=float))
    rows = rows[rows["label"].notna()]
    labels, predicted = rows["label"].tolist(), rows[column].tolist()
    if metric == "mae":
        if not all(map(_numeric, labels)) or not all(map(_numeric, predicted)):
            raise InvalidInput("mae needs numeric labels and predictions; compare on accuracy")
        error = np.abs(np.array(predicted, dtype=float) - np.array(labels, dtype=float))
        return _by_variant(rows, error)
    y, p = comparable(labels, predicted)
    correct = (y == p).astype(float)
    return _by_variant(rows, correct if metric == "accuracy" else 1.0 - correct)


def _by_variant(rows: pd.DataFrame, values: Any) -> dict[str, np.ndarray]:
    variants = rows["variant"].astype(str).to_numpy() if len(rows) else np.array([], dtype=str)
    values = np.asarray(values, dtype=float)
    return {str(v): values[variants == v] for v in np.unique(variants)}


def _stats(
    variant: str, values: np.ndarray | None, spec: _Metric, confidence: float, frame: pd.DataFrame
) -> VariantEstimate:
    values = np.array([]) if values is None else values
    n = len(values)
    if spec.kind == "rate":
        value = float(values.mean()) if n else math.nan
        low, high = _wilson(float(values.sum()), n, confidence)
    else:
        value, low, high = _mean_interval(values, confidence)
    return VariantEstimate(variant, _versions(frame, variant), n, value, low, high)


def _versions(frame: pd.DataFrame, variant: str) -> tuple[str, ...]:
    if "model" not in frame.columns:
        return ()
    rows = frame[(frame["variant"].astype(str) == variant) & frame["model"].notna()]
    keys = ["model", "model_version"] if "model_version" in rows.columns else ["model"]
    pairs = rows.groupby(keys, dropna=False, sort=False).indices  # one key per version
    return tuple(sorted({version_key(*(k if isinstance(k, tuple) else (k,))) for k in pairs}))


# --- statistics ---------------------------------------------------------------------------------


def _z(confidence: float) -> float:
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def _wilson(successes: float, n: int, confidence: float) -> tuple[float, float]:
    """Wilson's score interval of a proportion (NaN with no sample)."""
    if n == 0:
        return math.nan, math.nan
    z = _z(confidence)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _rates(
    base: np.ndarray, cand: np.ndarray, confidence: float
) -> tuple[float, float, float, float]:
    """Candidate minus baseline rate, Newcombe's interval, the pooled z test's p-value."""
    nb, nc = len(base), len(cand)
    if nb == 0 or nc == 0:
        return math.nan, math.nan, math.nan, math.nan
    pb, pc = float(base.mean()), float(cand.mean())
    difference = pc - pb
    lb, ub = _wilson(float(base.sum()), nb, confidence)
    lc, uc = _wilson(float(cand.sum()), nc, confidence)
    low = difference - math.sqrt((pc - lc) ** 2 + (ub - pb) ** 2)
    high = difference + math.sqrt((uc - pc) ** 2 + (pb - lb) ** 2)
    pooled = (float(base.sum()) + float(cand.sum())) / (nb + nc)
    se = math.sqrt(pooled * (1 - pooled) * (1 / nb + 1 / nc))
    # Both rates 0 or both 1: no variance and no difference.
    p_value = math.erfc(abs(difference / se) / math.sqrt(2)) if se > 0 else 1.0
    return difference, low, high, p_value


def _mean_interval(values: np.ndarray, confidence: float) -> tuple[float, float, float]:
    n = len(values)
    if n == 0:
        return math.nan, math.nan, math.nan
    mean = float(values.mean())
    if n < 2:
        return mean, math.nan, math.nan
    half = t_quantile(0.5 + confidence / 2, n - 1) * float(values.std(ddof=1)) / math.sqrt(n)
    return mean, mean - half, mean + half


def _means(
    base: np.ndarray, cand: np.ndarray, confidence: float
) -> tuple[float, float, float, float]:
    """Candidate minus baseline mean, Welch's interval and two-sided p-value."""
    nb, nc = len(base), len(cand)
    if nb == 0 or nc == 0:
        return math.nan, math.nan, math.nan, math.nan
    difference = float(cand.mean()) - float(base.mean())
    if nb < 2 or nc < 2:
        return difference, math.nan, math.nan, math.nan
    vb, vc = float(base.var(ddof=1)) / nb, float(cand.var(ddof=1)) / nc
    se = math.sqrt(vb + vc)
    if se == 0:  # both constant: the difference is exact
        return difference, difference, difference, 1.0 if difference == 0 else 0.0
    df = (vb + vc) ** 2 / (vb**2 / (nb - 1) + vc**2 / (nc - 1))
    half = t_quantile(0.5 + confidence / 2, df) * se
    p_value = 2 * (1 - t_cdf(abs(difference) / se, df))
    return difference, difference - half, difference + half, min(1.0, max(0.0, p_value))


def t_cdf(t: float, df: float) -> float:
    """Student's t distribution function at ``t`` with ``df`` (possibly fractional) degrees of
    freedom, through the regularized incomplete beta function."""
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    tail = 0.5 * _betainc(df / 2, 0.5, df / (df + t * t))
    return 1 - tail if t > 0 else tail


def t_quantile(q: float, df: float) -> float:
    """The ``q`` quantile of Student's t with ``df`` degrees of freedom (bisection on
    :func:`t_cdf`, to 1e-12)."""
    if q == 0.5:
        return 0.0
    if q < 0.5:
        return -t_quantile(1 - q, df)
    low, high = 0.0, 1.0
    while t_cdf(high, df) < q:
        high *= 2
    for _ in range(200):
        mid = (low + high) / 2
        if t_cdf(mid, df) < q:
            low = mid
        else:
            high = mid
        if high - low < 1e-12 * max(1.0, high):
            break
    return (low + high) / 2


def _betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b) (continued fraction, Lentz's
    method, as in Numerical Recipes' betai)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1 - math.exp(log_front) * _betacf(b, a, 1 - x) / b


def _betacf(a: float, b: float, x: float) -> float:
    tiny = 1e-300
    c, d = 1.0, 1 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1 + numerator * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return h


def _numeric(value: object) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
