"""A reference data set reduced to what drift tests need: per-column sketches and a row sample.

Built once from the reference rows (a training set, a dataset version), stored as bytes, and
compared with every current window without reading the reference rows again.

- Numeric column: count, missing, min, max, mean, std (population), the 1001 quantiles at
  probabilities ``k/1000`` (inverted CDF: each is a reference value), a *grid* with the reference's
  exact CDF on it (every distinct value when there are at most 2048, else the distinct quantiles),
  and the PSI bins (edges at the reference deciles, open ends; with at most 10 distinct values,
  one bin per value and one per gap, so a constant column still sees a move) with their counts.
  Everything is
  exact over all reference rows; the grid only bounds the resolution of CDF-based tests.
- Categorical column: count, missing and the counts of the 1000 most frequent categories, the rest
  pooled as ``other`` (``n_categories`` says how many there were).
- ``sample``: the same bounded random rows of every column (the multivariate tests use it).

The serialized form is safe to load from an untrusted blob: a JSON header, NumPy arrays in an
``.npz`` read with ``allow_pickle=False`` and the sample as Arrow IPC. Never pickle.

Example::

    sketch = ReferenceSketch.build(train_table)
    blob = sketch.to_bytes()
    same = ReferenceSketch.from_bytes(blob)
"""

from __future__ import annotations

import dataclasses
import io
import json
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Union

import numpy as np
import numpy.typing as npt

from .._numbers import is_number
from ..errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = [
    "CategoricalSketch",
    "ColumnKind",
    "ColumnSketch",
    "NumericSketch",
    "ReferenceSketch",
    "as_table",
    "category_labels",
    "column_kind",
    "expand_vectors",
    "numeric_chunks",
    "vector_source",
]

QUANTILES = 1001  # probabilities 0, 1/1000, ..., 1
EXACT_DISTINCT = 2048  # up to this many distinct values the grid is the whole support (exact KS)
PSI_BINS = 10
MAX_CATEGORIES = 1000
# A fixed-size numeric list column (``predict_proba``) is tested one position at a time up to
# this many positions; a longer vector (an embedding) stays one untested column.
MAX_VECTOR_POSITIONS = 64
_MAGIC = b"LWSKETCH\x01"
_FORMAT = 1


ColumnKind = Literal["numeric", "categorical"]


def column_kind(arrow_type: pa.DataType) -> ColumnKind | None:
    """How a column of this Arrow type is tested: numbers (and times) as numeric; strings,
    booleans and dictionaries as categorical; None for types no test reads (lists, structs)."""
    import pyarrow as pa

    t = arrow_type
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_boolean(t) or pa.types.is_string(t) or pa.types.is_large_string(t):
        return "categorical"
    if getattr(pa.types, "is_string_view", lambda _: False)(t):
        return "categorical"
    if (
        pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_decimal(t)
        or pa.types.is_temporal(t)
    ):
        return "numeric"
    return None


FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def numeric_chunks(values: pa.ChunkedArray) -> list[FloatArray]:
    """The column's chunks as float64 NumPy arrays, zero-copy when they are float64 without
    nulls; nulls become NaN (counted as missing by the caller)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    out: list[FloatArray] = []
    for chunk in values.chunks:
        if len(chunk) == 0:
            continue
        t = chunk.type
        if pa.types.is_temporal(t):
            chunk = chunk.cast(pa.int64()) if t.bit_width == 64 else chunk.cast(pa.int32())
        elif pa.types.is_decimal(t):
            chunk = pc.cast(chunk, pa.float64())
        if chunk.null_count == 0 and pa.types.is_float64(chunk.type):
            out.append(chunk.to_numpy(zero_copy_only=True))
        else:
            arr = chunk.to_numpy(zero_copy_only=False)
            out.append(np.asarray(arr, dtype=np.float64))
    return out


def category_labels(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """The column as strings (booleans as ``true``/``false``), the labels categories go by."""
    import pyarrow as pa

    t = values.type
    if pa.types.is_dictionary(t):
        values = values.cast(t.value_type)
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        values = values.cast(pa.string())
    return values


@dataclass(frozen=True, eq=False)
class NumericSketch:
    """A numeric reference column. ``le[j]``/``lt[j]``: reference values <= / < ``grid[j]``.
    ``counts``: reference values in the PSI bins, whose bounds are :meth:`cuts`."""

    kind: ClassVar[Literal["numeric"]] = "numeric"
    name: str
    dtype: str
    count: int
    missing: int
    min: float
    max: float
    mean: float
    std: float
    quantiles: FloatArray
    grid: FloatArray
    le: IntArray
    lt: IntArray
    edges: FloatArray
    counts: IntArray

    def cuts(self) -> tuple[IntArray, npt.NDArray[np.bool_]]:
        """The PSI bins' inner bounds as ``(grid index, inclusive)``: a bin ends before
        ``grid[i]`` (or at it, inclusive). Deciles: ``(-inf, e1), [e1, e2), ..., [e9, inf)``;
        at most 10 distinct values: ``(-inf, v1), [v1], (v1, v2), [v2], ..., (vk, inf)``."""
        if len(self.grid) <= PSI_BINS:
            index = np.repeat(np.arange(len(self.grid), dtype=np.int64), 2)
            return index, np.tile(np.array([False, True]), len(self.grid))
        index = np.searchsorted(self.grid, self.edges).astype(np.int64)
        return index, np.zeros(len(index), dtype=np.bool_)

    def bin_counts(self, le: IntArray, lt: IntArray, total: int) -> IntArray:
        """Counts in the PSI bins of values whose counts <= / < each grid point are ``le``,
        ``lt`` (the reference's own, or a current window's) out of ``total``."""
        index, inclusive = self.cuts()
        inner = np.where(inclusive, le[index], lt[index])
        return np.diff(np.concatenate([[0], inner, [total]])).astype(np.int64)


@dataclass(frozen=True, eq=False)
class CategoricalSketch:
    """A categorical reference column: ``counts[i]`` rows of ``categories[i]`` (most frequent
    first, at most 1000), ``other`` rows in the remaining ``n_categories - len(categories)``."""

    kind: ClassVar[Literal["categorical"]] = "categorical"
    name: str
    dtype: str
    count: int
    missing: int
    categories: tuple[str, ...]
    counts: IntArray
    other: int
    n_categories: int

    @property
    def complete(self) -> bool:
        """Whether every reference category is listed (a category not listed is then new)."""
        return self.n_categories == len(self.categories)


ColumnSketch = Union[NumericSketch, CategoricalSketch]  # noqa: UP007 (a runtime alias)


def as_table(data: pa.Table | pd.DataFrame, what: str = "data") -> pa.Table:
    """An Arrow table from a table or a pandas frame (index dropped); InvalidInput otherwise."""
    import pyarrow as pa

    if isinstance(data, pa.Table):
        table = data
    elif hasattr(data, "columns") and hasattr(data, "dtypes"):
        try:
            table = pa.Table.from_pandas(data, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise InvalidInput(
                f"{what}: a column cannot be read as one Arrow type ({exc}); "
                "give each column values of one type"
            ) from exc
    else:
        raise InvalidInput(
            f"{what} must be a pyarrow.Table or a pandas.DataFrame, not {type(data).__name__}"
        )
    bad = [n for n in table.column_names if not isinstance(n, str)]
    if bad or len(set(table.column_names)) != len(table.column_names):
        raise InvalidInput(
            f"{what}: column names must be distinct strings; got {table.column_names}"
        )
    return table


def expand_vectors(table: pa.Table) -> pa.Table:
    """``table`` with each fixed-size numeric list column (``output.predict_proba``: one list
    of k class probabilities per row) replaced by k numeric columns named ``NAME[0]`` ...
    ``NAME[k-1]``, so drift tests read a vector output position by position.

    Both sides of a comparison go through here (the reference sketch and compare's current
    window), so their names agree. A null list gives a null in every position. Left as they
    are (and so untested): lists whose rows differ in length, lists of non-numbers, vectors
    longer than :data:`MAX_VECTOR_POSITIONS`, and a list whose expanded names are taken.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    names, columns = [], []
    for field, values in zip(table.schema, table.columns, strict=True):
        size = _vector_size(field.type, values)
        taken = size is not None and any(
            f"{field.name}[{i}]" in table.column_names for i in range(size)
        )
        if size is None or taken:
            names.append(field.name)
            columns.append(values)
            continue
        for i in range(size):
            names.append(f"{field.name}[{i}]")
            columns.append(
                pc.list_element(values, i)
                if len(values)
                else pa.chunked_array([], type=field.type.value_type)
            )
    if len(names) == table.num_columns:
        return table
    return pa.table(columns, names=names)


