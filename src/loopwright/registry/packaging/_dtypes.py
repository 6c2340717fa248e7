"""How pandas and numpy values map onto signature types, and which conversions are safe.

Column types are MLflow's names (``"long"``, ``"double"`` ...); tensor types are numpy dtype names
(``"float32"``), with ``"str"``, ``"bytes"`` and ``"object"`` for the three non-numeric kinds.
pandas is looked up in ``sys.modules`` before any ``isinstance`` check: a value cannot be a
DataFrame unless pandas was already imported, so numpy-only callers never pay for importing it.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = [
    "COLUMN_TYPES",
    "NULL",
    "TENSOR_TYPES",
    "column_type",
    "is_frame",
    "is_series",
    "numpy_dtype",
    "tensor_accepts",
    "tensor_type",
    "widens",
]

COLUMN_TYPES = ("boolean", "integer", "long", "float", "double", "string", "binary", "datetime")
TENSOR_TYPES = frozenset(
    {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"}
    | {"float16", "float32", "float64", "str", "bytes", "object"}
)
# What an all-missing column reads as: its values fit any type.
NULL = "null"

_NUMPY_DTYPES = {
    "boolean": "bool",
    "integer": "int32",
    "long": "int64",
    "float": "float32",
    "double": "float64",
    "string": "object",
    "binary": "object",
    "datetime": "datetime64[ns]",
}
# Conversions that never change a value (int32 -> float64 is exact; int64 -> float64 is exact up
# to 2**53, which is the conversion every scikit-learn model applies to integer input anyway).
_WIDENING = frozenset(
    {("integer", "long"), ("integer", "double"), ("long", "double"), ("float", "double")}
)
_OBJECT_TYPES = {
    "string": "string",
    "bytes": "binary",
    "boolean": "boolean",
    "integer": "long",
    "floating": "double",
    "mixed-integer-float": "double",
    "datetime": "datetime",
    "datetime64": "datetime",
    "empty": NULL,
}


def is_frame(value: object) -> bool:
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(value, pandas.DataFrame)


def is_series(value: object) -> bool:
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(value, pandas.Series)


def numpy_dtype(column_type: str) -> str:
    """The numpy dtype a column of ``column_type`` is converted to when it must be widened."""
    return _NUMPY_DTYPES[column_type]


def widens(got: str, expected: str) -> bool:
    """Whether a ``got`` column may be converted to ``expected`` without changing its values."""
    return (got, expected) in _WIDENING


def column_type(values: Any) -> str | None:
    """The column type of a pandas Series, :data:`NULL` if it holds only missing values, or
    ``None`` if its values fit no column type (e.g. mixed strings and numbers)."""
    import numpy as np
    import pandas as pd

    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return column_type(dtype.categories.to_series())
    if dtype == np.dtype(object):
        return _OBJECT_TYPES.get(pd.api.types.infer_dtype(values, skipna=True))
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        base = getattr(dtype, "numpy_dtype", dtype)
        small = base.itemsize <= 4 if base.kind == "i" else base.itemsize <= 2
        return "integer" if small else "long"
    if pd.api.types.is_float_dtype(dtype):
        return "float" if getattr(dtype, "numpy_dtype", dtype).itemsize <= 4 else "double"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pd.api.types.is_string_dtype(dtype):
        return "string"
    return None


def tensor_type(array: Any) -> str:
    """The tensor type name of a numpy array's dtype (``"float64"``, ``"str"`` ...)."""
    kind = array.dtype.kind
    return {"U": "str", "S": "bytes", "O": "object"}.get(kind) or str(array.dtype.name)


def tensor_accepts(expected: str, got: str) -> bool:
    """Whether an array of type ``got`` may be cast to ``expected`` without changing values."""
    if got == expected:
        return True
    text = {"str", "object"}
    if expected in text or got in text or "bytes" in (expected, got):
        return expected in text and got in text
    import numpy as np

    return bool(np.can_cast(np.dtype(got), np.dtype(expected), casting="safe"))
