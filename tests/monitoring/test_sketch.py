"""ReferenceSketch: exact figures, the joint sample, a safe byte form that refuses bad payloads."""

from __future__ import annotations

import io
import json
import pickle
import struct
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from loopwright.errors import InvalidInput
from loopwright.monitoring.sketch import (
    MAX_CATEGORIES,
    MAX_VECTOR_POSITIONS,
    CategoricalSketch,
    NumericSketch,
    ReferenceSketch,
    expand_vectors,
    vector_source,
)


def _table(n: int = 5000, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    x = rng.normal(10, 2, n)
    x[:50] = np.nan
    return pa.table(
        {
            "x": x,
            "k": pa.array(rng.integers(0, 5, n)),
            "c": pa.array(rng.choice(["a", "b", "c"], n)),
            "flag": pa.array(rng.uniform(size=n) < 0.3),
            "tags": pa.array([[1]] * n),  # a list column: no test reads it
        }
    )


def test_numeric_figures_are_exact() -> None:
    table = _table()
    sketch = ReferenceSketch.build(table)
    col = sketch.columns["x"]
    assert isinstance(col, NumericSketch)
    values = table.column("x").to_numpy()
    finite = np.sort(values[np.isfinite(values)])
    assert (col.count, col.missing) == (len(finite), 50)
    assert col.min == finite[0] and col.max == finite[-1]
    assert col.mean == pytest.approx(finite.mean()) and col.std == pytest.approx(finite.std())
    assert len(col.quantiles) == 1001
    # inverted CDF, in exact arithmetic: the smallest value whose CDF reaches k/1000
    n = len(finite)
    at_or_below = np.searchsorted(finite, col.quantiles, side="right")
    below = np.searchsorted(finite, col.quantiles, side="left")
    k = np.arange(1001)
    assert np.all(at_or_below * 1000 >= k * n) and np.all(below[1:] * 1000 < k[1:] * n)
    # the CDF on the grid is exact: counts of values <= and < each grid point
    np.testing.assert_array_equal(col.le, np.searchsorted(finite, col.grid, side="right"))
    np.testing.assert_array_equal(col.lt, np.searchsorted(finite, col.grid, side="left"))
    assert len(col.edges) == 9 and col.counts.sum() == col.count
    assert np.all(np.abs(col.counts / col.count - 0.1) < 0.01)  # deciles


def test_few_distinct_values_get_exact_grid_and_point_bins() -> None:
    sketch = ReferenceSketch.build(_table())
    k = sketch.columns["k"]
    assert isinstance(k, NumericSketch)
    np.testing.assert_array_equal(k.grid, [0, 1, 2, 3, 4])
    assert len(k.counts) == 11  # below, then each value and the gap after it
    assert k.counts[0::2].sum() == 0 and k.counts.sum() == k.count


def test_categorical_figures() -> None:
    sketch = ReferenceSketch.build(_table())
    c, flag = sketch.columns["c"], sketch.columns["flag"]
    assert isinstance(c, CategoricalSketch) and isinstance(flag, CategoricalSketch)
    assert set(c.categories) == {"a", "b", "c"} and c.counts.sum() == 5000 and c.complete
    assert set(flag.categories) == {"true", "false"}
    assert sketch.skipped == {"tags": "list<item: int64>"}
    assert "tags" not in sketch.columns


def test_categories_beyond_the_limit_are_pooled() -> None:
    labels = [f"v{i}" for i in range(MAX_CATEGORIES + 200)]
    table = pa.table({"c": labels + ["v0"] * 10})
    col = ReferenceSketch.build(table).columns["c"]
    assert isinstance(col, CategoricalSketch)
    assert col.categories[0] == "v0" and col.counts[0] == 11
    assert len(col.categories) == MAX_CATEGORIES and not col.complete
    assert col.other == 200 and col.n_categories == MAX_CATEGORIES + 200


def test_sample_is_bounded_joint_and_seeded() -> None:
    n = 3000
    table = pa.table({"i": np.arange(n), "twice": np.arange(n) * 2})
    sketch = ReferenceSketch.build(table, sample_rows=100, seed=4)
    sample = sketch.sample
    assert sample.num_rows == 100 and sketch.rows == n
    i, twice = sample.column("i").to_numpy(), sample.column("twice").to_numpy()
    np.testing.assert_array_equal(twice, i * 2)  # the same rows across columns
    again = ReferenceSketch.build(table, sample_rows=100, seed=4).sample
    assert again.equals(sample)
    assert ReferenceSketch.build(table, sample_rows=5000).sample.num_rows == n
    with pytest.raises(InvalidInput, match="sample_rows"):
        ReferenceSketch.build(table, sample_rows=-1)


def test_pandas_input_and_bad_inputs() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "c": ["a", "b", None]}, index=[7, 8, 9])
    sketch = ReferenceSketch.build(frame)
    assert list(sketch.columns) == ["x", "c"] and sketch.rows == 3
    assert sketch.columns["c"].missing == 1
    with pytest.raises(InvalidInput, match=r"pyarrow\.Table or a pandas\.DataFrame"):
        ReferenceSketch.build([1, 2, 3])


