"""Data quality checks, each on a crafted frame: missing share, out of range, new categories,
type change and schema change, with the cases where a check does not apply."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from loopwright.monitoring.sketch import ReferenceSketch
from loopwright.monitoring.stats import TESTS, ColumnTest, CurrentColumn, CurrentTable, Score
from loopwright.monitoring.stats.quality import (
    MissingShare,
    NewCategories,
    OutOfRange,
    SchemaChange,
    TypeChange,
)


def score(
    test: ColumnTest, reference: pa.Array | list[object], window: pa.Array | list[object]
) -> Score:
    ref = ReferenceSketch.build(pa.table({"c": reference}))
    cur = pa.table({"c": window})
    return test.score(ref.columns["c"], CurrentColumn("c", cur.column("c"), ref.columns["c"]))


def test_registered_under_the_names_the_registry_gives() -> None:
    expected: dict[str, type[ColumnTest] | type[SchemaChange]] = {
        "missing": MissingShare,
        "out_of_range": OutOfRange,
        "new_categories": NewCategories,
        "type_change": TypeChange,
        "schema": SchemaChange,
    }
    for name, cls in expected.items():
        assert TESTS[name] is cls
        assert cls.name == name and cls.kind == "quality" and cls.higher_is_drift
    for cls in (MissingShare, OutOfRange, NewCategories, TypeChange):
        assert isinstance(cls(), ColumnTest)


# -- missing -------------------------------------------------------------------------------


def test_missing_share_rise_is_measured_and_tested() -> None:
    reference = [1.0] * 200
    window = [1.0] * 160 + [None] * 20 + [float("nan")] * 10 + [float("inf")] * 10
    s = score(MissingShare(), reference, window)
    assert s.statistic == pytest.approx(0.2)
    assert s.p_value is not None and s.p_value < 1e-6
    assert s.detail == {"reference": 0.0, "current": pytest.approx(0.2)}


def test_missing_share_in_a_small_window_is_not_significant() -> None:
    # 1 of 5 missing against 10 % in the reference: 0.1 above, but well within chance.
    reference = [None] * 100 + [1.0] * 900
    s = score(MissingShare(), reference, [None, 1.0, 2.0, 3.0, 4.0])
    assert s.statistic == pytest.approx(0.1)
    assert s.p_value is not None and s.p_value > 0.2


def test_missing_share_drop_and_no_missing_at_all() -> None:
    dropped = score(MissingShare(), ["a", None, "b", None], ["a", "b", "a", "b"])
    assert dropped.statistic == pytest.approx(-0.5)
    assert dropped.p_value is not None and dropped.p_value > 0.5
    clean = score(MissingShare(), [1, 2, 3], [4, 5])
    assert (clean.statistic, clean.p_value, dict(clean.detail)) == (0.0, 1.0, {})


def test_missing_share_on_empty_sides_is_skipped() -> None:
    empty = score(MissingShare(), [1.0, 2.0], pa.array([], pa.float64()))
    assert empty.skipped == "the current window has no rows" and math.isnan(empty.statistic)
    none = score(MissingShare(), pa.array([], pa.float64()), [1.0])
    assert none.skipped == "the reference has no rows"
    all_missing = score(MissingShare(), pa.nulls(4, pa.float64()), pa.nulls(3, pa.float64()))
    assert (all_missing.statistic, all_missing.p_value) == (0.0, 1.0)


# -- out of range --------------------------------------------------------------------------


def test_out_of_range_against_the_reference_min_and_max() -> None:
    reference = list(np.linspace(0.0, 10.0, 101))
    window = [-1.0, 0.0, 5.0, 10.0, 10.5, 11.0, float("nan"), None]
    s = score(OutOfRange(), reference, window)
    assert s.statistic == pytest.approx(3 / 6)  # of the 6 values present
    assert s.p_value is None
    assert s.detail == {"below": 1, "above": 2, "min": 0.0, "max": 10.0}
    inside = score(OutOfRange(), reference, [0.0, 3.3, 10.0])
    assert (inside.statistic, dict(inside.detail)) == (0.0, {})


def test_out_of_range_on_integers_and_constants() -> None:
    assert score(OutOfRange(), [5, 5, 5], [5, 5, 6, 4]).statistic == pytest.approx(0.5)
    assert score(OutOfRange(), [1, 2, 3], [2]).statistic == 0.0


def test_out_of_range_does_not_apply_or_cannot_run() -> None:
    text = score(OutOfRange(), ["a", "b"], ["c"])
    assert text.skipped == "out_of_range applies to numeric columns"
    type_changed = score(OutOfRange(), [1.0, 2.0], ["1.0"])
    assert type_changed.skipped is not None
    no_values = score(OutOfRange(), [1.0, 2.0], pa.nulls(3, pa.float64()))
    assert no_values.skipped is not None and "no values" in no_values.skipped
    no_reference = score(OutOfRange(), pa.nulls(3, pa.float64()), [1.0])
    assert no_reference.skipped is not None and "reference" in no_reference.skipped
    assert OutOfRange.applies_to == ("numeric",)


# -- new categories ------------------------------------------------------------------------


def test_new_categories_share_and_the_most_frequent_listed() -> None:
    reference = ["a", "b", "c"] * 10
    window = ["a"] * 6 + ["zeta"] * 3 + ["eta"] + [None] * 5
    s = score(NewCategories(), reference, window)
    assert s.statistic == pytest.approx(4 / 10)
    assert s.detail == {"new": ["zeta", "eta"], "distinct": 2}
    same = score(NewCategories(), reference, ["c", "a"])
    assert (same.statistic, dict(same.detail)) == (0.0, {})


def test_new_categories_on_booleans_and_dictionaries() -> None:
    assert score(NewCategories(), [True, True], [True, False]).statistic == pytest.approx(0.5)
    ref = pa.array(["x", "y"]).dictionary_encode()
    cur = pa.array(["x", "w", "w", "y"]).dictionary_encode()
    s = score(NewCategories(), ref, cur)
    assert s.statistic == pytest.approx(0.5) and s.detail["new"] == ["w"]


def test_new_categories_are_not_guessed_from_a_truncated_reference() -> None:
    reference = [f"user{i}" for i in range(1500)]  # more than the sketch lists
    s = score(NewCategories(), reference, ["user1", "someone"])
    assert s.skipped is not None and "most frequent" in s.skipped
    assert score(NewCategories(), [1, 2], [3]).skipped is not None  # numeric: does not apply
    empty = score(NewCategories(), ["a"], pa.nulls(2, pa.string()))
    assert empty.skipped is not None


# -- type change ---------------------------------------------------------------------------


def test_numbers_that_became_text_are_flagged_with_how_many_still_parse() -> None:
    s = score(TypeChange(), [1.5, 2.0, 3.0], ["1.5", "2", "n/a", "3"])
    assert s.statistic == 1.0
    assert s.detail == {
        "reference": "numeric (double)",
        "current": "categorical (string)",
        "numeric_text": pytest.approx(0.75),
    }


def test_text_that_became_numbers_and_unreadable_types() -> None:
    back = score(TypeChange(), ["a", "b"], [1, 2])
    assert back.statistic == 1.0 and "numeric_text" not in back.detail
    nested = score(TypeChange(), [1.0], pa.array([[1.0]]))
    assert nested.statistic == 1.0 and str(nested.detail["current"]).startswith("unreadable")


def test_a_wider_number_type_is_not_a_type_change() -> None:
    widened = score(TypeChange(), pa.array([1, 2], pa.int32()), [1.5, None])
    assert (widened.statistic, dict(widened.detail)) == (0.0, {})
    assert score(TypeChange(), ["a"], pa.array(["a"]).dictionary_encode()).statistic == 0.0


# -- schema --------------------------------------------------------------------------------


def test_schema_counts_missing_columns_and_lists_new_ones() -> None:
    # A list of strings: no test reads it (a numeric vector would be tested by position).
    reference = pa.table({"a": [1.0], "b": ["x"], "emb": pa.array([["u", "v"]])})
    ref = ReferenceSketch.build(reference)
    window = pa.table({"a": [2.0], "request_id": ["r1"], "extra": [1]})
    s = SchemaChange().score(ref, CurrentTable(window, {}))
    assert s.statistic == 2.0  # b, and emb: a column no test reads is still expected
    assert s.detail == {
        "missing": ["b", "emb"],
        "missing_count": 2,
        "new": ["request_id", "extra"],
        "new_count": 2,
    }
    unchanged = SchemaChange().score(ref, CurrentTable(reference, {}))
    assert (unchanged.statistic, dict(unchanged.detail)) == (0.0, {})


def test_schema_expects_only_the_columns_the_pass_tests() -> None:
    # A reference sketched with outputs a deployment does not log (predict_proba) must not make
    # every run of a monitor that tests the logged columns report a schema change.
    ref = ReferenceSketch.build(pa.table({"input.a": [1.0], "output.proba[0]": [0.5]}))
    window = pa.table({"input.a": [2.0]})
    asked = SchemaChange().score(ref, CurrentTable(window, {}, ["input.a"]))
    assert (asked.statistic, dict(asked.detail)) == (0.0, {})
    everything = SchemaChange().score(ref, CurrentTable(window, {}))
    assert everything.detail["missing"] == ["output.proba[0]"]


def test_schema_lists_at_most_ten_names_but_counts_all() -> None:
    ref = ReferenceSketch.build(pa.table({f"c{i}": [1.0] for i in range(25)}))
    s = SchemaChange().score(ref, CurrentTable(pa.table({"other": [1]}), {}))
    assert s.statistic == 25.0
    assert len(s.detail["missing"]) == 10 and s.detail["missing_count"] == 25
    empty_window = SchemaChange().score(ref, CurrentTable(pa.table({}), {}))
    assert empty_window.statistic == 25.0


# -- through compare -----------------------------------------------------------------------


def test_compare_runs_the_checks_on_the_columns_they_read() -> None:
    from loopwright.monitoring.compare import compare

    rng = np.random.default_rng(0)
    n = 2000
    reference = pa.table(
        {
            "age": rng.uniform(18, 90, n),
            "plan": rng.choice(["free", "pro"], n),
            "dropped": rng.normal(size=n),
        }
    )
    age = rng.uniform(18, 120, n)  # older customers than training ever saw
    age[: n // 4] = np.nan
    window = pa.table({"age": age, "plan": rng.choice(["free", "pro", "team"], n)})
    result = compare(reference, window, distributions=False)
    quality = {(r.column, r.test): r for r in result.tests if r.kind == "quality"}
    assert quality[("age", "missing")].drifted
    assert quality[("age", "out_of_range")].drifted
    assert quality[("plan", "new_categories")].drifted
    assert quality[("plan", "new_categories")].detail["new"] == ["team"]
    assert quality[("*", "schema")].drifted
    assert quality[("*", "schema")].detail["missing"] == ["dropped"]
    assert not quality[("age", "type_change")].drifted
    # A check is not reported on a column kind it does not read.
    assert ("plan", "out_of_range") not in quality and ("age", "new_categories") not in quality
