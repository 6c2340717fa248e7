"""Multivariate drift tests (mmd, classifier): power on a shift no single column shows, null
calibration, constant and missing values, tiny windows, determinism, the optional sklearn."""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pytest

from loopwright.monitoring.sketch import ReferenceSketch
from loopwright.monitoring.stats import TESTS, CurrentColumn, CurrentTable, Score, TableTest
from loopwright.monitoring.stats.multivariate import (
    MMD,
    ClassifierTest,
    classifier_auc,
    encode,
    mmd,
)

Matrix = npt.NDArray[np.float64]
ALPHA = 0.05


def correlated(rng: np.random.Generator, n: int, rho: float) -> pa.Table:
    """Two standard normal columns with correlation ``rho`` plus a categorical one: flipping
    ``rho`` leaves every column's own distribution unchanged."""
    xy = rng.multivariate_normal([0.0, 0.0], [[1.0, rho], [rho, 1.0]], size=n)
    colour = rng.choice(["red", "green", "blue"], size=n)
    return pa.table({"x": xy[:, 0], "y": xy[:, 1], "colour": colour})


def current(ref: ReferenceSketch, table: pa.Table) -> CurrentTable:
    columns = {
        name: CurrentColumn(name, table.column(name), ref.columns[name])
        for name in table.column_names
        if name in ref.columns
    }
    return CurrentTable(table, columns)


def run(test: Any, reference: pa.Table, window: pa.Table) -> Score:
    ref = ReferenceSketch.build(reference)
    score = test.score(ref, current(ref, window))
    assert isinstance(score, Score)
    return score


def flags(test: Any, score: Score) -> bool:
    """The verdict compare gives a single test: effect size reached and the null rejected."""
    return (
        score.skipped is None
        and score.statistic >= type(test).default_threshold
        and score.p_value is not None
        and score.p_value < ALPHA
    )


ALL = [MMD(), ClassifierTest(backend="sklearn"), ClassifierTest(backend="numpy")]
IDS = ["mmd", "classifier-sklearn", "classifier-numpy"]


def test_registered_under_the_names_the_registry_gives() -> None:
    assert TESTS["mmd"] is MMD
    assert TESTS["classifier"] is ClassifierTest
    for cls in (MMD, ClassifierTest):
        assert isinstance(cls(), TableTest)
        assert cls.kind == "multivariate"
        assert cls.higher_is_drift


@pytest.mark.parametrize("test", ALL, ids=IDS)
def test_a_correlation_flip_is_found_though_no_column_moved(test: Any) -> None:
    rng = np.random.default_rng(1)
    reference, window = correlated(rng, 3000, 0.8), correlated(rng, 800, -0.8)
    score = run(test, reference, window)
    assert flags(test, score), score
    assert score.detail["columns"] == 3
    # The columns alone do not move: the reference's per-column tests see nothing.
    if "ks" in TESTS:
        ref = ReferenceSketch.build(reference)
        ks = TESTS["ks"]()
        for name in ("x", "y"):
            col = CurrentColumn(name, window.column(name), ref.columns[name])
            p = ks.score(ref.columns[name], col).p_value
            assert p is not None and p > 0.01, (name, p)


@pytest.mark.parametrize("test", ALL, ids=IDS)
def test_no_drift_is_not_flagged_on_a_large_window(test: Any) -> None:
    rng = np.random.default_rng(2)
    score = run(test, correlated(rng, 3000, 0.8), correlated(rng, 3000, 0.8))
    assert not flags(test, score), score
    assert score.detail["rows"] == [1000, 1000]  # bounded subsample on both sides


def false_alarm_bound(pairs: int) -> float:
    return ALPHA + 2 * math.sqrt(ALPHA * (1 - ALPHA) / pairs)


def test_mmd_null_calibration() -> None:
    rng = np.random.default_rng(3)
    pairs = 300
    p = [
        mmd(rng.normal(size=(40, 3)), rng.normal(size=(50, 3)), permutations=99, seed=i).p_value
        for i in range(pairs)
    ]
    assert np.mean(np.array(p) < ALPHA) <= false_alarm_bound(pairs)
    # and the p-values are not all large (a test that never rejects passes the line above)
    assert 0.3 < float(np.mean(p)) < 0.7


@pytest.mark.parametrize("backend", ["numpy", "sklearn"])
def test_classifier_null_calibration(backend: str) -> None:
    rng = np.random.default_rng(4)
    pairs, rows = (300, 60) if backend == "numpy" else (60, 40)
    p = [
        classifier_auc(
            rng.normal(size=(rows, 3)), rng.normal(size=(rows, 3)), seed=i, backend=backend
        ).p_value
        for i in range(pairs)
    ]
    assert np.mean(np.array(p) < ALPHA) <= false_alarm_bound(pairs)
    assert 0.3 < float(np.mean(p)) < 0.8


