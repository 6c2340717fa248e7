"""Tabular profiles: per-column statistics and a row sample, the reference for drift monitoring.

DuckDB computes a profile over the file itself, streaming under a fixed memory limit, so files
larger than memory work. Statistics are exact while that is cheap (up to ``EXACT_ROWS`` rows); past
it, distinct counts of numeric, datetime and other columns come from HyperLogLog and quantiles from
a deterministic reservoir sample of ``QUANTILE_SAMPLE`` rows, and the column says so
(``distinct_approximate`` / ``quantiles_approximate``). Counts, min/max, mean, std, histograms,
top categories and their distinct counts are always exact.

Example:
    >>> import pyarrow as pa
    >>> from loopwright.data.profile import profile_table
    >>> profile = profile_table(pa.table({"age": [31, 45, 52], "city": ["Oslo", "Lima", "Oslo"]}))
    >>> profile["columns"]["age"]["quantiles"]["p50"], profile["columns"]["city"]["top"][0]
    (45.0, {'value': 'Oslo', 'count': 2})

    ``profile_file("train.parquet")`` does the same for a file, without loading it.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import DataError, InvalidInput, NotFound
from ._sql import jsonable, sql_ident, sql_literal

if TYPE_CHECKING:
    import pyarrow

__all__ = ["is_tabular", "profile_file", "profile_table", "schema_of"]

EXACT_ROWS = 1_000_000
"""Up to this many rows (and 20M cells) every statistic is exact."""
QUANTILE_SAMPLE = 100_000
"""Rows of the reservoir sample that quantiles come from past ``EXACT_ROWS``."""
_EXACT_CELLS = 20_000_000
_SEED = 42
_DUCKDB_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "memory_limit": "1GB",
    "threads": 2,
    "preserve_insertion_order": False,
}
_QUANTILES = {f"p{round(q * 100):02d}": q for q in (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)}
_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "csv"}
_SUFFIXES |= {".arrow": "arrow", ".feather": "arrow", ".ipc": "arrow"}
_NUMERIC = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE", "DECIMAL"}
_NUMERIC |= {"U" + name for name in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT")}
_DATETIME = re.compile(r"(DATE|TIME|TIMESTAMP)(_S|_MS|_NS| WITH TIME ZONE)?")
_T = TypeVar("_T")


def is_tabular(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a format that can be profiled, judged by its suffix alone.

    Parquet (``.parquet``, ``.pq``), CSV/TSV (``.csv``, ``.tsv``, optionally ``.gz``) and Arrow IPC
    (``.arrow``, ``.feather``, ``.ipc``).
    """
    return _format_of(path) is not None


def schema_of(path: str | os.PathLike[str]) -> list[dict[str, str]]:
    """Column names and Arrow type strings, read cheaply (Parquet footer, CSV sniffing).

    Example:
        >>> schema_of("train.parquet")  # doctest: +SKIP
        [{'name': 'age', 'type': 'int64'}, {'name': 'city', 'type': 'string'}]
    """
    fmt = _checked_format(path)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        schema = _reading(path, fmt, lambda: pq.read_schema(path))
    elif fmt == "arrow":
        schema = _reading(path, fmt, lambda: _open_arrow(path, schema_only=True).schema)
    else:
        with _connect() as con:
            sql = _select("*", _csv_scan(path), "LIMIT 0")
            schema = _reading(path, fmt, lambda: con.sql(sql).to_arrow_table().schema)
    return [{"name": field.name, "type": str(field.type)} for field in schema]


