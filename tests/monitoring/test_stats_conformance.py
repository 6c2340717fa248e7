"""Conformance suite: every registered test (``stats.TESTS``) through ``compare``'s verdict.

Null calibration (false alarms within alpha + 2 standard errors), power on a known shift,
missing values, constant columns, an empty window and unseen categories. A family whose module
is absent is simply not in ``TESTS``; the expected names are checked separately so a missing
module cannot pass unnoticed once it is committed.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from loopwright.monitoring.compare import compare
from loopwright.monitoring.entities import DriftResult, TestResult
from loopwright.monitoring.stats import TESTS, ColumnTest, TableTest, default_tests

ALPHA = 0.05
ALL = sorted(TESTS)
DRIFT = [n for n in ALL if TESTS[n].kind in ("numeric", "categorical", "univariate")]
TABLE = [n for n in ALL if getattr(TESTS[n], "table", False)]
MULTIVARIATE = [n for n in TABLE if TESTS[n].kind == "multivariate"]


def _kinds(name: str) -> list[str]:
    kind = TESTS[name].kind
    if kind in ("numeric", "categorical"):
        return [kind]
    # univariate and table tests read both; a quality check may name the kinds it reads
    return list(getattr(TESTS[name], "applies_to", ("numeric", "categorical")))


def _frame(rng: np.random.Generator, n: int, kind: str, shift: float = 0.0) -> pa.Table:
    """One column ``x`` (plus ``y`` for table tests) of ``kind``, shifted by ``shift``."""
    if kind == "numeric":
        return pa.table({"x": rng.normal(shift, 1.0, n), "y": rng.normal(shift, 1.0, n)})
    p = np.array([0.4, 0.3, 0.2, 0.1])
    if shift:
        p = p[::-1]
    labels = np.array(["a", "b", "c", "d"])
    return pa.table({"x": labels[rng.choice(4, n, p=p)], "y": labels[rng.choice(4, n, p=p)]})


def _results(result: DriftResult, name: str) -> list[TestResult]:
    return [r for r in result.tests if r.test == name]


def _run(name: str, ref: pa.Table, cur: pa.Table, **kw: Any) -> list[TestResult]:
    columns = () if name in TABLE else ("x",)
    return _results(compare(ref, cur, tests=[name], columns=columns, **kw), name)


def test_registry_lists_every_family() -> None:
    expected = {"ks", "wasserstein", "psi", "jensenshannon", "chi2", "linf"}
    assert expected <= set(TESTS)
    assert default_tests("numeric") == ("wasserstein",)
    assert default_tests("categorical") == ("jensenshannon",)
    for name in ALL:
        cls = TESTS[name]
        assert cls.name == name
        assert isinstance(cls(), TableTest if name in TABLE else ColumnTest)
        assert isinstance(cls.default_threshold, float)
        assert isinstance(cls.higher_is_drift, bool)
    assert "nope" not in TESTS
    with pytest.raises(KeyError):
        TESTS["nope"]


def test_default_tests_refuses_an_unknown_kind() -> None:
    with pytest.raises(ValueError, match="kinds: numeric, categorical"):
        default_tests("text")


@pytest.mark.parametrize("name", ALL)
def test_null_calibration(name: str) -> None:
    """Under no drift, the default verdict false-alarms at most alpha + 2 SE of the time,
    at n = 200, where an effect size alone (W1/std >= 0.1) would flag often."""
    rng = np.random.default_rng(2026)
    pairs = 20 if name in TABLE else 400  # table tests cost ~0.1-0.3 s a pair
    for kind in _kinds(name):
        alarms = 0
        for _ in range(pairs):
            found = _run(name, _frame(rng, 200, kind), _frame(rng, 200, kind))
            alarms += any(r.drifted for r in found)
        bound = ALPHA + 2 * math.sqrt(ALPHA * (1 - ALPHA) / pairs)
        assert alarms / pairs <= bound, f"{name} on {kind}: {alarms}/{pairs} false alarms"


@pytest.mark.parametrize("name", DRIFT + MULTIVARIATE)
def test_power_on_a_known_shift(name: str) -> None:
    rng = np.random.default_rng(7)
    for kind in _kinds(name):
        found = _run(name, _frame(rng, 2000, kind), _frame(rng, 2000, kind, shift=1.0))
        assert found and all(r.drifted for r in found), (kind, found)


EFFECT_SIZES = [n for n in DRIFT if TESTS[n].higher_is_drift and "numeric" in _kinds(n)]


@pytest.mark.parametrize("name", EFFECT_SIZES)
def test_a_negligible_shift_at_large_n_is_not_drift(name: str) -> None:
    """At 200k rows a 0.02 sigma shift is "significant" (the null test rejects) but its effect
    size stays under the threshold, so the verdict is stable as n grows."""
    rng = np.random.default_rng(3)
    ref = pa.table({"x": rng.normal(0, 1, 200_000)})
    cur = pa.table({"x": rng.normal(0.02, 1, 200_000)})
    (found,) = _run(name, ref, cur, p_values=True)
    assert found.p_value is not None and found.p_value < ALPHA, found
    assert not found.drifted, found


@pytest.mark.parametrize("name", ALL)
def test_missing_values_are_left_out(name: str) -> None:
    rng = np.random.default_rng(5)
    for kind in _kinds(name):
        ref, cur = _frame(rng, 500, kind), _frame(rng, 500, kind)
        holes = rng.uniform(size=500) < 0.2
        x = cur.column("x").to_numpy(zero_copy_only=False)
        masked = pa.array(x, mask=holes)
        cur = cur.set_column(0, "x", masked)
        found = _run(name, ref, cur)
        assert found
        for r in found:
            assert "skipped" not in r.detail, r
            assert math.isfinite(r.statistic), r


@pytest.mark.parametrize("name", [n for n in DRIFT if "numeric" in _kinds(n)])
def test_constant_columns(name: str) -> None:
    same = _run(name, pa.table({"x": np.full(300, 4.0)}), pa.table({"x": np.full(300, 4.0)}))
    assert same and not any(r.drifted for r in same), same
    moved = _run(name, pa.table({"x": np.full(300, 4.0)}), pa.table({"x": np.full(300, 9.0)}))
    assert moved and all(r.drifted for r in moved), moved


@pytest.mark.parametrize("name", ALL)
def test_empty_current_window(name: str) -> None:
    rng = np.random.default_rng(2)
    for kind in _kinds(name):
        ref = _frame(rng, 300, kind)
        result = compare(ref, ref.slice(0, 0), tests=[name])
        assert result.current_rows == 0
        assert not result.dataset_drift
        for r in _results(result, name):
            assert not r.drifted, r


@pytest.mark.parametrize("name", [n for n in DRIFT if "categorical" in _kinds(n)])
def test_unseen_categories(name: str) -> None:
    rng = np.random.default_rng(11)
    ref = pa.table({"x": rng.choice(["a", "b", "c"], 1000)})
    cur = pa.table({"x": rng.choice(["a", "b", "zz"], 1000)})
    (found,) = _run(name, ref, cur)
    assert found.drifted
    assert found.detail["new_categories"] == ["zz"]
    assert found.detail["missing_categories"] == ["c"]


@pytest.mark.parametrize("name", [n for n in DRIFT if "categorical" in _kinds(n)])
def test_booleans_and_dictionaries_are_categories(name: str) -> None:
    rng = np.random.default_rng(4)
    ref = pa.table({"x": pa.array(rng.uniform(size=800) < 0.5)})
    cur = pa.table({"x": pa.array(rng.uniform(size=800) < 0.95)})
    (flag,) = _run(name, ref, cur)
    assert flag.drifted
    words = np.array(["on", "off"])
    ref = pa.table({"x": pa.array(words[rng.integers(0, 2, 800)]).dictionary_encode()})
    cur = pa.table({"x": pa.array(words[rng.integers(0, 2, 800)]).dictionary_encode()})
    (calm,) = _run(name, ref, cur)
    assert "skipped" not in calm.detail
