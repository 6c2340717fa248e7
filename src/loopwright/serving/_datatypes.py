"""Open Inference Protocol datatypes: reading JSON tensor data into numpy, and back.

OIP names twelve datatypes (``BOOL``, ``UINT8`` ... ``FP64``, ``BYTES``); JSON carries their
values as numbers, booleans or strings, nested row-major or flat. Reading checks each value
fits its declared type, so that ``1.5`` declared ``INT64`` or ``"a"`` declared ``FP64`` is the
client's error, named, rather than a silent truncation or a failure inside the model.
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import InvalidInput
from ..registry.packaging._dtypes import COLUMN_TYPES, numpy_dtype

__all__ = [
    "DATATYPES",
    "NUMPY_DTYPES",
    "column_datatype",
    "datatype_of",
    "read_tensor",
    "to_json_data",
]

# Each numeric datatype's numpy dtype (native byte order; the binary extension sends them
# little-endian).
NUMPY_DTYPES = {
    "BOOL": "bool",
    "UINT8": "uint8",
    "UINT16": "uint16",
    "UINT32": "uint32",
    "UINT64": "uint64",
    "INT8": "int8",
    "INT16": "int16",
    "INT32": "int32",
    "INT64": "int64",
    "FP16": "float16",
    "FP32": "float32",
    "FP64": "float64",
}
DATATYPES = (*NUMPY_DTYPES, "BYTES")
_BY_DTYPE = {dtype: name for name, dtype in NUMPY_DTYPES.items()}


def column_datatype(type_name: str) -> str:
    """The OIP datatype of a signature type (a column type or a numpy dtype name).

    A column type maps through the numpy dtype the signature conforms it to (``long`` is
    ``int64``, so ``INT64``); text, binary and timestamps travel as ``BYTES``.
    """
    if type_name in COLUMN_TYPES:
        type_name = numpy_dtype(type_name)
    return _BY_DTYPE.get(type_name, "BYTES")


def datatype_of(array: Any) -> str:
    """The OIP datatype of a numpy array (anything non-numeric is ``BYTES``)."""
    return _BY_DTYPE.get(array.dtype.name, "BYTES")


def read_tensor(name: str, datatype: Any, shape: Any, data: Any) -> Any:
    """The numpy array an OIP input describes, checked against its datatype and shape.

    Example:
        >>> read_tensor("x", "INT32", [2, 2], [1, 2, 3, 4]).tolist()
        [[1, 2], [3, 4]]
        >>> read_tensor("x", "FP32", [2, 2], [[1, None], [2.5, 3]]).tolist()
        [[1.0, nan], [2.5, 3.0]]
        >>> read_tensor("x", "INT32", [2], [1, 2.5])
        Traceback (most recent call last):
        ...
        loopwright.errors.InvalidInput: input 'x' is declared INT32 but holds 2.5

    Raises:
        InvalidInput: an unknown datatype, a shape that is not a list of sizes, data whose
            element count differs from the shape's, or a value its datatype cannot hold.
    """
    import numpy as np

    label = f"input {name!r}"
    if datatype not in DATATYPES:
        raise InvalidInput(f"{label} has datatype {datatype!r}; use one of {', '.join(DATATYPES)}")
    dims = _shape(label, shape)
    try:
        raw = np.asarray(data) if datatype != "BYTES" else np.asarray(data, dtype=object)
    except (ValueError, TypeError):
        raise InvalidInput(
            f"{label} has ragged data (rows of different lengths); send shape {dims} "
            "row-major, nested or flat"
        ) from None
    if raw.ndim != 1 and raw.shape != tuple(dims):
        raise InvalidInput(f"{label} has data of shape {list(raw.shape)} but declares {dims}")
    if raw.size != math.prod(dims):
        raise InvalidInput(
            f"{label} declares shape {dims} ({math.prod(dims)} values) but has {raw.size} values"
        )
    array = (
        _as_bytes(label, raw) if datatype == "BYTES" else _as_numeric(label, datatype, raw, data)
    )
    return array.reshape(dims)


def to_json_data(array: Any) -> list[Any]:
    """An output array flattened row-major into JSON values (bytes decoded as UTF-8)."""
    import numpy as np

    flat = array.reshape(-1)
    if flat.dtype.kind in "SO":
        return [_json_scalar(v) for v in flat.tolist()]
    if flat.dtype.kind == "M":
        return [str(v) for v in flat]
    values = list(flat.tolist())
    if flat.dtype.kind == "f" and not np.isfinite(flat).all():
        # JSON has no NaN or infinity: a missing output is null.
        return [v if math.isfinite(v) else None for v in values]
    return values


def _shape(label: str, shape: Any) -> list[int]:
    if (
        not isinstance(shape, list)
        or not shape
        or any(isinstance(d, bool) or not isinstance(d, int) or d < 0 for d in shape)
    ):
        raise InvalidInput(
            f"{label} has shape {shape!r}; give a non-empty list of sizes >= 0, e.g. [1, 4]"
        )
    return shape


def _as_numeric(label: str, datatype: str, raw: Any, data: Any) -> Any:
    import numpy as np

    dtype = np.dtype(NUMPY_DTYPES[datatype])
    kind = raw.dtype.kind
    if dtype.kind in "iu" and kind in "fO" and raw.size:
        # Python ints past int64 (UINT64's upper half) make numpy guess float or object:
        # read the values themselves, exactly.
        values = np.asarray(data, dtype=object).reshape(-1).tolist()
        if all(type(v) is int for v in values):
            try:
                return np.array(values, dtype=dtype).reshape(raw.shape)
            except OverflowError:
                raise InvalidInput(f"{label} holds values out of the range of {datatype}") from None
    if dtype.kind == "f" and kind == "O":
        # JSON null stands for a missing value in float data.
        values = raw.reshape(-1).tolist()
        if all(v is None or (type(v) in (int, float)) for v in values):
            filled = [math.nan if v is None else v for v in values]
            return np.array(filled, dtype=dtype).reshape(raw.shape)
    ok = {"b": "b", "i": "iu", "u": "iu", "f": "iuf"}[dtype.kind]
    if raw.size and kind not in ok:
        # Named from the values as sent: numpy turned [1, "a"] into ["1", "a"].
        sample = _first_bad(np.asarray(data, dtype=object).reshape(-1).tolist(), dtype.kind)
        raise InvalidInput(f"{label} is declared {datatype} but holds {sample!r}")
    cast = raw.astype(dtype)
    if dtype.kind in "iu" and raw.size and not np.array_equal(cast, raw):
        raise InvalidInput(f"{label} holds values out of the range of {datatype}")
    return cast


def _first_bad(values: list[Any], kind: str) -> Any:
    for value in values:
        if kind == "b" and not isinstance(value, bool):
            return value
        if kind in "iu" and (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or (isinstance(value, float) and not value.is_integer())
        ):
            return value
        if kind == "f" and (isinstance(value, bool) or not isinstance(value, int | float)):
            return value
    return values[0]


def _as_bytes(label: str, raw: Any) -> Any:
    for value in raw.reshape(-1):
        if not isinstance(value, str):
            raise InvalidInput(
                f"{label} is declared BYTES but holds {value!r}; send BYTES values as strings"
            )
    return raw


def _json_scalar(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):
        return value.item()
    return value
