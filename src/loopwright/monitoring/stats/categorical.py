"""Categorical tests: ``chi2`` (2 x k homogeneity), ``linf``; and the category alignment that
``psi`` and ``jensenshannon`` use on categorical columns.

Categories are aligned over the union of both sides: the reference's listed categories, its
pooled ``other`` (when it had more than 1000), and the current categories it never saw. A current
category absent from a complete reference list is *new* (``detail["new_categories"]``); when the
reference list was truncated, unlisted current categories may hide in ``other``, so they are
pooled into it and only reported as ``unlisted_categories``.

``chi2`` is the test of homogeneity on the 2 x k table (reference counts vs current counts),
not goodness of fit against the reference proportions: GOF ignores the reference's own sampling
noise and false-alarms on about half of null pairs (anchors' report, section 3.4).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from ..sketch import CategoricalSketch, ColumnSketch, IntArray
from ._base import CurrentColumn, Score
from ._distributions import chi2_homogeneity

__all__ = ["Aligned", "Chi2", "LInf", "aligned"]

_LISTED = 10  # category labels named in a detail


@dataclass(frozen=True)
class Aligned:
    """Reference and current counts over the same category labels."""

    labels: tuple[str, ...]
    ref: IntArray
    cur: IntArray
    detail: dict[str, Any]


def aligned(ref: CategoricalSketch, cur: CurrentColumn) -> Aligned:
    """The column's counts aligned on one set of labels (cached per column)."""
    return cur.memo("categorical.aligned", lambda: _align(ref, cur))


def _align(ref: CategoricalSketch, cur: CurrentColumn) -> Aligned:
    counts = cur.category_counts
    index = {label: i for i, label in enumerate(ref.categories)}
    cur_listed = np.zeros(len(ref.categories), dtype=np.int64)
    unlisted: dict[str, int] = {}
    for label, n in counts.items():
        i = index.get(label)
        if i is None:
            unlisted[label] = n
        else:
            cur_listed[i] = n
    labels = list(ref.categories)
    ref_counts = [ref.counts]
    cur_counts = [cur_listed]
    ranked = sorted(unlisted.items(), key=lambda p: (-p[1], p[0]))
    total = sum(counts.values())
    detail: dict[str, Any] = {}
    if ref.complete:
        labels += [label for label, _ in ranked]
        ref_counts.append(np.zeros(len(ranked), dtype=np.int64))
        cur_counts.append(np.array([n for _, n in ranked], dtype=np.int64))
        if ranked:
            detail["new_categories"] = [label for label, _ in ranked[:_LISTED]]
            detail["new_share"] = sum(n for _, n in ranked) / total
    else:
        labels.append("<other>")
        ref_counts.append(np.array([ref.other], dtype=np.int64))
        cur_counts.append(np.array([sum(unlisted.values())], dtype=np.int64))
        detail["reference_truncated"] = True
        if ranked:
            detail["unlisted_categories"] = [label for label, _ in ranked[:_LISTED]]
    gone = [label for label, n in zip(ref.categories, cur_listed, strict=True) if n == 0]
    if gone and total:
        detail["missing_categories"] = gone[:_LISTED]
    return Aligned(tuple(labels), np.concatenate(ref_counts), np.concatenate(cur_counts), detail)


def categorical_ready(ref: ColumnSketch, cur: CurrentColumn) -> Score | None:
    """A skip when the column cannot be compared as categorical, else None."""
    if not isinstance(ref, CategoricalSketch) or cur.kind != "categorical":
        return Score.skip("the column is not categorical on both sides")
    if ref.count == 0:
        return Score.skip("the reference has no non-missing value")
    if cur.count == 0:
        return Score.skip("the current window has no non-missing value")
    return None


class Chi2:
    """Pearson's chi-square test of homogeneity on the 2 x k table over the union of
    categories. The statistic is the p-value (drift when below the threshold, 0.05); the detail
    gives the chi-square value, its degrees of freedom and Cramer's V (an effect size)."""

    name: ClassVar[str] = "chi2"
    kind: ClassVar[Literal["categorical"]] = "categorical"
    default_threshold: ClassVar[float] = 0.05
    higher_is_drift: ClassVar[bool] = False

    def score(self, ref: ColumnSketch, cur: CurrentColumn) -> Score:
        if (skip := categorical_ready(ref, cur)) is not None:
            return skip
        assert isinstance(ref, CategoricalSketch)
        a = aligned(ref, cur)
        stat, dof, p = chi2_homogeneity(a.ref, a.cur)
        n = int(a.ref.sum() + a.cur.sum())
        v = float(np.sqrt(stat / n)) if n else 0.0  # 2 x k table: min(r, k) - 1 = 1
        return Score(p, p, {"chi2": stat, "dof": dof, "cramers_v": v, **a.detail})


class LInf:
    """L-infinity distance: the largest difference between reference and current category
    proportions (threshold 0.1: ten points on one category), gated by the chi-square test."""

    name: ClassVar[str] = "linf"
    kind: ClassVar[Literal["categorical"]] = "categorical"
    default_threshold: ClassVar[float] = 0.1
    higher_is_drift: ClassVar[bool] = True

    def score(self, ref: ColumnSketch, cur: CurrentColumn) -> Score:
        if (skip := categorical_ready(ref, cur)) is not None:
            return skip
        assert isinstance(ref, CategoricalSketch)
        a = aligned(ref, cur)
        diff = np.abs(a.ref / a.ref.sum() - a.cur / a.cur.sum())
        at = int(np.argmax(diff))
        _, _, p = chi2_homogeneity(a.ref, a.cur)
        return Score(float(diff[at]), p, {"category": a.labels[at], **a.detail})
