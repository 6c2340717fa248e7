"""Prediction records to one Arrow table: a row per input row, a column per feature and output.

Fixed columns come first (``request_id``, ``row``, ``timestamp``, ``deployment``, ``variant``,
``model``, ``model_version``, ``latency_ms``, ``status``), then ``input.<name>`` and
``output.<name>`` in the order they first appear. A vector output (``predict_proba``: a list
per row, or a 2-D array) becomes a list column. A request whose columns are all empty (or that
has none) still gets one row, with null features, so that every logged request can be found.

Requests differ: a column missing from one is null in its rows; a column whose type differs
between requests takes the common type (int and float: float), and if there is none, strings.
Files may therefore differ in schema; readers unite them by name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import chain
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    from .prediction_log import PredictionRecord

__all__ = [
    "FIXED_SCHEMA",
    "INPUT_PREFIX",
    "OUTPUT_PREFIX",
    "common_type",
    "row_count",
    "strings",
    "to_table",
    "unite",
]

INPUT_PREFIX = "input."
OUTPUT_PREFIX = "output."
FIXED_SCHEMA = pa.schema(
    [
        ("request_id", pa.string()),
        ("row", pa.int32()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("deployment", pa.string()),
        ("variant", pa.string()),
        ("model", pa.string()),
        ("model_version", pa.int64()),
        ("latency_ms", pa.float64()),
        ("status", pa.int32()),
    ]
)


def row_count(record: PredictionRecord) -> int:
    """The number of input rows of ``record``; ``ValueError`` if its columns disagree."""
    lengths = set(map(len, record.inputs.values()))
    lengths.update(map(len, record.outputs.values()))
    if len(lengths) > 1:
        sizes = {
            name: len(values) for name, values in [*record.inputs.items(), *record.outputs.items()]
        }
        raise ValueError(
            f"prediction record {record.request_id!r} has columns of different lengths {sizes}; "
            "give one value per input row in every input and output column"
        )
    return lengths.pop() if lengths else 0


def to_table(records: Sequence[PredictionRecord]) -> pa.Table:
    """One table holding every row of ``records`` (which :func:`row_count` accepted)."""
    rows = [_rows(record) for record in records]
    counts = np.maximum(np.array(rows, dtype=np.int64), 1)
    starts = np.cumsum(counts) - counts
    owner = pa.array(np.repeat(np.arange(len(records)), counts))
    columns: dict[str, pa.Array] = {}
    for field in FIXED_SCHEMA:
        if field.name == "row":
            index = np.arange(int(counts.sum())) - np.repeat(starts, counts)
            columns["row"] = pa.array(index, pa.int32())
        else:  # one value per request, repeated for each of its rows
            values = pa.array(list(map(attrgetter(field.name), records)), field.type)
            columns[field.name] = values.take(owner)
    for prefix, attribute in ((INPUT_PREFIX, "inputs"), (OUTPUT_PREFIX, "outputs")):
        mappings: list[Mapping[str, Any]] = list(map(attrgetter(attribute), records))
        if 0 in rows:  # a request without rows keeps one row, with nulls
            mappings = [m if n else {} for m, n in zip(mappings, rows, strict=True)]
        for name, cells in _by_name(mappings).items():
            columns[prefix + str(name)] = _column(cells, counts)
    return pa.table(columns)


def _by_name(mappings: list[Mapping[str, Any]]) -> dict[Any, list[Any]]:
    """Each name of ``mappings`` (in order of appearance) with its value in every mapping
    (None where one lacks it). Requests to one model name the same columns in the same order:
    then one transposition in C does it, rather than a ``get`` per name and request."""
    first = tuple(mappings[0]) if mappings else ()
    if all(tuple(m) == first for m in mappings):
        rows = zip(*(tuple(m.values()) for m in mappings), strict=True)  # same lengths: checked
        return dict(zip(first, map(list, rows), strict=True))
    names = dict.fromkeys(chain.from_iterable(mappings))
    return {name: [m.get(name) for m in mappings] for name in names}


def _rows(record: PredictionRecord) -> int:
    """The length of the record's first column (all are the same once checked)."""
    for values in chain(record.inputs.values(), record.outputs.values()):
        return len(values)
    return 0


