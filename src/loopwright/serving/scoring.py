"""MLflow's scoring protocol (``POST /invocations``), as ``mlflow models serve`` speaks it.

JSON bodies hold exactly one of ``dataframe_split`` (``{"columns", "data"}``),
``dataframe_records`` (a list of row objects), ``instances`` or ``inputs`` (rows as lists or
objects, a dict of columns, or for a tensor model a nested array); ``Content-Type: text/csv``
sends a table with a header row. The answer is ``{"predictions": ...}``: a list of values, a
list of rows for a 2-D output, or a list of row objects when the model returns a table.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput

if TYPE_CHECKING:
    from .model import ServedModel

__all__ = ["FORMATS", "decode_csv", "decode_json", "encode_predictions"]

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def decode_json(body: Any, model: ServedModel) -> Any:
    """The model input a JSON scoring request holds.

    Raises:
        InvalidInput: not exactly one of the four formats, or data of the wrong form.
    """
    if not isinstance(body, dict):
        raise InvalidInput(f"the request must be a JSON object with one of {', '.join(FORMATS)}")
    given = [key for key in FORMATS if key in body]
    unknown = body.keys() - {*FORMATS, "params"}
    if len(given) != 1 or unknown:
        extra = f"; unknown fields {sorted(unknown)}" if unknown else ""
        raise InvalidInput(
            f"the request must hold exactly one of {', '.join(FORMATS)}, got "
            f"{', '.join(given) or 'none'}{extra}"
        )
    if body.get("params"):
        raise InvalidInput("params are not supported by this server; send the data alone")
    key = given[0]
    data = body[key]
    if key == "dataframe_split":
        return _split_frame(data)
    if key == "dataframe_records":
        if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
            raise InvalidInput("dataframe_records must be a list of objects, one per row")
        return _frame(data)
    return _instances(key, data, model)


def decode_csv(content: bytes) -> Any:
    """The table a CSV body holds (header row first)."""
    import pandas as pd

    try:
        return pd.read_csv(io.BytesIO(content))
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the CSV body cannot be read: {exc}") from None


def encode_predictions(outputs: Mapping[str, Any]) -> dict[str, Any]:
    """``{"predictions": ...}`` from the model's outputs (several outputs: row objects).

    Example:
        >>> import numpy as np
        >>> encode_predictions({"predict": np.array([[0.2, 0.8], [0.6, 0.4]])})
        {'predictions': [[0.2, 0.8], [0.6, 0.4]]}
        >>> encode_predictions({"label": np.array([1, 0]), "score": np.array([0.9, 0.7])})
        {'predictions': [{'label': 1, 'score': 0.9}, {'label': 0, 'score': 0.7}]}
    """
    import numpy as np

    from ._datatypes import to_json_data

    arrays = {
        name: value.to_numpy() if hasattr(value, "to_numpy") else np.asarray(value)
        for name, value in outputs.items()
    }
    if len(arrays) == 1:
        (array,) = arrays.values()
        values = to_json_data(array)
        if array.ndim > 1:
            width = int(np.prod(array.shape[1:]))
            values = [values[i : i + width] for i in range(0, len(values), width)]
        return {"predictions": values}
    columns = {name: to_json_data(array) for name, array in arrays.items()}
    rows = len(next(iter(columns.values())))
    return {"predictions": [{n: c[i] for n, c in columns.items()} for i in range(rows)]}


def _frame(data: Any) -> Any:
    import pandas as pd

    try:
        return pd.DataFrame(data)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"the data cannot be read as a table: {exc}") from None


def _split_frame(data: Any) -> Any:
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise InvalidInput('dataframe_split must be an object with "columns" and "data" lists')
    columns = data.get("columns")
    if columns is not None and (
        not isinstance(columns, list) or not all(isinstance(c, str) for c in columns)
    ):
        raise InvalidInput('dataframe_split "columns" must be a list of column names (strings)')
    import pandas as pd

    rows = data["data"]
    first = rows[0] if rows else None
    width = len(columns) if columns is not None else len(first) if isinstance(first, list) else 0
    if any(not isinstance(row, list) or len(row) != width for row in rows):
        raise InvalidInput(
            f"every dataframe_split row must be a list of {width} values (one per column)"
        )
    try:
        return pd.DataFrame(rows, columns=columns)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"dataframe_split cannot be read as a table: {exc}") from None


def _instances(key: str, data: Any, model: ServedModel) -> Any:
    import numpy as np

    if isinstance(data, dict):
        if model.signature is not None and model.signature.is_tensor_based:
            return {name: np.asarray(value) for name, value in data.items()}
        return _frame(data)
    if not isinstance(data, list) or not data:
        raise InvalidInput(f"{key} must be a non-empty list of rows or an object of columns")
    if all(isinstance(row, dict) for row in data):
        return _frame(data)
    signature = model.signature
    if signature is not None and not signature.is_tensor_based:
        names = [spec.name for spec in signature.inputs]
        if all(isinstance(row, list) and len(row) == len(names) for row in data):
            return _frame({name: [row[i] for row in data] for i, name in enumerate(names)})
        raise InvalidInput(
            f"{key} rows must be objects, or lists of {len(names)} values in the order "
            f"{', '.join(str(n) for n in names[:12])}{' ...' if len(names) > 12 else ''}"
        )
    try:
        return np.asarray(data)
    except ValueError:
        raise InvalidInput(f"{key} is ragged (rows of different lengths)") from None