def test_mmd_power_on_a_mean_shift_and_its_p_value_is_never_zero() -> None:
    rng = np.random.default_rng(5)
    out = mmd(rng.normal(size=(100, 2)), rng.normal(1.0, size=(100, 2)), permutations=50)
    assert out.p_value == pytest.approx(1 / 51)
    assert out.mmd2 > 0.05
    assert out.bandwidth > 0


def test_mmd_of_identical_rows_is_zero() -> None:
    same = np.ones((20, 3))
    out = mmd(same, same.copy())
    assert (out.mmd2, out.p_value) == (0.0, 1.0)


@pytest.mark.parametrize("test", ALL, ids=IDS)
def test_constant_columns(test: Any) -> None:
    rng = np.random.default_rng(6)
    n = 400
    reference = pa.table({"k": np.full(n, 3.0), "z": rng.normal(size=n)})
    same = pa.table({"k": np.full(n, 3.0), "z": rng.normal(size=n)})
    moved = pa.table({"k": np.full(n, 4.0), "z": rng.normal(size=n)})
    assert not flags(test, run(test, reference, same))
    assert flags(test, run(test, reference, moved))
    # Everything constant and equal: a clear "no drift", not a division by zero.
    flat = pa.table({"k": np.full(n, 3.0)})
    score = run(test, flat, flat)
    assert score.skipped is None and not flags(test, score)
    assert math.isfinite(score.statistic)


@pytest.mark.parametrize("test", ALL, ids=IDS)
def test_missing_values(test: Any) -> None:
    # (seed 7 drew one of the ~5 % of no-drift pairs mmd flags: a false alarm by chance that
    # test_mmd_null_calibration bounds; 100 such pairs measured 2 %)
    rng = np.random.default_rng(17)
    n = 600

    def frame(missing_share: float) -> pa.Table:
        x = rng.normal(size=n)
        x[rng.random(n) < missing_share] = np.nan
        y = rng.normal(size=n)
        y[: int(n * missing_share)] = np.inf  # infinities count as missing
        return pa.table({"x": x, "y": y})

    reference = frame(0.1)
    assert not flags(test, run(test, reference, frame(0.1)))
    # Only the share of missing values moves: the 0/1 "missing" columns carry it.
    assert flags(test, run(test, reference, frame(0.6)))
    # Nulls (not NaN) in an integer column, and a column entirely missing in the window.
    ints = pa.table({"i": pa.array([1, None, 3] * 100, pa.int64()), "x": rng.normal(size=300)})
    empty = pa.table({"i": pa.nulls(300, pa.int64()), "x": rng.normal(size=300)})
    score = run(test, ints, empty)
    assert score.skipped is None and math.isfinite(score.statistic)


@pytest.mark.parametrize("test", ALL, ids=IDS)
def test_tiny_windows_give_a_clear_result(test: Any) -> None:
    rng = np.random.default_rng(8)
    reference = correlated(rng, 500, 0.5)
    for n in (0, 1, 3):
        score = run(test, reference, correlated(rng, n, 0.5))
        assert score.skipped is not None and "rows a side" in score.skipped
        assert math.isnan(score.statistic) and score.p_value is None
    minimum = 5 if isinstance(test, MMD) else 20
    score = run(test, reference, correlated(rng, minimum, 0.5))
    assert score.skipped is None and math.isfinite(score.statistic)
    assert score.p_value is not None and 0 < score.p_value <= 1


def test_categorical_shift_and_a_type_change_are_encoded() -> None:
    rng = np.random.default_rng(9)
    n = 500
    reference = pa.table(
        {"c": rng.choice(["a", "b"], size=n), "num": rng.integers(0, 3, size=n).astype(float)}
    )
    window = pa.table(
        {
            "c": rng.choice(["a", "b", "new"], size=n, p=[0.3, 0.3, 0.4]),
            # numbers now arrive as text: one-hot on both sides, the column is kept
            "num": [str(v) for v in rng.integers(0, 3, size=n).astype(float)],
        }
    )
    ref = ReferenceSketch.build(reference)
    enc = encode(ref, window)
    assert enc.columns == ("c", "num")
    assert enc.reference.shape[0] == n and enc.current.shape[0] == n
    # one-hot cells are sqrt(1/2): two different categories are one unit apart
    assert np.allclose(np.linalg.norm(enc.reference, axis=1), math.sqrt(1.0))
    assert flags(MMD(), MMD().score(ref, current(ref, window)))


