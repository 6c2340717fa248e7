"""compare(): the drift pass on wide mixed frames, its validation, verdicts and edge cases."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy import stats

from loopwright.errors import InvalidInput
from loopwright.monitoring.compare import compare
from loopwright.monitoring.entities import DriftResult, TestResult
from loopwright.monitoring.sketch import ReferenceSketch
from loopwright.monitoring.stats.corrections import correct


def _wide(n: int, seed: int, *, drift: bool) -> pa.Table:
    """20 numeric and 5 categorical columns; with ``drift``, num_00 +0.5 sd, num_01 x1.5 and
    cat_0's popularity reversed (the anchors' workload, smaller)."""
    rng = np.random.default_rng(seed)
    cols: dict[str, object] = {}
    for i in range(20):
        x: np.ndarray[Any, Any] = [rng.normal(size=n), rng.lognormal(size=n),
             rng.uniform(size=n), rng.exponential(size=n), rng.poisson(30, n)][i % 5]  # fmt: skip
        if drift and i == 0:
            x = x + 0.5
        if drift and i == 1:
            x = x * 1.5
        cols[f"num_{i:02d}"] = x
    for j, k in enumerate([4, 6, 10, 20, 50]):
        p = 1 / np.arange(1, k + 1)
        p = (p / p.sum())[::-1] if drift and j == 0 else p / p.sum()
        cols[f"cat_{j}"] = np.array([f"c{v}" for v in range(k)])[rng.choice(k, n, p=p)]
    return pa.table(cols)


def _by(result: DriftResult, column: str, test: str) -> TestResult:
    (found,) = [r for r in result.tests if r.column == column and r.test == test]
    return found


def test_wide_mixed_frame_flags_the_shifted_columns_only() -> None:
    sketch = ReferenceSketch.build(_wide(20_000, 1, drift=False))
    result = compare(sketch, _wide(20_000, 2, drift=True), p_values=True)
    assert set(result.drifted_columns) == {"num_00", "num_01", "cat_0"}
    assert result.share_drifted == pytest.approx(3 / 25)
    assert not result.dataset_drift  # 12 % < the 30 % rule
    assert "30%" in result.rule and result.correction == "bh"
    assert result.reference_rows == result.current_rows == 20_000
    w = _by(result, "num_00", "wasserstein")
    assert w.kind == "drift" and w.statistic > 0.4 and w.p_value is not None and w.p_value < 1e-9
    assert _by(result, "cat_0", "jensenshannon").drifted
    assert {d.column for d in result.distributions} == {f"num_{i:02d}" for i in range(20)} | {
        f"cat_{j}" for j in range(5)
    }
    assert compare(sketch, _wide(20_000, 3, drift=True), drift_share=0.1).dataset_drift


def test_same_result_serial_and_threaded_and_from_pandas() -> None:
    ref, cur = _wide(3000, 4, drift=False), _wide(3000, 5, drift=True)
    threaded = compare(ref, cur, tests=["ks", "psi", "chi2"], max_workers=4)
    serial = compare(ref, cur.to_pandas(), tests=["ks", "psi", "chi2"], max_workers=1)
    assert threaded.tests == serial.tests


def test_against_scipy() -> None:
    rng = np.random.default_rng(9)
    r, c = rng.normal(0, 1, 800), rng.normal(0.2, 1.1, 700)
    result = compare(pa.table({"x": r}), pa.table({"x": c}), tests=["ks", "wasserstein"],
                     p_values=True, correction="none")  # fmt: skip
    ks = stats.ks_2samp(r, c)
    assert _by(result, "x", "ks").statistic == pytest.approx(ks.statistic, abs=1e-12)
    assert _by(result, "x", "ks").p_value == pytest.approx(ks.pvalue, rel=0.15)
    w1 = stats.wasserstein_distance(r, c) / np.std(r)
    assert _by(result, "x", "wasserstein").statistic == pytest.approx(w1, rel=0.01)
    labels = np.array(list("abcde"))
    a, b = labels[rng.integers(0, 5, 400)], labels[rng.integers(0, 4, 300)]
    result = compare(pa.table({"c": a}), pa.table({"c": b}), tests=["chi2"], p_values=True)
    table = [[np.sum(a == v) for v in labels], [np.sum(b == v) for v in labels]]
    expected = stats.chi2_contingency(table, correction=False)
    found = _by(result, "c", "chi2")
    assert found.detail["chi2"] == pytest.approx(expected.statistic)
    assert found.statistic == pytest.approx(expected.pvalue) and found.drifted


@pytest.mark.filterwarnings("ignore:p-value (floored|capped)")
def test_anderson_darling_against_scipy() -> None:
    rng = np.random.default_rng(20)
    for n, m, shift in [(300, 250, 0.0), (800, 700, 0.15), (20_000, 10_000, 0.03)]:
        r, c = rng.normal(0, 1, n), rng.normal(shift, 1, m)
        (found,) = compare(pa.table({"x": r}), pa.table({"x": c}), tests=["anderson"]).tests
        expected = stats.anderson_ksamp([r, c], variant="midrank")
        assert found.detail["ad"] == pytest.approx(expected.statistic, rel=0.02, abs=0.1)
        assert found.statistic == pytest.approx(expected.pvalue, rel=0.1)
    tiny = compare(pa.table({"x": [1.0]}), pa.table({"x": [2.0, 3.0]}), tests=["anderson"])
    assert tiny.tests[0].detail["skipped"] == "Anderson-Darling needs at least 4 values in all"


def test_large_reference_uses_the_quantile_grid() -> None:
    rng = np.random.default_rng(10)
    r, c = rng.normal(0, 1, 200_000), rng.normal(0.3, 1, 100_000)
    result = compare(pa.table({"x": r}), pa.table({"x": c}), tests=["ks", "wasserstein"])
    d = stats.ks_2samp(r, c).statistic
    assert d - 0.001 <= _by(result, "x", "ks").statistic <= d + 1e-12
    w1 = stats.wasserstein_distance(r, c) / np.std(r)
    assert _by(result, "x", "wasserstein").statistic == pytest.approx(w1, rel=0.01)


def test_prediction_columns_and_features() -> None:
    rng = np.random.default_rng(12)
    ref = pa.table({"input.age": rng.normal(40, 5, 2000), "output.proba": rng.beta(2, 5, 2000)})
    cur = pa.table({"input.age": rng.normal(40, 5, 2000), "output.proba": rng.beta(5, 2, 2000)})
    result = compare(ref, cur)
    assert _by(result, "output.proba", "wasserstein").kind == "prediction"
    assert _by(result, "input.age", "wasserstein").kind == "drift"
    assert result.drifted_columns == ("output.proba",)


def test_thresholds_by_test_and_by_column() -> None:
    ref, cur = _wide(5000, 6, drift=False), _wide(5000, 7, drift=True)
    result = compare(ref, cur, tests=["psi"], thresholds={"psi": 5.0, "psi:num_00": 0.05})
    assert _by(result, "num_00", "psi").threshold == 0.05 and _by(result, "num_00", "psi").drifted
    assert _by(result, "cat_0", "psi").threshold == 5.0 and not _by(result, "cat_0", "psi").drifted


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tests": ["ks", "kolmogorov"]}, "unknown test.*'kolmogorov'.*tests: .*chi2"),
        ({"columns": ["nope"]}, "'nope' are in neither.*columns: x, c"),
        ({"thresholds": {"nope": 0.1}}, "unknown test 'nope'"),
        ({"thresholds": {"psi:nope": 0.1}}, "unknown column 'nope'"),
        ({"thresholds": {"psi": float("nan")}}, "finite number"),
        ({"thresholds": {"psi": "high"}}, "finite number"),
        ({"correction": "holm"}, "unknown correction 'holm'; corrections: bh, bonferroni, none"),
        ({"drift_share": 0.0}, "drift_share"),
        ({"alpha": 1.5}, "alpha"),
    ],
)
def test_invalid_arguments_name_the_fix(kwargs: dict[str, object], message: str) -> None:
    table = pa.table({"x": [1.0, 2.0, 3.0], "c": ["a", "b", "a"]})
    with pytest.raises(InvalidInput, match=message):
        compare(table, table, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match=r"current must be a pyarrow\.Table"):
        compare(table, {"x": [1.0]})


def test_schema_changes_never_crash() -> None:
    rng = np.random.default_rng(13)
    ref = pa.table(
        {"a": rng.normal(size=500), "gone": rng.normal(size=500), "t": rng.normal(size=500)}
    )
    cur = pa.table({"a": rng.normal(size=500), "new": rng.normal(size=500), "t": ["1.5"] * 500})
    result = compare(ref, cur, tests=["ks", "psi"])
    assert (
        _by(result, "gone", "ks").detail["skipped"] == "the column is missing from the current data"
    )
    assert math.isnan(_by(result, "gone", "ks").statistic)
    assert (
        "type changed from double (numeric) to string" in _by(result, "t", "ks").detail["skipped"]
    )
    assert _by(result, "t", "psi").detail["skipped"].startswith("the column's type changed")
    assert _by(result, "new", "ks").detail["skipped"] == "the column is not in the reference"
    assert not _by(result, "a", "ks").drifted and result.drifted_columns == ()
    assert compare(ref, cur, columns=["a"], tests=["ks"]).tests == (_by(result, "a", "ks"),)


def test_infinities_nulls_and_chunks_in_the_current_window() -> None:
    rng = np.random.default_rng(14)
    ref = pa.table({"x": rng.normal(size=1000)})
    values = rng.normal(size=900)
    chunks = [pa.array(values[:300]), pa.array([np.inf, -np.inf, np.nan, None], pa.float64()),
              pa.array(values[300:])]  # fmt: skip
    cur = pa.table({"x": pa.chunked_array(chunks)})
    result = compare(ref, cur, tests=["ks", "wasserstein", "psi"], p_values=True)
    expected = stats.ks_2samp(ref.column("x").to_numpy(), values).statistic
    assert _by(result, "x", "ks").statistic == pytest.approx(expected, abs=1e-12)
    assert all(math.isfinite(r.statistic) and not r.drifted for r in result.tests)
    (chart,) = result.distributions
    assert sum(chart.current) == pytest.approx(1.0) and len(chart.bins) == len(chart.current) + 1


def test_integer_and_boolean_columns() -> None:
    rng = np.random.default_rng(15)
    ref = pa.table({"n": rng.integers(0, 3, 1000), "b": rng.uniform(size=1000) < 0.5})
    cur = pa.table({"n": rng.integers(1, 4, 1000), "b": rng.uniform(size=1000) < 0.9})
    result = compare(ref, cur, tests=["psi", "ks", "chi2"])
    assert _by(result, "n", "psi").drifted and _by(result, "n", "ks").drifted
    assert _by(result, "b", "chi2").drifted and _by(result, "b", "psi").drifted
    (chart,) = [d for d in result.distributions if d.column == "b"]
    assert chart.kind == "categorical" and set(chart.bins) == {"true", "false"}


def test_correction_and_p_values_flag() -> None:
    ref, cur = _wide(2000, 16, drift=True), _wide(2000, 17, drift=True)
    plain = compare(ref, cur, tests=["chi2"], correction="none", p_values=True)
    bonf = compare(ref, cur, tests=["chi2"], correction="bonferroni", p_values=True)
    assert bonf.correction == "bonferroni" and plain.correction is None
    raw = [r.p_value for r in plain.tests]
    assert [r.p_value for r in bonf.tests] == pytest.approx([min(1.0, p * 5) for p in raw])  # type: ignore[operator]
    assert all(r.p_value is None for r in compare(ref, cur, tests=["chi2"]).tests)


def test_corrections() -> None:
    assert correct([0.01, 0.04, 0.5], "bh") == pytest.approx([0.03, 0.06, 0.5])
    p = [0.2, 0.001, 0.03, 0.04, 0.8]
    assert correct(p, "bh") == pytest.approx(list(stats.false_discovery_control(p)))
    assert correct(p, "bonferroni") == pytest.approx([1.0, 0.005, 0.15, 0.2, 1.0])
    assert correct(p, "none") == p and correct([], "bh") == []
    with pytest.raises(InvalidInput, match="corrections: bh"):
        correct(p, "fdr")


def test_categorical_distribution_is_capped_for_charts() -> None:
    rng = np.random.default_rng(18)
    labels = np.array([f"v{i}" for i in range(100)])
    ref = pa.table({"c": labels[rng.integers(0, 100, 5000)]})
    result = compare(ref, ref, tests=["chi2"])
    (chart,) = result.distributions
    assert len(chart.bins) == 30 and chart.bins[-1] == "<rest>"
    assert sum(chart.reference) == pytest.approx(1.0)
    assert compare(ref, ref, tests=["chi2"], distributions=False).distributions == ()


def test_pandas_frames_with_missing_values() -> None:
    ref = pd.DataFrame({"x": [1.0, 2.0, None, 4.0] * 50, "c": ["a", None, "b", "a"] * 50})
    result = compare(ref, ref.iloc[:100], tests=["ks", "chi2"])
    assert not any(r.drifted for r in result.tests)
    assert {r.column for r in result.tests} == {"x", "c"}


def test_all_null_window_column_is_not_a_type_change() -> None:
    ref = pa.table({"x": [1.0, 2.0, 3.0] * 50, "c": ["a", "b", "c"] * 50})
    cur = pa.table({"x": pa.nulls(40), "c": pa.nulls(40)})
    result = compare(ref, cur, tests=["ks", "chi2"])
    assert _by(result, "x", "ks").detail["skipped"] == "the current window has no finite value"
    assert (
        _by(result, "c", "chi2").detail["skipped"] == "the current window has no non-missing value"
    )
    assert not result.drifted_columns


def test_mixed_type_pandas_column_is_refused() -> None:
    frame = pd.DataFrame({"x": [1, "two", 3.0]})
    with pytest.raises(InvalidInput, match="current: a column cannot be read as one Arrow type"):
        compare(pa.table({"x": [1.0]}), frame)


def test_rule_names_multivariate_tests_only_when_they_ran() -> None:
    rng = np.random.default_rng(19)
    ref = pa.table({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    assert "multivariate" not in compare(ref, ref).rule
    result = compare(ref, ref, tests=["ks", "mmd"])
    assert "or a multivariate test drifts" in result.rule
    assert [r.kind for r in result.tests if r.column == "*"] == ["multivariate"]


@pytest.mark.parametrize("n", [50, 200, 600, 2000])
def test_the_defaults_keep_false_alarms_within_alpha_on_null_windows(n: int) -> None:
    """Regression (a 600-row calm window was flagged on W1/std = 0.125): with no test named,
    a window drawn like its 2,000-row reference is flagged at most alpha + 2 SE of the time per
    column, at every size, whether p-values are reported or not (the gate is always on)."""
    rng = np.random.default_rng(n)
    pairs, alarms = 300, {"x": 0, "c": 0}
    labels = np.array(["a", "b", "c"])
    p = [0.5, 0.3, 0.2]

    def draw(rows: int) -> pa.Table:
        return pa.table({"x": rng.normal(size=rows), "c": labels[rng.choice(3, rows, p=p)]})

    effect_alone = 0
    for _ in range(pairs):
        ref, cur = ReferenceSketch.build(draw(2000)), draw(n)
        quiet = compare(ref, cur, distributions=False, max_workers=1)
        shown = compare(ref, cur, distributions=False, max_workers=1, p_values=True)
        assert [r.drifted for r in quiet.tests] == [r.drifted for r in shown.tests]
        for column in alarms:
            alarms[column] += column in quiet.drifted_columns
        w1 = next(r for r in shown.tests if r.test == "wasserstein")
        assert w1.p_value is not None  # every default drift test has a null test
        effect_alone += w1.statistic >= w1.threshold
    bound = 0.05 + 2 * math.sqrt(0.05 * 0.95 / pairs)
    assert max(alarms.values()) / pairs <= bound, alarms
    if n <= 200:  # where the effect size alone would alarm often: the gate is what holds
        assert effect_alone / pairs > 0.3


def test_a_drift_test_without_a_p_value_has_not_rejected() -> None:
    """The gate reads "effect size AND null test": a drift test that gives no p-value does not
    flag on its effect size alone; a quality check (no null test by design) flags on its line."""
    from loopwright.monitoring.compare import _Raw, _verdicts
    from loopwright.monitoring.stats import TESTS
    from loopwright.monitoring.stats._base import Score

    raws = [
        _Raw("x", "wasserstein", TESTS["wasserstein"], Score(0.5, None)),
        _Raw("x", "wasserstein", TESTS["wasserstein"], Score(0.5, 0.001)),
        _Raw("x", "wasserstein", TESTS["wasserstein"], Score(0.5, 0.2)),
        _Raw("x", "out_of_range", TESTS["out_of_range"], Score(0.5, None)),
    ]
    found = _verdicts(raws, {}, "none", 0.05, True)
    assert [r.drifted for r in found] == [False, True, False, True]


def test_a_vector_column_is_compared_position_by_position() -> None:
    rng = np.random.default_rng(4)

    def proba(n: int, shift: float) -> pa.Table:
        p = np.clip(rng.beta(2, 5, n) + shift, 0, 1)
        return pa.table({"output.predict_proba": pa.array([[1 - v, v] for v in p])})

    sketch = ReferenceSketch.build(proba(2000, 0.0))
    assert list(sketch.columns) == ["output.predict_proba[0]", "output.predict_proba[1]"]
    calm = compare(sketch, proba(500, 0.0))
    moved = compare(sketch, proba(500, 0.2), columns=["output.predict_proba"])
    assert calm.drifted_columns == ()
    assert moved.drifted_columns == ("output.predict_proba[0]", "output.predict_proba[1]")
    assert {r.kind for r in moved.tests if r.column != "*" and r.test == "wasserstein"} == {
        "prediction"
    }
    one = compare(sketch, proba(500, 0.2), columns=["output.predict_proba[1]"])
    assert one.drifted_columns == ("output.predict_proba[1]",)
    with pytest.raises(InvalidInput, match=r"output.predict_proba\[2\]"):
        compare(sketch, proba(50, 0.0), columns=["output.predict_proba[2]"])
