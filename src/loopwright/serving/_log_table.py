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

from collections.abc import Sequence
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
    lengths = {len(values) for values in record.inputs.values()}
    lengths.update(len(values) for values in record.outputs.values())
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
    counts = np.array([max(row_count(r), 1) for r in records], dtype=np.int64)
    starts = np.cumsum(counts) - counts
    owner = pa.array(np.repeat(np.arange(len(records)), counts))
    columns: dict[str, pa.Array] = {}
    for field in FIXED_SCHEMA:
        if field.name == "row":
            rows = np.arange(int(counts.sum())) - np.repeat(starts, counts)
            columns["row"] = pa.array(rows, pa.int32())
        else:  # one value per request, repeated for each of its rows
            values = pa.array([getattr(r, field.name) for r in records], field.type)
            columns[field.name] = values.take(owner)
    for prefix, attribute in ((INPUT_PREFIX, "inputs"), (OUTPUT_PREFIX, "outputs")):
        found: dict[str, dict[int, Any]] = {}
        for index, record in enumerate(records):
            if counts[index] and row_count(record):
                for name, values in getattr(record, attribute).items():
                    found.setdefault(prefix + str(name), {})[index] = values
        for column, by_record in found.items():
            columns[column] = _column(by_record, counts)
    return pa.table(columns)


def _column(by_record: dict[int, Any], counts: np.ndarray) -> pa.Array:
    """One column over every record: the records' values, nulls where a record lacks it."""
    if len(by_record) == len(counts) and all(isinstance(v, list) for v in by_record.values()):
        flat: list[Any] = []
        for values in by_record.values():  # in record order: dicts keep insertion order
            flat.extend(values)
        try:  # the common case (JSON bodies): one conversion for the whole column
            return pa.array(flat)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            pass  # mixed types: convert request by request and reconcile below
    chunks = {index: _array(values) for index, values in by_record.items()}
    target = common_type({chunk.type for chunk in chunks.values()})
    try:
        return _joined(chunks, counts, target)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        strings = {i: strings(c.to_pylist()) for i, c in chunks.items()}
        return _joined(strings, counts, pa.string())


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
        # A row of several values (class probabilities ...): a list per row.
        flat = values.reshape(len(values), -1)
        width = flat.shape[1]
        offsets = pa.array(np.arange(0, width * len(flat) + 1, width, dtype=np.int32))
        return pa.ListArray.from_arrays(offsets, pa.array(flat.ravel()))
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