def _vector_size(arrow_type: pa.DataType, values: pa.ChunkedArray) -> int | None:
    """The length every non-null row of a numeric list column has, or None."""
    import pyarrow as pa
    import pyarrow.compute as pc

    t = arrow_type
    if not (pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)):
        return None
    if column_kind(t.value_type) != "numeric":
        return None
    if pa.types.is_fixed_size_list(t):
        size = int(t.list_size)
    else:
        lengths = pc.min_max(pc.list_value_length(values))
        low, high = lengths["min"].as_py(), lengths["max"].as_py()
        if low is None or low != high:
            return None  # all null, or ragged: no position means one thing
        size = int(low)
    return size if 0 < size <= MAX_VECTOR_POSITIONS else None


def vector_source(name: str) -> str | None:
    """The list column an expanded position column comes from (``output.p[1]`` ->
    ``output.p``), or None when ``name`` is not of that form."""
    if not name.endswith("]"):
        return None
    base, bracket, index = name[:-1].rpartition("[")
    return base if bracket and base and is_number(index) else None


class ReferenceSketch:
    """Per-column sketches of a reference table plus a joint row sample (see the module doc)."""

    def __init__(
        self,
        rows: int,
        columns: dict[str, ColumnSketch],
        sample: pa.Table,
        skipped: dict[str, str] | None = None,
    ) -> None:
        self.rows = rows
        self.columns = columns
        self.sample = sample
        # Columns of a type no test reads (lists, structs, binary), with their Arrow type.
        self.skipped = dict(skipped or {})

    def __repr__(self) -> str:
        return f"ReferenceSketch(rows={self.rows}, columns={list(self.columns)})"

    @classmethod
    def build(
        cls, table: pa.Table | pd.DataFrame, *, sample_rows: int = 20_000, seed: int = 0
    ) -> ReferenceSketch:
        """Sketch every column of ``table`` (exact over all rows) and keep ``sample_rows`` rows."""
        if sample_rows < 0:
            raise InvalidInput(f"sample_rows must be >= 0, got {sample_rows}")
        data = expand_vectors(as_table(table, "reference"))
        columns: dict[str, ColumnSketch] = {}
        skipped: dict[str, str] = {}
        for name in data.column_names:
            values = data.column(name)
            kind = column_kind(values.type)
            if kind == "numeric":
                columns[name] = _numeric(name, values)
            elif kind == "categorical":
                columns[name] = _categorical(name, values)
            else:
                skipped[name] = str(values.type)
        kept = data.select(list(columns))
        if kept.num_rows > sample_rows:
            rng = np.random.default_rng(seed)
            rows = np.sort(rng.choice(kept.num_rows, size=sample_rows, replace=False))
            kept = kept.take(rows)
        return cls(data.num_rows, columns, kept.combine_chunks(), skipped)

    # -- serialization -------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """The sketch as bytes: magic, then JSON header, ``.npz`` arrays and Arrow IPC sample,
        each preceded by its length (8 bytes, little-endian)."""
        import pyarrow as pa

        meta: dict[str, Any] = {"format": _FORMAT, "rows": self.rows, "skipped": self.skipped}
        arrays: dict[str, np.ndarray[Any, Any]] = {}
        cols: list[dict[str, Any]] = []
        for i, col in enumerate(self.columns.values()):
            entry: dict[str, Any] = {
                "name": col.name,
                "kind": col.kind,
                "dtype": col.dtype,
                "count": col.count,
                "missing": col.missing,
            }
            if isinstance(col, NumericSketch):
                entry.update(min=col.min, max=col.max, mean=col.mean, std=col.std)
                for key in ("quantiles", "grid", "le", "lt", "edges", "counts"):
                    arrays[f"{i}.{key}"] = getattr(col, key)
            else:
                entry.update(
                    categories=list(col.categories), other=col.other, n_categories=col.n_categories
                )
                arrays[f"{i}.counts"] = col.counts
            cols.append(entry)
        meta["columns"] = cols
        npz = io.BytesIO()
        np.savez(npz, **arrays)  # type: ignore[arg-type]
        ipc = io.BytesIO()
        with pa.ipc.new_stream(ipc, self.sample.schema) as writer:
            writer.write_table(self.sample)
        parts = [json.dumps(meta).encode(), npz.getvalue(), ipc.getvalue()]
        return _MAGIC + b"".join(struct.pack("<Q", len(p)) + p for p in parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> ReferenceSketch:
        """A sketch from :meth:`to_bytes`; InvalidInput for a corrupted or foreign payload."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InvalidInput(f"a reference sketch is bytes, not {type(data).__name__}")
        data = bytes(data)
        if not data.startswith(_MAGIC):
            raise InvalidInput(
                "not a Loopwright reference sketch (bad magic bytes); rebuild the reference"
            )
        try:
            return _decode(data)
        except InvalidInput:
            raise
        except Exception as exc:  # any parse failure of untrusted bytes means "corrupted"
            raise InvalidInput(
                f"reference sketch is corrupted ({type(exc).__name__}: {exc}); "
                "rebuild the reference"
            ) from exc