def _column(cells: list[Any], counts: np.ndarray) -> pa.Array:
    """One column over every record: each record's values (its cell), nulls for a None cell."""
    kinds = set(map(type, cells))
    if kinds == {np.ndarray}:
        joined = _joined_arrays(cells)
        if joined is not None:
            return joined
    elif kinds == {list}:
        try:  # one conversion for the whole column
            return pa.array(list(chain.from_iterable(cells)))
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            pass  # mixed types: convert request by request and reconcile below
    chunks = {index: _array(values) for index, values in enumerate(cells) if values is not None}
    target = common_type({chunk.type for chunk in chunks.values()})
    try:
        return _joined(chunks, counts, target)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        text = {index: strings(chunk.to_pylist()) for index, chunk in chunks.items()}
        return _joined(text, counts, pa.string())


def _joined_arrays(cells: list[np.ndarray]) -> pa.Array | None:
    """The common case (what serving logs): every request's column is an array of one dtype
    and row shape, joined in NumPy and handed to Arrow whole, without a Python object per
    value. None when they differ (the caller reconciles them request by request)."""
    if len(set(map(attrgetter("dtype"), cells))) > 1:
        return None
    try:  # rows of different shapes (widths) do not concatenate
        return _array(np.concatenate(cells) if len(cells) > 1 else cells[0])
    except (ValueError, pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None


def _joined(chunks: dict[int, pa.Array], counts: np.ndarray, target: pa.DataType) -> pa.Array:
    parts = []
    for index, count in enumerate(counts):
        chunk = chunks.get(index)
        if chunk is None:
            parts.append(pa.nulls(int(count), target))
        else:
            parts.append(chunk if chunk.type == target else chunk.cast(target))
    return pa.concat_arrays(parts)


def _array(values: Any) -> pa.Array:
    """``values`` (a list, a 1-D or 2-D NumPy array, a pandas Series ...) as an Arrow array."""
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    if isinstance(values, pa.Array):
        return values
    if isinstance(values, np.ndarray) and values.ndim > 1:
        # A row of several values (class probabilities ...): a list per row, nested as the
        # array is (an image row is a list of lists), built from the flat values at once.
        nested = pa.array(np.ascontiguousarray(values).ravel())
        for axis in range(values.ndim - 1, 0, -1):
            lists = int(np.prod(values.shape[:axis]))  # one list per index of the outer axes
            offsets = pa.array(np.arange(lists + 1, dtype=np.int32) * values.shape[axis])
            nested = pa.ListArray.from_arrays(offsets, nested)
        return nested
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return strings(values)


def strings(values: Any) -> pa.Array:
    """The values as text: kept readable when they share no Arrow type."""
    return pa.array([None if v is None else str(v) for v in values], pa.string())


def common_type(types: set[pa.DataType]) -> pa.DataType:
    """The type every one of ``types`` converts to without loss of meaning; string if none."""
    known = [t for t in types if t != pa.null()]
    if not known:
        return pa.null()
    if len(set(known)) == 1:
        return known[0]
    try:
        schemas = [pa.schema([("c", t)]) for t in known]
        return pa.unify_schemas(schemas, promote_options="permissive").field("c").type
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return pa.string()


def unite(tables: list[pa.Table]) -> pa.Table:
    """One table from tables (files, chunks) whose columns may differ in presence and type."""
    if len(tables) == 1:
        return tables[0]
    types: dict[str, set[pa.DataType]] = {}
    for table in tables:
        for field in table.schema:
            types.setdefault(field.name, set()).add(field.type)
    targets = {column: common_type(seen) for column, seen in types.items() if len(seen) > 1}
    try:
        cast = [_cast_columns(table, targets) for table in tables]
        return pa.concat_tables(cast, promote_options="default")
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        # A value that did not convert was kept as text in one file: make it text in all.
        as_text = dict.fromkeys(targets, pa.string())
        cast = [_cast_columns(table, as_text) for table in tables]
        return pa.concat_tables(cast, promote_options="default")


def _cast_columns(table: pa.Table, targets: dict[str, pa.DataType]) -> pa.Table:
    for index, field in enumerate(table.schema):
        target = targets.get(field.name)
        if target is None or field.type == target:
            continue
        column = table.column(index).combine_chunks()
        try:
            converted = column.cast(target)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            converted = strings(column.to_pylist())
        table = table.set_column(index, pa.field(field.name, converted.type), converted)
    return table
