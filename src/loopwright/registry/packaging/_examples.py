"""Input examples stored as JSON inside a package (``input_example.json``).

A DataFrame is stored in pandas' ``split`` orientation without the index (``{"columns": [...],
"data": [[...], ...]}``, as MLflow stores it), an array as nested lists, a dict of arrays as a
dict of nested lists, and a list as itself. Missing values become ``null``, timestamps ISO
strings and bytes base64 text.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any

from ...errors import InvalidInput
from ._dtypes import is_frame, is_series

__all__ = ["EXAMPLE_FILE", "dump_example", "load_example"]

EXAMPLE_FILE = "input_example.json"


def dump_example(example: Any) -> bytes:
    """The JSON bytes of an input example.

    Example:
        >>> dump_example({"x": [1, 2]})
        b'{"x": [1, 2]}'
    """
    if is_frame(example):
        frame = example.astype(object).where(example.notna(), None)
        document: Any = {"columns": [str(c) for c in frame.columns], "data": frame.values.tolist()}
    elif is_series(example):
        document = example.astype(object).where(example.notna(), None).tolist()
    elif isinstance(example, dict):
        document = {str(key): _plain(value) for key, value in example.items()}
    else:
        document = _plain(example)
    try:
        return json.dumps(document, default=_jsonable, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"the input example cannot be stored as JSON ({exc}); give a DataFrame, an array, "
            "a dict of arrays or a list of plain values"
        ) from None


def load_example(data: bytes) -> Any:
    """The example back: a DataFrame for the split layout, arrays for lists, else as stored."""
    document = json.loads(data)
    if isinstance(document, dict) and set(document) == {"columns", "data"}:
        import pandas as pd

        return pd.DataFrame(document["data"], columns=document["columns"])
    import numpy as np

    if isinstance(document, list):
        return np.asarray(document)
    if isinstance(document, dict):
        return {key: np.asarray(value) for key, value in document.items()}
    return document


def _plain(value: Any) -> Any:
    tolist = getattr(value, "tolist", None)
    return tolist() if callable(tolist) else value


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    isoformat = getattr(value, "isoformat", None)
    if callable(isoformat):
        return isoformat()
    item = getattr(value, "item", None)
    if callable(item):
        plain = item()
        return None if isinstance(plain, float) and math.isnan(plain) else plain
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