def test_all_missing_and_empty_columns() -> None:
    table = pa.table(
        {"x": pa.array([None, None], pa.float64()), "c": pa.array([None, None], pa.string())}
    )
    sketch = ReferenceSketch.build(table)
    x = sketch.columns["x"]
    assert isinstance(x, NumericSketch) and x.count == 0 and x.missing == 2
    back = ReferenceSketch.from_bytes(sketch.to_bytes())
    assert back.columns["x"].count == 0 and back.columns["c"].count == 0
    empty = ReferenceSketch.build(pa.table({"x": pa.array([], pa.float64())}))
    assert empty.rows == 0 and empty.columns["x"].count == 0


def test_round_trip() -> None:
    sketch = ReferenceSketch.build(_table(), sample_rows=500)
    back = ReferenceSketch.from_bytes(sketch.to_bytes())
    assert back.rows == sketch.rows and list(back.columns) == list(sketch.columns)
    assert back.skipped == sketch.skipped
    assert back.sample.schema == sketch.sample.schema
    assert back.sample.to_pandas().equals(sketch.sample.to_pandas())  # NaN-aware
    for name, col in sketch.columns.items():
        other = back.columns[name]
        assert type(other) is type(col)
        for field in col.__dataclass_fields__:
            a, b = getattr(col, field), getattr(other, field)
            if isinstance(a, np.ndarray):
                np.testing.assert_array_equal(a, b)
            elif isinstance(a, float) and np.isnan(a):
                assert np.isnan(b)
            else:
                assert a == b, (name, field)


def _sections(blob: bytes) -> list[bytes]:
    pos, parts = 9, []
    while pos < len(blob):
        (size,) = struct.unpack_from("<Q", blob, pos)
        parts.append(blob[pos + 8 : pos + 8 + size])
        pos += 8 + size
    return parts


def _assemble(parts: list[bytes]) -> bytes:
    return b"LWSKETCH\x01" + b"".join(struct.pack("<Q", len(p)) + p for p in parts)