def _decode(data: bytes) -> ReferenceSketch:
    import pyarrow as pa

    parts: list[bytes] = []
    pos = len(_MAGIC)
    for _ in range(3):
        if pos + 8 > len(data):
            raise InvalidInput("reference sketch is truncated; rebuild the reference")
        (size,) = struct.unpack_from("<Q", data, pos)
        pos += 8
        if pos + size > len(data):
            raise InvalidInput("reference sketch is truncated; rebuild the reference")
        parts.append(data[pos : pos + size])
        pos += size
    if pos != len(data):
        raise InvalidInput("reference sketch has trailing bytes; rebuild the reference")
    meta = json.loads(parts[0])
    if meta.get("format") != _FORMAT:
        raise InvalidInput(
            f"reference sketch format {meta.get('format')!r} is not supported (expected {_FORMAT})"
        )
    with np.load(io.BytesIO(parts[1]), allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    sample = pa.ipc.open_stream(parts[2]).read_all()
    columns: dict[str, ColumnSketch] = {}
    for i, entry in enumerate(meta["columns"]):
        name = str(entry["name"])
        common = (name, str(entry["dtype"]), int(entry["count"]), int(entry["missing"]))
        col: ColumnSketch
        if entry["kind"] == "numeric":
            got = {k: arrays[f"{i}.{k}"] for k in ("quantiles", "grid", "le", "lt", "edges")}
            col = NumericSketch(
                *common,
                float(entry["min"]),
                float(entry["max"]),
                float(entry["mean"]),
                float(entry["std"]),
                got["quantiles"].astype(np.float64),
                got["grid"].astype(np.float64),
                got["le"].astype(np.int64),
                got["lt"].astype(np.int64),
                got["edges"].astype(np.float64),
                arrays[f"{i}.counts"].astype(np.int64),
            )
            _check_numeric(col)
        elif entry["kind"] == "categorical":
            col = CategoricalSketch(
                *common,
                tuple(str(c) for c in entry["categories"]),
                arrays[f"{i}.counts"].astype(np.int64),
                int(entry["other"]),
                int(entry["n_categories"]),
            )
            if len(col.counts) != len(col.categories) or col.counts.ndim != 1:
                raise ValueError(f"column {name!r}: categories and counts differ in length")
        else:
            raise ValueError(f"column {name!r} has unknown kind {entry['kind']!r}")
        columns[name] = col
    return ReferenceSketch(int(meta["rows"]), columns, sample, dict(meta.get("skipped", {})))


def _check_numeric(col: NumericSketch) -> None:
    k = len(col.grid)
    if col.grid.ndim != 1 or len(col.le) != k or len(col.lt) != k:
        raise ValueError(f"column {col.name!r}: grid and CDF arrays differ in length")
    if k and np.any(np.diff(col.grid) <= 0):
        raise ValueError(f"column {col.name!r}: grid is not strictly increasing")
    if k and not np.array_equal(col.counts, col.bin_counts(col.le, col.lt, col.count)):
        raise ValueError(f"column {col.name!r}: PSI bin counts do not add up to the count")
    if k and not np.all(np.isin(col.edges, col.grid)):
        raise ValueError(f"column {col.name!r}: PSI edges are not grid points")


def _numeric(name: str, values: pa.ChunkedArray) -> NumericSketch:
    chunks = [c[np.isfinite(c)] for c in numeric_chunks(values)]
    x = np.sort(np.concatenate(chunks)) if chunks else np.empty(0, dtype=np.float64)
    n = len(x)
    empty = np.empty(0, dtype=np.float64)
    no_ints = np.empty(0, dtype=np.int64)
    if n == 0:
        nan = float("nan")
        return NumericSketch(
            name, str(values.type), 0, len(values), nan, nan, nan, nan,
            empty, empty, no_ints, no_ints, empty, np.zeros(1, dtype=np.int64),
        )  # fmt: skip
    k = np.arange(QUANTILES, dtype=np.int64)
    # Inverted CDF: the smallest value whose CDF reaches k/1000 (integer arithmetic, no rounding).
    at = np.clip((k * n + QUANTILES - 2) // (QUANTILES - 1) - 1, 0, n - 1)
    quantiles = x[at]
    distinct = x[np.concatenate([[True], np.diff(x) != 0])]
    grid = distinct if len(distinct) <= EXACT_DISTINCT else np.unique(quantiles)
    step = (QUANTILES - 1) // PSI_BINS
    edges = grid if len(grid) <= PSI_BINS else np.unique(quantiles[step : QUANTILES - 1 : step])
    sketch = NumericSketch(
        name=name,
        dtype=str(values.type),
        count=n,
        missing=len(values) - n,
        min=float(x[0]),
        max=float(x[-1]),
        mean=float(np.mean(x)),
        std=float(np.std(x)),
        quantiles=quantiles,
        grid=grid,
        le=np.searchsorted(x, grid, side="right").astype(np.int64),
        lt=np.searchsorted(x, grid, side="left").astype(np.int64),
        edges=edges,
        counts=np.zeros(0, dtype=np.int64),
    )
    counts = sketch.bin_counts(sketch.le, sketch.lt, n)
    return dataclasses.replace(sketch, counts=counts)


def _categorical(name: str, values: pa.ChunkedArray) -> CategoricalSketch:
    import pyarrow.compute as pc

    counts = pc.value_counts(category_labels(values))
    labels = counts.field("values").to_pylist()
    numbers = counts.field("counts").to_numpy(zero_copy_only=False).astype(np.int64)
    pairs = sorted(
        ((str(v), int(c)) for v, c in zip(labels, numbers, strict=True) if v is not None),
        key=lambda p: (-p[1], p[0]),
    )
    top = pairs[:MAX_CATEGORIES]
    total = sum(c for _, c in pairs)
    listed = sum(c for _, c in top)
    return CategoricalSketch(
        name=name,
        dtype=str(values.type),
        count=total,
        missing=len(values) - total,
        categories=tuple(label for label, _ in top),
        counts=np.array([c for _, c in top], dtype=np.int64),
        other=total - listed,
        n_categories=len(pairs),
    )