def test_columns_no_test_reads_are_left_out_and_said() -> None:
    rng = np.random.default_rng(10)
    n = 50
    reference = pa.table({"x": rng.normal(size=n), "v": pa.array([[1.0, 2.0]] * n)})
    ref = ReferenceSketch.build(reference)
    window = pa.table({"x": rng.normal(size=n), "v": pa.array([[1.0, 2.0]] * n)})
    enc = encode(ref, window, ["x", "v", "absent"])
    assert enc.columns == ("x",)
    assert enc.left_out == ("v", "absent")
    only_lists = pa.table({"v": pa.array([[1.0]] * n)})
    ref_lists = ReferenceSketch.build(only_lists)
    score = MMD().score(ref_lists, CurrentTable(only_lists, {}))
    assert score.skipped is not None


@pytest.mark.parametrize("test_cls", [MMD, ClassifierTest])
def test_deterministic_under_a_seed(test_cls: Any) -> None:
    rng = np.random.default_rng(11)
    reference, window = correlated(rng, 3000, 0.3), correlated(rng, 2500, 0.35)
    first = run(test_cls(seed=7), reference, window)
    again = run(test_cls(seed=7), reference, window)
    assert (first.statistic, first.p_value) == (again.statistic, again.p_value)
    other = run(test_cls(seed=8), reference, window)
    assert (other.statistic, other.p_value) != (first.statistic, first.p_value)


def test_without_sklearn_the_numpy_model_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    # An import of a module mapped to None raises ImportError: sklearn as if not installed.
    monkeypatch.setitem(sys.modules, "sklearn.ensemble", None)
    rng = np.random.default_rng(12)
    reference, window = correlated(rng, 500, 0.8), correlated(rng, 500, -0.8)
    score = run(ClassifierTest(), reference, window)
    assert score.detail["model"] == "logistic_quadratic"
    assert flags(ClassifierTest(), score)
    with pytest.raises(ImportError, match=r"loopwright\[sklearn\]"):
        run(ClassifierTest(backend="sklearn"), reference, window)


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="permutations"):
        MMD(permutations=0)
    with pytest.raises(ValueError, match="backend"):
        ClassifierTest(backend="torch")
    with pytest.raises(ValueError, match="folds"):
        ClassifierTest(folds=1)
    with pytest.raises(ValueError, match="at least 2 rows"):
        mmd(np.zeros((1, 2)), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="rows per fold"):
        classifier_auc(np.zeros((3, 2)), np.zeros((30, 2)))


# -- through compare -------------------------------------------------------------------------


def test_compare_reports_a_flip_as_multivariate_drift_of_the_whole_table() -> None:
    from loopwright.monitoring.compare import compare

    rng = np.random.default_rng(13)
    reference, window = correlated(rng, 3000, 0.8), correlated(rng, 800, -0.8)
    result = compare(reference, window, tests=["wasserstein", "mmd", "classifier"], p_values=True)
    table_results = {r.test: r for r in result.tests if r.column == "*"}
    assert set(table_results) == {"mmd", "classifier"}
    for r in table_results.values():
        assert r.kind == "multivariate" and r.drifted
        assert r.p_value is not None and r.p_value < ALPHA
    assert not result.drifted_columns  # no column moved on its own ...
    assert result.dataset_drift  # ... yet the table did, as the rule says
    assert "multivariate" in result.rule
    calm = compare(reference, correlated(rng, 800, 0.8), tests=["mmd", "classifier"])
    assert not calm.dataset_drift
    assert not any(r.drifted for r in calm.tests)


def test_compare_flags_a_shift_of_the_predicted_probability_as_prediction_drift() -> None:
    from loopwright.monitoring.compare import compare

    rng = np.random.default_rng(14)

    def log(n: int, bias: float) -> pa.Table:
        x = rng.normal(size=n)
        proba = 1 / (1 + np.exp(-(1.5 * x + bias)))
        label = np.where(proba > 0.5, "yes", "no")
        return pa.table({"input.x": x, "output.proba": proba, "output.label": label})

    # Same inputs, a new model version whose scores moved up (bias 0 -> 1).
    result = compare(log(5000, 0.0), log(2000, 1.0))
    by = {(r.column, r.test): r for r in result.tests}
    moved = [r for (column, _), r in by.items() if column.startswith("output.") and r.drifted]
    assert {r.column for r in moved} == {"output.proba", "output.label"}
    assert all(r.kind == "prediction" for r in moved)
    inputs = [r for (column, _), r in by.items() if column == "input.x" and r.kind == "drift"]
    assert inputs and not any(r.drifted for r in inputs)