def test_corrupted_or_foreign_payloads_are_refused() -> None:
    blob = ReferenceSketch.build(_table(500)).to_bytes()
    assert _assemble(_sections(blob)) == blob
    bad = {
        "foreign": pickle.dumps({"rows": 1}),
        "empty": b"",
        "truncated": blob[: len(blob) // 2],
        "trailing": blob + b"x",
        "flipped": blob[:200] + bytes([blob[200] ^ 0xFF]) + blob[201:],
    }
    for label, payload in bad.items():
        with pytest.raises(InvalidInput, match="sketch"):
            ReferenceSketch.from_bytes(payload)
        assert label
    with pytest.raises(InvalidInput, match="bytes"):
        ReferenceSketch.from_bytes("text")  # type: ignore[arg-type]


def test_refuses_pickled_arrays_and_inconsistent_headers() -> None:
    blob = ReferenceSketch.build(_table(500)).to_bytes()
    meta, arrays, sample = _sections(blob)
    # an object array in the npz needs pickle to load: refused, never unpickled
    npz = io.BytesIO()
    pickled: dict[str, Any] = {"0.grid": np.array([object()], dtype=object)}
    np.savez(npz, **pickled)
    with pytest.raises(InvalidInput, match="Object arrays cannot be loaded"):
        ReferenceSketch.from_bytes(_assemble([meta, npz.getvalue(), sample]))
    header = json.loads(meta)
    header["format"] = 99
    with pytest.raises(InvalidInput, match="format 99"):
        ReferenceSketch.from_bytes(_assemble([json.dumps(header).encode(), arrays, sample]))
    header = json.loads(meta)
    header["columns"][0]["count"] = 1  # the bins no longer add up
    with pytest.raises(InvalidInput, match="corrupted"):
        ReferenceSketch.from_bytes(_assemble([json.dumps(header).encode(), arrays, sample]))
    header = json.loads(meta)
    header["columns"][0]["kind"] = "image"
    with pytest.raises(InvalidInput, match="unknown kind"):
        ReferenceSketch.from_bytes(_assemble([json.dumps(header).encode(), arrays, sample]))


def test_fixed_size_numeric_lists_expand_into_one_column_per_position() -> None:
    fixed = pa.FixedSizeListArray.from_arrays(pa.array([0.9, 0.1, 0.2, 0.8]), 2)
    table = pa.table(
        {
            "input.x": [1.0, 2.0],
            "output.predict_proba": pa.array([[0.9, 0.1], None]),  # a null row: null positions
            "output.fixed": fixed,
        }
    )
    out = expand_vectors(table)
    assert out.column_names == [
        "input.x",
        "output.predict_proba[0]",
        "output.predict_proba[1]",
        "output.fixed[0]",
        "output.fixed[1]",
    ]
    assert out.column("output.predict_proba[1]").to_pylist() == [0.1, None]
    assert out.column("output.fixed[0]").to_pylist() == [0.9, 0.2]
    sketch = ReferenceSketch.build(table)
    assert list(sketch.columns) == out.column_names and sketch.skipped == {}
    again = ReferenceSketch.from_bytes(sketch.to_bytes())
    assert list(again.columns) == out.column_names
    numeric = sketch.columns["output.predict_proba[1]"]
    assert isinstance(numeric, NumericSketch) and (numeric.count, numeric.missing) == (1, 1)
    # No row: a fixed-size type still says its size, a plain list does not (it stays whole).
    empty = expand_vectors(table.slice(0, 0))
    assert empty.column_names == ["input.x", "output.predict_proba", *out.column_names[3:]]
    assert empty.num_rows == 0


def test_vectors_that_mean_nothing_position_by_position_stay_whole() -> None:
    long = [list(range(MAX_VECTOR_POSITIONS + 1))] * 2
    table = pa.table(
        {
            "ragged": pa.array([[1.0, 2.0], [1.0]]),
            "words": pa.array([["a", "b"], ["c", "d"]]),
            "embedding": pa.array(long),
            "all_null": pa.array([None, None], type=pa.list_(pa.float64())),
            "taken": pa.array([[1.0], [2.0]]),
            "taken[0]": [3.0, 4.0],
        }
    )
    assert expand_vectors(table).column_names == table.column_names
    sketch = ReferenceSketch.build(table)
    assert list(sketch.columns) == ["taken[0]"]  # the rest have no test: skipped, typed
    assert set(sketch.skipped) == {"ragged", "words", "embedding", "all_null", "taken"}
    assert expand_vectors(pa.table({"x": [1]})).column_names == ["x"]


def test_vector_source_names_the_list_of_a_position() -> None:
    assert vector_source("output.predict_proba[1]") == "output.predict_proba"
    assert vector_source("output.p[12]") == "output.p"
    for name in ("output.p", "output.p[]", "output.p[a]", "[1]", "output.p]", "p[-1]"):
        assert vector_source(name) is None, name