def profile_file(
    path: str | os.PathLike[str],
    *,
    sample_size: int = 10_000,
    histogram_bins: int = 20,
    top_k: int = 10,
) -> dict[str, Any]:
    """Profile a Parquet, CSV/TSV or Arrow IPC file without loading it into memory.

    Returns a JSON-serialisable dict: ``format``, ``row_count``, ``column_count``, ``columns``
    (name -> statistics) and ``sample`` (``rows`` as records, and their number as ``size``).
    NaN and infinities never enter min/max/mean/std/quantiles/histograms: they are counted in
    ``nan_count`` / ``inf_count`` and are ``None`` in the sample. ``std`` has ddof=1; quantiles
    interpolate linearly and histograms bin as ``numpy.quantile`` / ``numpy.histogram`` do.
    """
    fmt = _checked_format(path)
    _check_options(sample_size, histogram_bins, top_k)
    with _connect() as con:
        fields: Any = []  # CSV: DuckDB's inferred schema
        if fmt == "parquet":
            import pyarrow.parquet as pq

            fields = _reading(path, fmt, lambda: pq.read_schema(path))
            con.execute("CREATE VIEW src AS " + _select("*", f"read_parquet({sql_literal(path)})"))
        elif fmt == "arrow":
            data = _reading(path, fmt, lambda: _open_arrow(path, schema_only=False))
            fields = data.schema
            con.register("src", data)
        else:
            _reading(path, fmt, lambda: _materialise_csv(con, path))
        return _reading(
            path, fmt, lambda: _profile(con, fmt, fields, sample_size, histogram_bins, top_k)
        )


def profile_table(
    table: pyarrow.Table, *, sample_size: int = 10_000, histogram_bins: int = 20, top_k: int = 10
) -> dict[str, Any]:
    """Profile an in-memory Arrow table; the result has the shape of :func:`profile_file`'s."""
    import pyarrow as pa

    if not isinstance(table, pa.Table):
        raise InvalidInput(f"profile_table needs a pyarrow.Table, not {type(table).__name__}")
    _check_options(sample_size, histogram_bins, top_k)
    if table.num_columns == 0:  # DuckDB cannot scan a table without columns
        nothing: dict[str, Any] = {"columns": {}, "sample": {"rows": [], "size": 0}}
        return {"format": "table", "row_count": table.num_rows, "column_count": 0, **nothing}
    with _connect() as con:
        con.register("src", table)
        return _profile(con, "table", table.schema, sample_size, histogram_bins, top_k)


def _profile(con: Any, fmt: str, fields: Any, size: int, bins: int, k: int) -> dict[str, Any]:
    """Profile the relation ``src``; ``fields`` is the source's own Arrow schema, if it has one."""
    described = con.execute("DESCRIBE src").fetchall()
    names: list[str] = [row[0] for row in described]  # DuckDB's, which the SQL uses
    dtypes: list[str] = [row[1] for row in described]
    labels = [field.name for field in fields]
    if len(labels) != len(names) or len(set(labels)) != len(labels):  # CSV, or clashing names
        fields, labels = con.sql(_select("*", "src", "LIMIT 0")).to_arrow_table().schema, names
    rows: int = con.execute("SELECT count(*) FROM src").fetchall()[0][0]
    exact = rows <= EXACT_ROWS and rows * len(names) <= _EXACT_CELLS
    kinds = [_kind(dtype) for dtype in dtypes]
    stats = _aggregates(con, names, dtypes, kinds, exact)
    columns: list[dict[str, Any]] = []
    for i, (name, kind) in enumerate(zip(names, kinds, strict=True)):
        count = stats[i].pop("count")
        nulls = rows - count
        column = {"type": str(fields[i].type), "kind": kind, "count": count, "null_count": nulls}
        column |= {"null_fraction": nulls / rows if rows else 0.0, **stats[i]}
        if kind == "boolean":
            column["distinct"] = int(column["true_count"] > 0) + int(column["false_count"] > 0)
        elif kind == "categorical":
            column["distinct"], column["top"] = _top(con, name, k)
        else:
            column["distinct_approximate"] = not exact
        columns.append(column)
    numeric = [i for i, kind in enumerate(kinds) if kind == "numeric"]
    _second_pass(con, [(i, names[i], dtypes[i], columns[i]) for i in numeric], bins)
    con.execute("SET threads = 1")  # REPEATABLE sampling is deterministic on one thread only
    reservoir = size if exact else max(size, QUANTILE_SAMPLE)
    con.execute("CREATE TEMP TABLE reservoir AS " + _select("*", "src", _sampling(reservoir)))
    picked = con.execute(_select("*", "reservoir", "" if reservoir == size else _sampling(size)))
    sample = [dict(zip(labels, map(jsonable, row), strict=True)) for row in picked.fetchall()]
    con.execute(f"SET threads = {_DUCKDB_CONFIG['threads']}")
    numeric_columns = [(names[i], dtypes[i]) for i in numeric]
    for i, values in zip(numeric, _quantiles(con, exact, numeric_columns), strict=True):
        columns[i] |= {"quantiles": values, "quantiles_approximate": not exact}
    return {
        "format": fmt,
        "row_count": rows,
        "column_count": len(names),
        "columns": dict(zip(labels, columns, strict=True)),
        "sample": {"rows": sample, "size": len(sample)},
    }


