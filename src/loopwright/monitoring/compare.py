"""The drift pass: a current window against a reference sketch, every column, every test.

Rules (stated in the result too):

- A column's kind comes from its Arrow type: numbers and times are numeric; strings, booleans
  and dictionaries categorical. ``output.*`` columns are the model's predictions (their results
  have ``kind="prediction"``); ``input.*`` and plain names are features. A fixed-size numeric
  list column (``output.predict_proba``) is tested position by position
  (``output.predict_proba[0]`` ...; ``sketch.expand_vectors``), on both sides alike; in
  ``columns`` its bare name stands for all its positions.
- Verdict per test: an effect size drifts when it reaches its threshold AND its null test
  rejects (p-value, corrected over the pass, below ``alpha``); a p-value test (``chi2``) drifts
  when its corrected p-value is below its threshold. Quality checks are not corrected.
- Dataset drift: at least ``drift_share`` of the tested columns (features and predictions)
  drift, or a multivariate test drifts.
- A column missing on one side, of a changed type, or with no value in the window gets its
  tests reported as skipped (NaN statistic, no drift, the reason in ``detail["skipped"]``);
  the quality checks (``type_change``, ``schema`` ...) say what changed.

Columns run in a thread pool: the work is NumPy and Arrow kernels that release the GIL.

Example::

    result = compare(ReferenceSketch.build(train), window, tests=["psi", "ks"])
    result.dataset_drift, result.drifted_columns
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidInput
from ._ray import check_executor, on_ray, ray_session
from .entities import Distribution, DriftResult, TestKind, TestResult
from .sketch import (
    CategoricalSketch,
    ColumnSketch,
    NumericSketch,
    ReferenceSketch,
    as_table,
    expand_vectors,
    vector_source,
)
from .stats import TESTS, default_tests
from .stats._base import CurrentColumn, CurrentTable, Score, applies_to
from .stats.categorical import aligned
from .stats.corrections import METHODS, correct

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = ["compare"]

PREDICTION_PREFIX = "output."
CHART_CATEGORIES = 30


@dataclass
class _Raw:
    column: str
    test: str
    cls: Any
    score: Score


def compare(
    reference: ReferenceSketch | pa.Table | pd.DataFrame,
    current: pa.Table | pd.DataFrame,
    *,
    tests: Sequence[str] = (),
    columns: Sequence[str] = (),
    thresholds: Mapping[str, float] | None = None,
    p_values: bool = False,
    correction: str = "bh",
    drift_share: float = 0.3,
    distributions: bool = True,
    alpha: float = 0.05,
    max_workers: int | None = None,
    executor: str = "local",
) -> DriftResult:
    """Compare ``current`` with ``reference`` (a sketch, or rows to sketch now).

    Args:
        tests: test names from ``stats.TESTS`` (empty: the defaults of each column kind plus
            the quality checks). A test runs on the columns of its kind.
        columns: the columns to test (empty: every column of either side).
        thresholds: per test name (``"psi"``) or test and column (``"psi:input.age"``).
        p_values: report each test's corrected p-value in the result.
        correction: ``bh`` (Benjamini-Hochberg), ``bonferroni`` or ``none``.
        drift_share: the share of drifted columns at which the dataset drifts.
        distributions: add each column's reference and current proportions (for charts).
        alpha: the null tests' level.
        executor: where the per-column scoring runs: ``local`` (threads) or ``ray`` (Ray tasks
            over column groups; the result is the same, see ``_ray``).
    """
    check_executor(executor)
    if correction not in METHODS:
        raise InvalidInput(f"unknown correction {correction!r}; corrections: {', '.join(METHODS)}")
    if not 0 < drift_share <= 1:
        raise InvalidInput(f"drift_share must be in (0, 1], got {drift_share}")
    if not 0 < alpha < 1:
        raise InvalidInput(f"alpha must be in (0, 1), got {alpha}")
    sketch = (
        reference if isinstance(reference, ReferenceSketch) else ReferenceSketch.build(reference)
    )
    table = expand_vectors(as_table(current, "current"))  # as the sketch: predict_proba[i]
    plan = _plan(tests)
    universe = list(sketch.columns) + [c for c in table.column_names if c not in sketch.columns]
    selected = _columns(columns, universe)
    limits = _thresholds(thresholds or {}, universe)

    views = {
        name: CurrentColumn(name, table.column(name), sketch.columns.get(name))
        for name in selected
        if name in table.column_names
    }
    table_tests = plan["table"]

    def run(column: str) -> list[_Raw]:
        return _column_pass(column, sketch.columns.get(column), views.get(column), plan)

    workers = max_workers or min(os.cpu_count() or 1, 8)
    if executor == "ray":
        with ray_session():
            found = on_ray(_score_group, sketch, table.select(list(views)), selected, tests)
        raws = [r for batch in found for r in batch]
    elif workers > 1 and len(selected) > 1:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="drift") as pool:
            raws = [r for batch in pool.map(run, selected) for r in batch]
    else:
        raws = [r for column in selected for r in run(column)]
    both = {n: v for n, v in views.items() if n in sketch.columns}
    whole = CurrentTable(table, both, selected)
    for name, cls in table_tests:
        raws.append(_Raw("*", name, cls, _safe(lambda cls=cls: cls().score(sketch, whole))))

    results = _verdicts(raws, limits, correction, alpha, p_values)
    counted = [
        (r, raw) for r, raw in zip(results, raws, strict=True) if r.kind in ("drift", "prediction")
    ]
    tested = {r.column for r, raw in counted if raw.score.skipped is None}
    flagged = {r.column for r, _ in counted if r.drifted}
    drifted = [c for c in selected if c in flagged]
    share = len(drifted) / len(tested) if tested else 0.0
    multivariate = any(r.drifted for r in results if r.kind == "multivariate")
    has_multivariate = any(cls.kind == "multivariate" for _, cls in table_tests)
    rule = (
        f"drift when at least {drift_share:.0%} of the tested columns drift"
        + (" or a multivariate test drifts" if has_multivariate else "")
        + "; a test drifts when its effect size reaches its threshold and its null test "
        f"rejects at alpha={alpha:g} (p-value tests: when their p-value is below their "
        f"threshold; {_correction_text(correction)})"
    )
    charts = tuple(
        d for name in selected if distributions and (d := _distribution(name, sketch, views))
    )
    return DriftResult(
        tests=tuple(results),
        dataset_drift=(bool(tested) and share >= drift_share) or multivariate,
        drifted_columns=tuple(drifted),
        share_drifted=share,
        rule=rule,
        correction=None if correction == "none" else correction,
        reference_rows=sketch.rows,
        current_rows=table.num_rows,
        distributions=charts,
    )


def _plan(tests: Sequence[str]) -> dict[str, list[tuple[str, Any]]]:
    """The column tests for each column kind, and the table tests (key ``table``)."""
    if isinstance(tests, str):
        tests = [tests]
    unknown = [t for t in tests if t not in TESTS]
    if unknown:
        raise InvalidInput(
            f"unknown test(s) {', '.join(map(repr, unknown))}; tests: {', '.join(sorted(TESTS))}"
        )
    quality = list(tests) if tests else list(default_tests("quality"))
    plan: dict[str, list[tuple[str, Any]]] = {"table": []}
    for kind in ("numeric", "categorical"):
        # Defaults are per kind: psi and jensenshannon read both kinds, but only the kind that
        # names them as a default runs them.
        names = list(tests) if tests else [*default_tests(kind), *quality]
        plan[kind] = [(n, TESTS[n]) for n in dict.fromkeys(names)
                      if not getattr(TESTS[n], "table", False)]  # fmt: skip
    names = list(tests) if tests else [*default_tests("multivariate"), *quality]
    plan["table"] = [
        (n, TESTS[n]) for n in dict.fromkeys(names) if getattr(TESTS[n], "table", False)
    ]
    return plan


def _columns(columns: Sequence[str], universe: list[str]) -> list[str]:
    if isinstance(columns, str):
        columns = [columns]
    if not columns:
        return universe
    # A vector column's name stands for its positions (``output.predict_proba`` -> ``[0]`` ...).
    positions = {c: [u for u in universe if vector_source(u) == c] for c in columns}
    columns = [x for c in columns for x in (positions[c] if c not in universe else [c]) or [c]]
    unknown = [c for c in columns if c not in universe]
    if unknown:
        raise InvalidInput(
            f"column(s) {', '.join(map(repr, unknown))} are in neither the reference nor the "
            f"current data; columns: {', '.join(universe)}"
        )
    return list(dict.fromkeys(columns))


def _thresholds(thresholds: Mapping[str, float], universe: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in thresholds.items():
        test, _, column = str(key).partition(":")
        if test not in TESTS:
            raise InvalidInput(
                f"threshold {key!r} names unknown test {test!r}; keys are TEST or TEST:COLUMN "
                f"with TEST one of {', '.join(sorted(TESTS))}"
            )
        if column and column not in universe:
            raise InvalidInput(
                f"threshold {key!r} names unknown column {column!r}; columns: {', '.join(universe)}"
            )
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number):
            raise InvalidInput(f"threshold {key!r} must be a finite number, got {value!r}")
        out[str(key)] = number
    return out


def _column_pass(
    column: str,
    ref: ColumnSketch | None,
    cur: CurrentColumn | None,
    plan: Mapping[str, list[tuple[str, Any]]],
) -> list[_Raw]:
    """Every applicable column test on one column (one thread; the views are shared)."""
    kind = ref.kind if ref is not None else (cur.kind if cur is not None else None)
    if kind is None:
        return []  # a type no test reads on either side
    out: list[_Raw] = []
    for name, cls in plan[kind]:
        if cls.kind == "quality":
            # A check names the column kinds it reads; elsewhere it would only say "skipped".
            if ref is not None and cur is not None and kind in getattr(cls, "applies_to", (kind,)):
                out.append(_Raw(column, name, cls, _safe(lambda cls=cls: cls().score(ref, cur))))
            continue
        if not applies_to(cls.kind, kind):
            continue
        if cur is None:
            score = Score.skip("the column is missing from the current data")
        elif ref is None:
            score = Score.skip("the column is not in the reference")
        elif cur.kind != ref.kind:
            score = Score.skip(
                f"the column's type changed from {ref.dtype} ({ref.kind}) to "
                f"{cur.values.type} ({cur.kind or 'unsupported'})"
            )
        else:
            score = _safe(lambda cls=cls: cls().score(ref, cur))
        out.append(_Raw(column, name, cls, score))
    return out


def _score_group(
    sketch: ReferenceSketch, table: pa.Table, columns: Sequence[str], tests: Sequence[str]
) -> list[_Raw]:
    """One Ray task's share of a pass: the column tests of ``columns`` (``table`` holds those
    of them the current data has), as :func:`compare` runs them locally."""
    plan = _plan(tests)
    out: list[_Raw] = []
    for name in columns:
        ref = sketch.columns.get(name)
        cur = CurrentColumn(name, table.column(name), ref) if name in table.column_names else None
        out.extend(_column_pass(name, ref, cur, plan))
    return out


def _safe(run: Any) -> Score:
    """The test's score; a test that fails reports the failure instead of sinking the pass."""
    try:
        score = run()
    except Exception as exc:  # one faulty test must not lose every other column's result
        return Score.skip(f"the test failed: {type(exc).__name__}: {exc}")
    if not isinstance(score, Score):
        return Score.skip(f"the test returned {type(score).__name__}, not a Score")
    return score


