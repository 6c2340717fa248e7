"""The built-in materializers' byte formats: canonical JSON, Parquet (Arrow and pandas), .npy,
raw bytes and pickle, each to bytes and back from a file.

Equal values give equal bytes: JSON with sorted keys and no spaces, Parquet as pyarrow writes it
(no timestamps), .npy without pickle. Reading a pickle is not here: only the registry's guarded
loader does that.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from ..errors import InvalidInput

__all__ = ["SUFFIX", "from_file", "is_json", "to_bytes"]

_SERIES_KEY = b"loopwright.series"

SUFFIX = {
    "arrow": ".parquet",
    "pandas": ".parquet",
    "numpy": ".npy",
    "bytes": ".bin",
    "json": ".json",
    "pickle": ".pkl",
}


def to_bytes(kind: str, value: Any) -> bytes:
    if kind == "json":
        return _canonical_json(value)
    if kind == "bytes":
        return bytes(value)
    if kind == "numpy":
        import numpy as np

        buffer = io.BytesIO()
        np.save(buffer, value, allow_pickle=False)
        return buffer.getvalue()
    if kind == "arrow":
        return _parquet(value)
    if kind == "pandas":
        return _parquet(_pandas_table(value))
    try:
        # cloudpickle (when installed) also stores lambdas and local classes; its output is an
        # ordinary pickle that the guarded loader reads where cloudpickle is importable.
        import cloudpickle as pickler
    except ImportError:
        import pickle as pickler
    data: bytes = pickler.dumps(value, protocol=5)
    return data


def from_file(kind: str, path: Path) -> Any:
    if kind == "json":
        return json.loads(path.read_bytes())
    if kind == "bytes":
        return path.read_bytes()
    if kind == "numpy":
        import numpy as np

        return np.load(path, allow_pickle=False)
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    if kind == "arrow":
        return table
    metadata = table.schema.metadata or {}
    frame = table.to_pandas()
    if _SERIES_KEY in metadata:
        series = frame.iloc[:, 0]
        series.name = json.loads(metadata[_SERIES_KEY])["name"]
        return series
    return frame


def _parquet(table: Any) -> bytes:
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    # Parquet as pyarrow writes it holds no timestamps: equal tables give equal bytes.
    pq.write_table(table, buffer)
    return buffer.getvalue()


def _pandas_table(value: Any) -> Any:
    import pandas as pd
    import pyarrow as pa

    if isinstance(value, pd.Series):
        frame = value.to_frame(name="series")
        table = pa.Table.from_pandas(frame, preserve_index=True)
        series = json.dumps({"name": _json_name(value.name)}).encode()
        return table.replace_schema_metadata({**(table.schema.metadata or {}), _SERIES_KEY: series})
    try:
        return pa.Table.from_pandas(value, preserve_index=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InvalidInput(
            f"the DataFrame cannot be stored as Parquet ({exc}); convert its columns to "
            "Arrow-compatible types, or return it from a @step(pickle=True)"
        ) from exc


def _json_name(name: Any) -> Any:
    if name is None or isinstance(name, (str, int, float, bool)):
        return name
    raise InvalidInput(f"a Series named {name!r} cannot be stored: name it with a string or number")


def _canonical_json(value: Any) -> bytes:
    # Sorted keys and no spaces: the same value gives the same bytes (and digest) anywhere.
    return json.dumps(
        _plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=True
    ).encode()


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if type(value).__module__ == "numpy":
        return value.item()
    return value


def is_json(value: Any, depth: int = 0) -> bool:
    if depth > 100:
        return False
    if value is None or type(value) in (bool, int, str):
        return True
    if type(value) is float:
        return True
    if type(value).__module__ == "numpy" and _is_numpy_scalar(value):
        return True
    if type(value) in (list, tuple):
        return all(is_json(item, depth + 1) for item in value)
    if type(value) is dict:
        return all(type(key) is str and is_json(item, depth + 1) for key, item in value.items())
    return False


def _is_numpy_scalar(value: Any) -> bool:
    import numpy as np

    return isinstance(value, (np.bool_, np.integer, np.floating))