def _aggregates(
    con: Any, names: list[str], dtypes: list[str], kinds: list[str], exact: bool
) -> list[dict[str, Any]]:
    """Every column's single-pass statistics, from one query."""
    inner: list[str] = []
    aggregates: list[tuple[int, str, str]] = []
    for i, (name, dtype, kind) in enumerate(zip(names, dtypes, kinds, strict=True)):
        c, v = f"c{i}", f"v{i}"
        inner.append(f"{sql_ident(name)} AS {c}")
        aggregates.append((i, "count", f"count({c})"))
        if kind in ("numeric", "datetime", "other"):
            distinct = f"count(DISTINCT {c})" if exact else f"approx_count_distinct({c})"
            aggregates.append((i, "distinct", distinct))
        if kind == "numeric":
            inner.append(f"{_finite(name, dtype)} AS {v}")
            extreme = v if dtype in ("FLOAT", "DOUBLE") else c  # integers stay exact
            aggregates += [(i, "min", f"min({extreme})"), (i, "max", f"max({extreme})")]
            aggregates.append((i, "mean", f"avg({v})"))
            aggregates.append((i, "zeros", _count_if(f"{c} = 0")))
            if dtype in ("FLOAT", "DOUBLE"):
                aggregates.append((i, "nan_count", _count_if(f"isnan({c})")))
                aggregates.append((i, "inf_count", _count_if(f"isinf({c})")))
        elif kind == "categorical":
            aggregates.append((i, "min_length", f"min(length(CAST({c} AS VARCHAR)))"))
            aggregates.append((i, "max_length", f"max(length(CAST({c} AS VARCHAR)))"))
        elif kind == "boolean":
            aggregates.append((i, "true_count", _count_if(c)))
            aggregates.append((i, "false_count", _count_if(f"NOT {c}")))
        elif kind == "datetime":
            aggregates += [(i, "min", f"min({c})"), (i, "max", f"max({c})")]
    source = f"({_select(', '.join(inner), 'src')})"
    row = con.execute(_select(", ".join(sql for *_, sql in aggregates), source)).fetchall()[0]
    stats: list[dict[str, Any]] = [{} for _ in names]
    for (i, stat, _), value in zip(aggregates, row, strict=True):
        stats[i][stat] = jsonable(value)
    return stats


def _top(con: Any, name: str, k: int) -> tuple[int, list[dict[str, Any]]]:
    """Exact distinct count and ``k`` most frequent values (ties broken by value) of one column."""
    where = f"WHERE {sql_ident(name)} IS NOT NULL"
    source = f"({_select(f'{sql_ident(name)} AS c', 'src', where)})"
    tail = f"GROUP BY c ORDER BY n DESC, c LIMIT {max(k, 1)}"
    rows = con.execute(_select("c, count(*) AS n, count(*) OVER ()", source, tail)).fetchall()
    distinct = rows[0][2] if rows else 0
    return distinct, [{"value": jsonable(value), "count": n} for value, n, _ in rows[:k]]


