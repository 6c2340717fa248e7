"""Data quality checks against the reference sketch (the training profile).

Each check is a small test behind the same protocol as the drift tests (``kind = "quality"``),
flagging when its statistic reaches its threshold:

- ``missing``: how much the share of missing values (nulls, NaN, infinities) rose over the
  reference's, with a one-sided two-proportion z-test so a few missing values in a small window
  do not flag by chance;
- ``out_of_range``: the share of current values outside the reference's ``[min, max]``;
- ``new_categories``: the share of current values in categories the reference never had;
- ``type_change``: 1 when the column's kind changed (numeric became text, or back);
- ``schema``: over the whole table, how many reference columns the current window lacks.

The share thresholds are all 0.05 (one row in twenty). A check that does not apply to a column
(``out_of_range`` on text) returns a skipped score; ``applies_to`` names the column kinds each
check reads, so a caller can leave it out instead.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from ._base import ColumnKind, CurrentColumn, CurrentTable, Score, TestFamily

if TYPE_CHECKING:
    from ..sketch import ColumnSketch, ReferenceSketch

__all__ = ["MissingShare", "NewCategories", "OutOfRange", "SchemaChange", "TypeChange"]

_LISTED = 10  # categories or columns named in a result's detail (the rest are counted)


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


class MissingShare:
    """The rise in the share of missing values: current share minus the reference's.

    A drop is not a problem and is reported as a negative statistic. The p-value is the one-sided
    pooled two-proportion z-test of "the current share is higher".
    """

    name: ClassVar[str] = "missing"
    kind: ClassVar[TestFamily] = "quality"
    default_threshold: ClassVar[float] = 0.05
    higher_is_drift: ClassVar[bool] = True
    applies_to: ClassVar[tuple[ColumnKind, ...]] = ("numeric", "categorical")

    def score(self, ref: ColumnSketch, cur: CurrentColumn) -> Score:
        ref_rows = ref.count + ref.missing
        if cur.rows == 0:
            return Score.skip("the current window has no rows")
        if ref_rows == 0:
            return Score.skip("the reference has no rows")
        ref_share = _share(ref.missing, ref_rows)
        cur_share = _share(cur.missing, cur.rows)
        pooled = (ref.missing + cur.missing) / (ref_rows + cur.rows)
        spread = math.sqrt(pooled * (1 - pooled) * (1 / ref_rows + 1 / cur.rows))
        if spread > 0:
            p_value = 0.5 * math.erfc((cur_share - ref_share) / spread / math.sqrt(2.0))
        else:  # both sides all present (or all missing): nothing rose
            p_value = 1.0
        # Facts only when there is something to say: a result's JSON stays small on wide tables.
        detail = {"reference": ref_share, "current": cur_share} if ref_share or cur_share else {}
        return Score(cur_share - ref_share, p_value, detail)


class OutOfRange:
    """The share of current values below the reference's minimum or above its maximum.

    Read from the current column's counts on the reference's grid (shared with the CDF tests),
    so it costs no extra pass. Under no drift about 2 / (reference rows + 1) of values fall
    outside, so any share near the threshold is a real change of range.
    """

    name: ClassVar[str] = "out_of_range"
    kind: ClassVar[TestFamily] = "quality"
    default_threshold: ClassVar[float] = 0.05
    higher_is_drift: ClassVar[bool] = True
    applies_to: ClassVar[tuple[ColumnKind, ...]] = ("numeric",)

    def score(self, ref: ColumnSketch, cur: CurrentColumn) -> Score:
        if ref.kind != "numeric" or cur.kind != "numeric":
            return Score.skip("out_of_range applies to numeric columns")
        if ref.count == 0:
            return Score.skip("the reference has no values in this column")
        if cur.count == 0:
            return Score.skip("the current window has no values in this column")
        le, lt = cur.grid_counts
        below = int(lt[0])  # values < the reference's minimum (grid[0])
        above = cur.count - int(le[-1])  # values > its maximum (grid[-1])
        detail: dict[str, Any] = {}
        if below or above:
            detail = {"below": below, "above": above, "min": ref.min, "max": ref.max}
        return Score(_share(below + above, cur.count), None, detail)


class NewCategories:
    """The share of current values whose category the reference never had.

    Needs the reference's full category list: when it kept only its most frequent categories
    (more than the sketch's limit), a category missing from the list may still have been seen,
    and the check is skipped rather than guess.
    """

    name: ClassVar[str] = "new_categories"
    kind: ClassVar[TestFamily] = "quality"
    default_threshold: ClassVar[float] = 0.05
    higher_is_drift: ClassVar[bool] = True
    applies_to: ClassVar[tuple[ColumnKind, ...]] = ("categorical",)

    def score(self, ref: ColumnSketch, cur: CurrentColumn) -> Score:
        if ref.kind != "categorical" or cur.kind != "categorical":
            return Score.skip("new_categories applies to categorical columns")
        if not ref.complete:
            return Score.skip(
                f"the reference lists only its {len(ref.categories)} most frequent of "
                f"{ref.n_categories} categories, so a new one cannot be told from a rare one"
            )
        if cur.count == 0:
            return Score.skip("the current window has no values in this column")
        known = set(ref.categories)
        new = {label: n for label, n in cur.category_counts.items() if label not in known}
        detail: dict[str, Any] = {}
        if new:
            ranked = sorted(new, key=lambda label: (-new[label], label))
            detail = {"new": ranked[:_LISTED], "distinct": len(new)}
        return Score(_share(sum(new.values()), cur.count), None, detail)


def _parses_as_number(counts: dict[str, int]) -> float:
    total = parsed = 0
    for label, n in counts.items():
        total += n
        try:
            float(label)
        except ValueError:
            continue
        parsed += n
    return _share(parsed, total)


class TypeChange:
    """1 when the column's kind differs from the reference's (numeric vs text), else 0.

    Width changes within a kind (int64 became float64 once a value went missing) are not
    flagged. When numbers arrive as text, ``detail["numeric_text"]`` gives the share of the
    current labels that still parse as numbers: near 1 points at a serialization change
    upstream rather than at new data.
    """

    name: ClassVar[str] = "type_change"
    kind: ClassVar[TestFamily] = "quality"
    default_threshold: ClassVar[float] = 1.0
    higher_is_drift: ClassVar[bool] = True
    applies_to: ClassVar[tuple[ColumnKind, ...]] = ("numeric", "categorical")

    def score(self, ref: ColumnSketch, cur: CurrentColumn) -> Score:
        if cur.kind == ref.kind:
            return Score(0.0)
        detail: dict[str, Any] = {
            "reference": f"{ref.kind} ({ref.dtype})",
            "current": f"{cur.kind or 'unreadable'} ({cur.values.type})",
        }
        if ref.kind == "numeric" and cur.kind == "categorical":
            detail["numeric_text"] = _parses_as_number(cur.category_counts)
        return Score(1.0, None, detail)


class SchemaChange:
    """How many reference columns (of those the pass tests) the current window lacks; new
    columns are listed only.

    New columns do not count: a prediction log carries more than the model's inputs (request
    ids, timings), and a column the reference never had has nothing to be compared with. Both
    lists are in ``detail`` (the first ten of each, with their counts).
    """

    name: ClassVar[str] = "schema"
    kind: ClassVar[Literal["multivariate", "quality"]] = "quality"
    default_threshold: ClassVar[float] = 1.0
    higher_is_drift: ClassVar[bool] = True
    table: ClassVar[Literal[True]] = True

    def score(self, ref: ReferenceSketch, cur: CurrentTable) -> Score:
        present = set(cur.table.column_names)
        expected = [*ref.columns, *(c for c in ref.skipped if c not in ref.columns)]
        if cur.selected is not None:  # a pass over some columns expects only those
            expected = [c for c in expected if c in cur.selected]
        missing = [c for c in expected if c not in present]
        known = set(expected)
        new = [c for c in cur.table.column_names if c not in known]
        detail: dict[str, Any] = {}
        if missing:
            detail.update(missing=missing[:_LISTED], missing_count=len(missing))
        if new:
            detail.update(new=new[:_LISTED], new_count=len(new))
        return Score(float(len(missing)), None, detail)