def _verdicts(
    raws: list[_Raw], limits: dict[str, float], correction: str, alpha: float, p_values: bool
) -> list[TestResult]:
    family = [
        i
        for i, r in enumerate(raws)
        if r.score.p_value is not None and r.cls.kind != "quality" and r.score.skipped is None
    ]
    raw_p = [float(raws[i].score.p_value or 0.0) for i in family]
    adjusted = dict(zip(family, correct(raw_p, correction), strict=True))
    out: list[TestResult] = []
    for i, raw in enumerate(raws):
        s, cls = raw.score, raw.cls
        default = limits.get(raw.test, cls.default_threshold)
        threshold = limits.get(f"{raw.test}:{raw.column}", default)
        p = adjusted.get(i, s.p_value)
        statistic = s.statistic
        if not cls.higher_is_drift and p is not None and i in adjusted:
            statistic = p  # a p-value statistic is reported (and judged) corrected
        if s.skipped is not None or math.isnan(statistic):
            drifted = False
        elif cls.higher_is_drift and cls.kind == "quality":
            drifted = statistic >= threshold  # a share past its line: no null test to pass
        elif cls.higher_is_drift:
            # The effect size AND its null test: a test that gave no p-value has not rejected.
            drifted = statistic >= threshold and p is not None and p < alpha
        else:
            drifted = statistic < threshold
        detail = dict(s.detail)
        if s.skipped is not None:
            detail["skipped"] = s.skipped
        out.append(
            TestResult(
                column=raw.column,
                test=raw.test,
                statistic=float(statistic),
                threshold=float(threshold),
                drifted=bool(drifted),
                p_value=float(p) if p_values and p is not None else None,
                kind=_kind(raw),
                detail=detail,
            )
        )
    return out