def _second_pass(con: Any, numeric: list[tuple[int, str, str, dict[str, Any]]], bins: int) -> None:
    """Standard deviations around the known mean, and histograms with ``numpy.histogram``'s bins."""
    finite: list[str] = []
    aggregates: list[str] = []
    slots: list[tuple[dict[str, Any], str]] = []  # the column and statistic each aggregate feeds
    for i, name, dtype, column in numeric:
        column |= {"std": None, "histogram": {"edges": [], "counts": []}}
        if column["count"] == column.get("nan_count", 0) + column.get("inf_count", 0):
            continue  # no finite value
        v = f"v{i}"
        finite.append(f"{_finite(name, dtype)} AS {v}")
        if column["mean"] is not None:  # else the sum overflowed
            m = _double(column["mean"])
            aggregates.append(f"[count({v}), sum({v} - {m}), sum(({v} - {m}) * ({v} - {m}))]")
            slots.append((column, "std"))
        lo, hi = float(column["min"]), float(column["max"])
        lo, hi = (lo - 0.5, hi + 0.5) if lo == hi else (lo, hi)
        step = (hi - lo) / bins
        if math.isfinite(step) and step > 0:  # else the range is too wide or narrow for float64
            edges = [j * step + lo for j in range(bins)] + [hi]  # numpy.linspace's arithmetic
            column["histogram"]["edges"] = edges
            # DuckDB's buckets are (b_k-1, b_k]; negating makes them numpy's [e_j, e_j+1)
            bounds = ", ".join(_double(-edge) for edge in reversed(edges[:-1]))
            aggregates.append(f"histogram(-{v}, [{bounds}])")
            slots.append((column, "histogram"))
    if not aggregates:
        return
    source = f"({_select(', '.join(finite), 'src')})"
    row = con.execute(_select(", ".join(aggregates), source)).fetchall()[0]
    for (column, statistic), value in zip(slots, row, strict=True):
        if statistic == "std":
            n, centred, squares = value
            if n > 1:  # the corrected two-pass formula
                column["std"] = jsonable(math.sqrt(max(squares - centred**2 / n, 0.0) / (n - 1)))
        else:
            edges = column["histogram"]["edges"]
            column["histogram"]["counts"] = [
                0 if edges[j] == edges[j + 1] else int(value.get(-edges[j], 0)) for j in range(bins)
            ]


