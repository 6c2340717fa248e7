"""Running on-demand feature views: their stored code over a DataFrame, offline and online.

An on-demand view's spec holds its function's source text (never a pickle), so a training set
and a served prediction run the same code. The text is executed in a fresh module namespace
(postponed annotations, so ``df: pd.DataFrame`` needs no import at definition time), once per
distinct code (cached). Applying code is trusted like a pipeline's (through a server only an
administrator may): the code runs with the rights of whoever builds training sets or serves.
"""

from __future__ import annotations
import __future__

import functools
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput
from ._selection import OnDemandPick
from .spec import Spec

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = ["compile_function", "input_frame", "run"]

Function = Callable[["pd.DataFrame"], "pd.DataFrame"]
_CACHED_FUNCTIONS = 256
# Pandas dtypes the computed columns are cast to: nullable ones for integers and booleans, so a
# missing value stays missing instead of failing the cast or becoming a float.
_PANDAS: Mapping[str, str] = {
    "int32": "Int32",
    "int64": "Int64",
    "float32": "float32",
    "float64": "float64",
    "bool": "boolean",
    "string": "string",
}
# Column types taken as they are: the target, or NumPy's own when it has no missing value.
_AS_DECLARED: Mapping[str, tuple[str, ...]] = {
    "int32": ("Int32", "int32"),
    "int64": ("Int64", "int64"),
    "float32": ("float32",),
    "float64": ("float64",),
    "bool": ("boolean", "bool"),
    "string": ("string",),
}


def compile_function(spec: Spec) -> Function:
    """The function of an on-demand view's spec (``function`` defined by ``code``).

    Raises:
        InvalidInput: the code fails to compile or to run at module level, or does not define
            the function; the message names the view.
    """
    return _compile(spec["name"], spec["function"], spec["code"])


# Keyed by the code itself (a string hashes once): no digest to compute on the serving path.
@functools.lru_cache(maxsize=_CACHED_FUNCTIONS)
def _compile(view: str, function: str, code: str) -> Function:
    namespace: dict[str, Any] = {"__name__": f"loopwright_on_demand_{view}"}
    try:
        compiled = compile(
            code, f"<on-demand view {view}>", "exec",
            flags=__future__.annotations.compiler_flag, dont_inherit=True,
        )  # fmt: skip
        exec(compiled, namespace)  # noqa: S102 - applied code is trusted (module docstring)
    except Exception as exc:
        raise InvalidInput(
            f"on-demand view {view!r}: its code fails to load: {type(exc).__name__}: {exc}"
        ) from exc
    found = namespace.get(function)
    if not callable(found):
        raise InvalidInput(f"on-demand view {view!r}: its code does not define {function!r}")
    return found  # type: ignore[no-any-return]


def input_frame(inputs: Iterable[tuple[str, str, Any]], rows: int) -> pd.DataFrame:
    """An on-demand view's input frame, built the same way for a training set and a served
    prediction so its function sees the same values and types in both (a float32 feature
    read as a Python float would be float64 online, and float32 * float32 then differs).

    ``inputs`` are ``(name, declared dtype, values)``: the request fields, then each source
    view's features; values are an Arrow array or a list of Python values. A name already
    given keeps its first values (applying refuses such views; older versions may have them).
    """
    import pyarrow as pa

    names: list[str] = []
    arrays: list[pa.Array] = []
    for name, dtype, values in inputs:
        if name in names:
            continue
        names.append(name)
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        try:
            array = values if isinstance(values, pa.Array) else pa.array(values, arrow_type(dtype))
            arrays.append(array.cast(arrow_type(dtype)))
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError) as exc:
            raise InvalidInput(
                f"on-demand input {name!r} is declared {dtype}, but its values are not: {exc}"
            ) from exc
    if not names:
        import pandas as pd

        return pd.DataFrame(index=pd.RangeIndex(rows))
    table = pa.RecordBatch.from_arrays(arrays, names=names)
    return table.to_pandas(types_mapper=_pandas_type)


def arrow_type(dtype: str) -> pa.DataType:
    """The Arrow type of a declared feature dtype (timestamps in microseconds, UTC)."""
    import pyarrow as pa

    from .spec import DTYPES

    if dtype == "timestamp":
        return pa.timestamp("us", tz="UTC")
    return pa.type_for_alias(DTYPES[dtype])


def _pandas_type(arrow: pa.DataType) -> Any:
    """The declared pandas dtype of an input column (``_PANDAS``): nullable integers and
    booleans, so a missing value neither turns integers into floats nor differs by path."""
    import pandas as pd

    for dtype, pandas in _PANDAS.items():
        if dtype not in ("float32", "float64") and arrow == arrow_type(dtype):
            return pd.api.types.pandas_dtype(pandas)
    return None  # floats, timestamps and bytes: Arrow's own conversion


def run(pick: OnDemandPick, frame: pd.DataFrame) -> pd.DataFrame:
    """The picked features of ``pick`` computed over ``frame`` (request fields and every
    feature of its source views, by plain name; the function may modify it), as a DataFrame
    of those features by plain name, cast to their declared types, one row per input row.

    Raises:
        InvalidInput: the function raises, returns something other than a DataFrame of as many
            rows, lacks a picked feature, or returns values not of the declared type.
    """
    import pandas as pd

    function = compile_function(pick.spec)
    what = f"on-demand view {pick.name!r} (v{pick.version})"
    rows = len(frame)
    index = frame.index  # before the function may replace the frame's index
    try:
        result = function(frame)
    except Exception as exc:
        raise InvalidInput(f"{what} failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(result, pd.DataFrame):
        raise InvalidInput(f"{what} must return a pandas DataFrame, not {type(result).__name__}")
    missing = [name for name, _ in pick.features if name not in result.columns]
    if missing:
        raise InvalidInput(
            f"{what} returned no column {', '.join(map(repr, missing))}; it returned "
            f"{', '.join(map(str, result.columns)) or 'no columns'}"
        )
    if len(result) != rows:
        raise InvalidInput(f"{what} returned {len(result)} rows for {rows}; return one per row")
    if not result.index.equals(index) and _same_labels(result.index, index):
        # rows reordered by label (pd.concat of filtered parts): each goes back to its own row
        result = result.reindex(index)
    renumber = not result.index.equals(pd.RangeIndex(rows))
    out = {}
    for name, dtype in pick.features:
        values = result[name].reset_index(drop=True) if renumber else result[name]
        out[name] = _cast(values, dtype, f"{what}: feature {name!r}")
    names = [name for name, _ in pick.features]
    if (
        not renumber
        and list(result.columns) == names
        and all(out[name] is result[name] for name in names)
    ):
        return result  # exactly what was asked: building a new frame would cost more than it
    return pd.DataFrame(out, copy=False)


def _same_labels(result: pd.Index, given: pd.Index) -> bool:
    """Whether ``result`` holds the input's row labels, each once (in any order)."""
    return bool(
        given.is_unique
        and result.is_unique
        and len(result) == len(given)
        and result.isin(given).all()
    )


def _cast(values: pd.Series, dtype: str, what: str) -> pd.Series:
    import pandas as pd

    if str(values.dtype) in _AS_DECLARED.get(dtype, ()):
        return values  # already the declared type: the serving path skips the copy
    try:
        if dtype == "timestamp":
            return pd.to_datetime(values, utc=True)
        if dtype == "bytes":
            if not all(v is None or isinstance(v, bytes) for v in values.tolist()):
                raise TypeError("values are not bytes")
            return values.astype(object)
        return values.astype(_PANDAS[dtype])
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidInput(f"{what} is declared {dtype}, but its values are not: {exc}") from exc