def _kind(raw: _Raw) -> TestKind:
    if raw.cls.kind in ("quality", "multivariate"):
        return raw.cls.kind  # type: ignore[no-any-return]
    return "prediction" if raw.column.startswith(PREDICTION_PREFIX) else "drift"


def _correction_text(correction: str) -> str:
    return {
        "bh": "p-values corrected by Benjamini-Hochberg over the pass",
        "bonferroni": "p-values corrected by Bonferroni over the pass",
        "none": "p-values not corrected",
    }[correction]


def _distribution(
    name: str, sketch: ReferenceSketch, views: Mapping[str, CurrentColumn]
) -> Distribution | None:
    ref, cur = sketch.columns.get(name), views.get(name)
    if ref is None or cur is None or cur.kind != ref.kind or ref.count == 0:
        return None
    if isinstance(ref, NumericSketch):
        counts = cur.bin_counts if cur.count else np.zeros(len(ref.counts), dtype=np.int64)
        lo, hi = ref.min, ref.max
        if (span := cur.finite_range) is not None:
            lo, hi = min(lo, span[0]), max(hi, span[1])
        index, _ = ref.cuts()  # a value's point bin [v, v] shows as an edge twice
        edges = (lo, *(float(ref.grid[i]) for i in index), hi)
        return Distribution(name, "numeric", edges, _shares(ref.counts), _shares(counts))
    assert isinstance(ref, CategoricalSketch)
    a = aligned(ref, cur)
    labels, r, c = list(a.labels), _shares(a.ref), _shares(a.cur)
    if len(labels) > CHART_CATEGORIES:  # charts show the largest; the rest pooled
        keep = sorted(np.argsort(-(np.add(r, c)), kind="stable")[: CHART_CATEGORIES - 1])
        rest = sorted(set(range(len(labels))) - set(keep))
        labels = [labels[i] for i in keep] + ["<rest>"]
        r = (*(r[i] for i in keep), sum(r[i] for i in rest))
        c = (*(c[i] for i in keep), sum(c[i] for i in rest))
    return Distribution(name, "categorical", tuple(labels), r, c)


def _shares(counts: np.ndarray[Any, Any]) -> tuple[float, ...]:
    total = float(counts.sum())
    return tuple(float(c) / total if total else 0.0 for c in counts)