def _quantiles(con: Any, exact: bool, numeric: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Linearly interpolated quantiles of the finite values, of every row or of the reservoir."""
    if not numeric:
        return []
    levels = ", ".join(str(q) for q in _QUANTILES.values())
    select = ", ".join(f"quantile_cont({_finite(n, t)}, [{levels}])" for n, t in numeric)
    row = con.execute(_select(select, "src" if exact else "reservoir")).fetchall()[0]
    missing = [None] * len(_QUANTILES)
    return [dict(zip(_QUANTILES, jsonable(values or missing), strict=True)) for values in row]


@contextlib.contextmanager
def _connect() -> Iterator[Any]:
    """A throwaway DuckDB database with bounded memory; it spills into a private temp folder."""
    import duckdb

    with tempfile.TemporaryDirectory(prefix="loopwright-profile-") as folder:
        config = _DUCKDB_CONFIG | {"temp_directory": folder}
        con = duckdb.connect(os.path.join(folder, "profile.duckdb"), config=config)
        try:
            yield con
        finally:
            con.close()


def _materialise_csv(con: Any, path: str | os.PathLike[str]) -> None:
    """Parse the CSV once into DuckDB's columnar storage, which every later pass reads."""
    import duckdb

    try:
        con.execute("CREATE TABLE src AS " + _select("*", _csv_scan(path)))
    except duckdb.Error:  # types sniffed from a sample may break further on: sniff everything
        sniffed_all = _csv_scan(path, sniff_all=True)
        con.execute("CREATE OR REPLACE TABLE src AS " + _select("*", sniffed_all))


def _csv_scan(path: str | os.PathLike[str], sniff_all: bool = False) -> str:
    tsv = os.fspath(path).lower().removesuffix(".gz").endswith(".tsv")
    options = (", delim = '\t'" if tsv else "") + (", sample_size = -1" if sniff_all else "")
    return f"read_csv({sql_literal(path)}{options})"


def _open_arrow(path: str | os.PathLike[str], *, schema_only: bool) -> Any:
    """An Arrow IPC file as a lazily scanned dataset; the IPC stream format is read whole."""
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.ipc as ipc

    try:
        return ds.dataset(os.fspath(path), format="ipc")
    except pa.ArrowInvalid:
        reader = ipc.open_stream(pa.memory_map(os.fspath(path)))
        return reader if schema_only else reader.read_all()


def _format_of(path: str | os.PathLike[str]) -> str | None:
    name = os.fspath(path).lower()
    fmt = _SUFFIXES.get(os.path.splitext(name.removesuffix(".gz"))[1])
    return None if name.endswith(".gz") and fmt != "csv" else fmt


def _checked_format(path: str | os.PathLike[str]) -> str:
    fmt = _format_of(path)
    if fmt is None:
        raise InvalidInput(
            f"cannot profile '{os.fspath(path)}': not a tabular file; use .parquet/.pq, "
            ".csv/.tsv (optionally .gz) or .arrow/.feather/.ipc"
        )
    if not os.path.isfile(path):
        raise NotFound(f"cannot profile '{os.fspath(path)}': no such file")
    return fmt


def _check_options(sample_size: int, histogram_bins: int, top_k: int) -> None:
    for option, value, least in (
        ("sample_size", sample_size, 0),
        ("histogram_bins", histogram_bins, 1),
        ("top_k", top_k, 0),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise InvalidInput(f"{option} must be an integer >= {least}, not {value!r}")


def _reading(path: str | os.PathLike[str], fmt: str, read: Callable[[], _T]) -> _T:
    """Run ``read``, turning a reader's failure into a DataError that names the file."""
    import duckdb
    import pyarrow as pa

    try:
        return read()
    except (duckdb.Error, pa.ArrowException, OSError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(
            f"cannot read '{os.fspath(path)}' as {fmt}: {message}; check that the file is complete "
            "and really in that format"
        ) from error


def _kind(dtype: str) -> str:
    if dtype == "BOOLEAN":
        return "boolean"
    if dtype.split("(")[0] in _NUMERIC:
        return "numeric"
    if dtype == "VARCHAR" or dtype.startswith("ENUM("):
        return "categorical"
    return "datetime" if _DATETIME.fullmatch(dtype) else "other"


def _finite(name: str, dtype: str) -> str:
    """The column as DOUBLE, with NaN and infinities turned into NULL."""
    if dtype in ("FLOAT", "DOUBLE"):
        return f"CASE WHEN isfinite({sql_ident(name)}) THEN CAST({sql_ident(name)} AS DOUBLE) END"
    return f"CAST({sql_ident(name)} AS DOUBLE)"


def _select(items: str, source: str, tail: str = "") -> str:
    """A SELECT built only from quoted identifiers, escaped literals and fixed SQL."""
    return f"SELECT {items} FROM {source} {tail}"  # noqa: S608


def _count_if(condition: str) -> str:
    return f"coalesce(count_if({condition}), 0)"


def _sampling(rows: int) -> str:
    return f"USING SAMPLE reservoir({rows} ROWS) REPEATABLE ({_SEED})"


def _double(value: float) -> str:
    return f"CAST('{float(value)!r}' AS DOUBLE)"
