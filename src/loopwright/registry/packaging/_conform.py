"""Inferring specs from data, and checking data against specs (the work behind signatures)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ...errors import InvalidInput
from . import _dtypes
from ._specs import ColumnSpec

__all__ = ["columns", "infer_specs", "tensors"]


def infer_specs(value: Any, what: str) -> tuple[ColumnSpec, ...]:
    """The specs describing ``value`` (see ``signature.infer_signature``)."""
    if _dtypes.is_frame(value):
        names = [str(label) for label in value.columns]
        if len(set(names)) != len(names):
            raise InvalidInput(f"{what} has duplicate column names; rename them")
        return tuple(
            ColumnSpec(name, _typed(value[label], f"{what} column {name!r}"))
            for name, label in zip(names, value.columns, strict=True)
        )
    if _dtypes.is_series(value):
        name = None if value.name is None else str(value.name)
        return (ColumnSpec(name, _typed(value, f"{what} {name or 'series'}")),)
    if isinstance(value, Mapping):
        if not value:
            raise InvalidInput(f"{what} is an empty dict; give at least one named array")
        return tuple(_tensor_spec(str(k), v, f"{what}[{k!r}]") for k, v in value.items())
    if isinstance(value, list | tuple) and value and all(isinstance(r, Mapping) for r in value):
        import pandas as pd

        return infer_specs(pd.DataFrame(list(value)), what)
    return (_tensor_spec(None, value, what),)


def columns(specs: Sequence[ColumnSpec], data: Any) -> tuple[Any, list[str]]:
    """``data`` as a DataFrame with the specs' columns in order, and the problems found."""
    frame = _as_frame(data)
    if frame is None:
        return data, [
            f"expected a table (a pandas DataFrame, a dict of columns or a list of row dicts), "
            f"got {type(data).__name__}"
        ]
    by_name: dict[str, Any] = {}
    for label in frame.columns:
        if str(label) in by_name:
            return data, [f"column {str(label)!r} appears twice"]
        by_name[str(label)] = label
    problems: list[str] = []
    labels: list[Any] = []
    widened: dict[Any, Any] = {}
    for spec in specs:
        assert spec.name is not None  # column signatures name every input
        label = by_name.get(spec.name)
        if label is None:
            if spec.required:
                problems.append(f"missing column {spec.name!r}")
            continue
        labels.append(label)
        values = frame[label]
        got = _dtypes.column_type(values)
        if got in (spec.type, _dtypes.NULL):
            continue
        if got is not None and _dtypes.widens(got, spec.type):
            try:
                widened[label] = values.astype(_dtypes.numpy_dtype(spec.type))
                continue
            except (TypeError, ValueError):
                pass  # e.g. missing values in a nullable integer column: reported below
        shown = got or "values of mixed types"
        problems.append(f"column {spec.name!r} expects {spec.type}, got {shown} ({values.dtype})")
    if problems:
        return data, problems
    if not widened and list(frame.columns) == labels:
        return frame, []
    result = frame.loc[:, labels].copy()
    for label, values in widened.items():
        result[label] = values
    return result, []


def tensors(specs: Sequence[ColumnSpec], data: Any) -> tuple[Any, list[str]]:
    """``data`` as the array (one spec) or dict of arrays (several) the specs describe."""
    if len(specs) == 1:
        spec = specs[0]
        if isinstance(data, Mapping):
            if spec.name is None or spec.name not in data:
                return data, [f"expected an array, or a dict with the key {spec.name!r}"]
            data = data[spec.name]
        array, problem = _conform_tensor(spec, data)
        return array, [] if problem is None else [problem]
    if _dtypes.is_frame(data):
        data = {str(label): data[label].to_numpy() for label in data.columns}
    if not isinstance(data, Mapping):
        return data, [f"expected a dict of arrays named {[s.name for s in specs]}"]
    result: dict[str, Any] = {}
    problems: list[str] = []
    for spec in specs:
        assert spec.name is not None  # several tensors always have names
        if spec.name not in data:
            problems.append(f"missing tensor {spec.name!r}")
            continue
        result[spec.name], problem = _conform_tensor(spec, data[spec.name])
        if problem is not None:
            problems.append(problem)
    return result, problems


def _typed(values: Any, what: str) -> str:
    kind = _dtypes.column_type(values)
    if kind is None:
        raise InvalidInput(
            f"{what} has values of dtype {values.dtype} that fit no column type; "
            f"convert them to one of {', '.join(_dtypes.COLUMN_TYPES)}"
        )
    if kind == _dtypes.NULL:
        raise InvalidInput(
            f"{what} holds only missing values, so its type cannot be inferred; give an "
            "example with values or pass an explicit signature"
        )
    return kind


def _tensor_spec(name: str | None, value: Any, what: str) -> ColumnSpec:
    import numpy as np

    array = value.to_numpy() if _dtypes.is_frame(value) or _dtypes.is_series(value) else value
    array = np.asarray(array)
    if array.ndim == 0:
        raise InvalidInput(f"{what} is a scalar; give an array with a batch dimension")
    kind = _dtypes.tensor_type(array)
    if kind not in _dtypes.TENSOR_TYPES:
        raise InvalidInput(
            f"{what} has dtype {array.dtype}, which signatures do not support; convert it to a "
            "numeric, string or bytes dtype"
        )
    return ColumnSpec(name, kind, (-1, *array.shape[1:]))


def _as_frame(data: Any) -> Any:
    if _dtypes.is_frame(data):
        return data
    if isinstance(data, Mapping):
        import pandas as pd

        if all(_is_scalar(v) for v in data.values()):
            return pd.DataFrame([dict(data)])
        return pd.DataFrame(dict(data))
    if isinstance(data, list | tuple) and data and all(isinstance(r, Mapping) for r in data):
        import pandas as pd

        return pd.DataFrame(list(data))
    return None


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | bytes | int | float | bool) or value is None


def _conform_tensor(spec: ColumnSpec, data: Any) -> tuple[Any, str | None]:
    import numpy as np

    label = f"tensor {spec.name!r}" if spec.name else "the input tensor"
    if _dtypes.is_frame(data) or _dtypes.is_series(data):
        data = data.to_numpy()
    try:
        array = np.asarray(data)
    except (TypeError, ValueError) as exc:
        return data, f"{label} cannot be read as an array ({exc})"
    assert spec.shape is not None
    got = _dtypes.tensor_type(array)
    wrong_shape = array.ndim != len(spec.shape) or any(
        want not in (-1, have) for want, have in zip(spec.shape, array.shape, strict=False)
    )
    if wrong_shape or not _dtypes.tensor_accepts(spec.type, got):
        want = spec.describe().removeprefix(f"{spec.name}: ")
        return data, f"{label} expects {want}, got {got} {tuple(array.shape)}"
    if got != spec.type and spec.type not in ("str", "object"):
        array = array.astype(spec.type)
    return array, None
