"""A monitor's window of the prediction log as one Arrow table, with only the columns it needs.

An embedded log (:class:`~loopwright.serving.predictions.PredictionService`, local or S3) is read
through DuckDB (``predictions_view``): it scans only the window's files (the log is laid out by
hour), only the asked columns, filters rows as it streams them and hands Arrow back, so memory
holds the result, never whole files, their other columns or a pandas copy. It reads a few
columns at a time (:func:`_columnwise`): measured on a 1M x 25 window (228 MB of Arrow, one
process per figure), +316 MB peak RSS and 0.45 s, against +459 MB and 0.39 s read whole (DuckDB
keeps the memory its scan and Arrow conversion used, as much again as the result). Rows come in
the files' order; drift, performance and counts do not need one.

Without DuckDB (the ``data`` extra), the log's Arrow reader is used; any other
:class:`~loopwright.serving.Predictions` (a remote log) is read through its ``read`` and
converted once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from ..errors import InvalidInput

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from ..serving import Predictions

__all__ = [
    "INPUT",
    "OUTPUT",
    "SERVED_BY",
    "Window",
    "as_datetime",
    "feature_columns",
    "model_version_counts",
    "read_window",
    "span_ms",
]

INPUT, OUTPUT = "input.", "output."
# Who answered each row: the model version (for per-version figures and the auto reference)
# and the variant (for variant comparisons).
SERVED_BY = ("request_id", "row", "variant", "model", "model_version")


def as_datetime(ms: int) -> datetime:
    """UTC milliseconds as an aware datetime."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def span_ms(
    since: datetime | timedelta | None, until: datetime | timedelta | None, now: int
) -> tuple[int | None, int]:
    """``since`` / ``until`` (datetimes, or timedeltas before ``now``) as UTC milliseconds;
    ``until`` defaults to ``now``, ``since`` to unbounded (None)."""
    end = _ms("until", until, now)
    return _ms("since", since, now), now if end is None else end


def _ms(what: str, value: datetime | timedelta | None, now: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        return now - int(value.total_seconds() * 1000)
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000)
    raise InvalidInput(
        f"{what} must be a datetime, a timedelta (that long ago) or None, "
        f"not {type(value).__name__} {value!r}"
    )


@dataclass(frozen=True)
class Window:
    """The rows read (``table``) and how many the window holds (``rows``): more than the table's
    when the window passed the row cap and a uniform sample of it was read."""

    table: pa.Table
    rows: int

    @property
    def sampled(self) -> bool:
        return self.rows > int(self.table.num_rows)


def read_window(
    predictions: Predictions,
    deployment: str,
    start_ms: int | None,
    end_ms: int,
    columns: Sequence[str] | None,
    *,
    max_rows: int | None = None,
    prefixes: Sequence[str] = (),
) -> Window:
    """The log rows of ``deployment`` in ``[start_ms, end_ms)`` as Arrow, in no set order.

    ``columns``: the columns wanted besides :data:`SERVED_BY` (None: every column). A wanted
    column that no file of the window holds is left out, not an error: a feature dropped by
    the client shows up as missing in the drift result rather than failing the run.
    ``prefixes``: columns named with one of them are wanted too (``output.``), whichever the
    files hold. ``max_rows``: past it, a seeded uniform sample of that many rows is read
    instead (DuckDB's reservoir sample: memory stays bounded by the cap whatever the window
    holds).
    """
    since = None if start_ms is None else as_datetime(start_ms)
    until = as_datetime(end_ms)
    wanted = None if columns is None else list(dict.fromkeys([*SERVED_BY, *columns]))
    if wanted is not None and prefixes:
        return _prefixed(predictions, deployment, since, until, wanted, tuple(prefixes), max_rows)
    location = _duckdb_location(predictions)
    if location is not None:
        return _read_duckdb(location, deployment, since, until, wanted, (), max_rows)
    try:
        table = _read(predictions, deployment, since, until, wanted)
    except InvalidInput as exc:
        if wanted is None or "are in none of the files" not in str(exc):
            raise
        # Some wanted columns are in no file: read what exists (the reader names no other way
        # to learn the files' columns), then keep the wanted ones.
        table = _present(_read(predictions, deployment, since, until, None), wanted)
    return _capped(table, max_rows)


def _duckdb_location(predictions: Predictions) -> str | None:
    """The embedded log's location when DuckDB can read it (None: a remote log, or no DuckDB)."""
    from ..serving.predictions import PredictionService

    if not isinstance(predictions, PredictionService):
        return None
    try:
        import duckdb  # noqa: F401
    except ImportError:
        return None
    return predictions.location


def _capped(table: pa.Table, max_rows: int | None) -> Window:
    """``table`` cut to a seeded uniform sample of ``max_rows`` (the readers other than DuckDB
    read everything first: the cap keeps the figures alike, not the memory)."""
    import numpy as np

    rows = table.num_rows
    if max_rows is None or rows <= max_rows:
        return Window(table, rows)
    keep = np.sort(np.random.default_rng(0).choice(rows, size=max_rows, replace=False))
    return Window(table.take(keep), rows)


def _read(
    predictions: Predictions,
    deployment: str,
    since: datetime | None,
    until: datetime,
    columns: list[str] | None,
) -> pa.Table:
    import pyarrow as pa

    from ..serving.predictions import PredictionService

    if isinstance(predictions, PredictionService):  # the embedded log's Arrow reader: no pandas
        return predictions.read_table(deployment, since=since, until=until, columns=columns)
    frame = predictions.read(deployment, since=since, until=until, columns=columns)
    return pa.Table.from_pandas(frame, preserve_index=False)


def _prefixed(
    predictions: Predictions,
    deployment: str,
    since: datetime | None,
    until: datetime,
    wanted: list[str],
    prefixes: tuple[str, ...],
    max_rows: int | None,
) -> Window:
    location = _duckdb_location(predictions)
    if location is not None:
        return _read_duckdb(location, deployment, since, until, wanted, prefixes, max_rows)
    table = _present(_read(predictions, deployment, since, until, None), wanted, prefixes)
    return _capped(table, max_rows)


def _present(table: pa.Table, wanted: list[str], prefixes: tuple[str, ...] = ()) -> pa.Table:
    import pyarrow as pa

    keep = _pick(table.column_names, wanted, prefixes)
    return table.select(keep) if keep else pa.table({})


def _pick(present: Sequence[str], wanted: list[str], prefixes: tuple[str, ...]) -> list[str]:
    """The wanted columns that are present, in the wanted order, then those with a prefix."""
    picked = [c for c in wanted if c in present]
    return picked + [c for c in present if prefixes and c.startswith(prefixes) and c not in picked]


# DuckDB's own memory (scans, filters) is bounded; the result is what the window needs. One
# thread, in the files' order: a window is read a few columns at a time (see _columnwise), and
# the parts line up row for row only when every query returns the rows in the same order.
_DUCKDB_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "memory_limit": "1GB",
    "threads": 1,
    "preserve_insertion_order": True,
}
_ATTEMPTS = 3
_BATCH_ROWS = 64 * 2048  # DuckDB vectors are 2048 rows
_GROUP_COLUMNS = 8


def _read_duckdb(
    location: str,
    deployment: str,
    since: datetime | None,
    until: datetime,
    wanted: list[str] | None,
    prefixes: tuple[str, ...],
    max_rows: int | None,
) -> Window:
    import duckdb
    import pyarrow as pa

    from ..errors import StoreError
    from ..serving.predictions import predictions_view

    for attempt in range(_ATTEMPTS):
        con = duckdb.connect(config=_DUCKDB_CONFIG)
        try:
            view = predictions_view(con, location, deployment, since=since, until=until)
            present = con.sql(f'SELECT * FROM "{view}" LIMIT 0').columns  # noqa: S608
            names = present if wanted is None else _pick(present, wanted, prefixes)
            rows = 0
            if max_rows is not None:  # counting reads two columns only (filter, no output)
                # fetchall, not fetchone: DuckDB 2 keeps a partly fetched result open.
                found = con.execute(f'SELECT count(*) FROM "{view}"').fetchall()  # noqa: S608
                rows = int(found[0][0])
            if not names:
                return Window(pa.table({}), rows)
            if max_rows is not None and rows > max_rows:  # bounded by the cap: one query
                sample = f" USING SAMPLE reservoir({int(max_rows)} ROWS) REPEATABLE (0)"
                table = _fetch(con, view, names, sample)
            else:
                table = _columnwise(con, view, names, deployment)
            return Window(table, max(rows, table.num_rows))
        except duckdb.IOException as exc:
            # A file compacted or pruned between listing and reading: list again.
            if attempt + 1 == _ATTEMPTS:
                raise StoreError(
                    f"the prediction log of {deployment!r} at {location} changed while it was "
                    f"read ({exc}); run the monitor again once compaction or pruning is done"
                ) from exc
        finally:
            con.close()
    raise AssertionError("unreachable")


def _fetch(
    con: duckdb.DuckDBPyConnection, view: str, names: Sequence[str], tail: str = ""
) -> pa.Table:
    """``names`` of ``view`` as Arrow, streamed in batches (a whole-result fetch holds DuckDB's
    rows and Arrow's at once)."""
    # Column names come from the files; quoted as identifiers, quotes doubled.
    listed = ", ".join('"' + name.replace('"', '""') + '"' for name in names)
    reader = con.sql(f'SELECT {listed} FROM "{view}"{tail}').to_arrow_reader(_BATCH_ROWS)  # noqa: S608
    table: pa.Table = reader.read_all()
    return table


def _columnwise(
    con: duckdb.DuckDBPyConnection, view: str, names: Sequence[str], deployment: str
) -> pa.Table:
    """``names`` of ``view``, read :data:`_GROUP_COLUMNS` at a time and put side by side.

    Why: DuckDB's scan and its Arrow conversion need memory of their own, about as much as
    the result they make, and its allocator keeps it; read whole, a window peaked at ~2x its
    Arrow size (1M rows x 25 columns: +459 MB for 228 MB), read in groups the overhead is
    that of one group. The groups line up because DuckDB keeps the files' row order
    (``preserve_insertion_order``); ``row`` read with every group checks it.
    """
    import pyarrow as pa

    check = "row" if "row" in names else None
    columns: dict[str, pa.ChunkedArray] = {}
    for start in range(0, len(names), _GROUP_COLUMNS):
        group = list(names[start : start + _GROUP_COLUMNS])
        extra = [check] if check is not None and check not in group else []
        part = _fetch(con, view, [*group, *extra])
        if columns and check is not None and not part[check].equals(columns[check]):
            from ..errors import StoreError

            raise StoreError(
                f"the prediction log of {deployment!r} came back in a different row order "
                "for different columns; run the monitor again"
            )
        for name in group:
            columns[name] = part[name]
        if check is not None and check not in columns:  # read as the extra: kept to compare
            columns[check] = part[check]
        del part
    return pa.table({name: columns[name] for name in names})


def feature_columns(table: pa.Table) -> list[str]:
    """The window's ``input.*`` and ``output.*`` columns that hold one value per row (vector
    outputs such as ``predict_proba``, logged as lists, are left out here: compare tests them
    position by position, ``output.predict_proba[0]`` ...)."""
    import pyarrow as pa

    return [
        field.name
        for field in table.schema
        if field.name.startswith((INPUT, OUTPUT))
        and not pa.types.is_list(field.type)
        and not pa.types.is_large_list(field.type)
        and not pa.types.is_fixed_size_list(field.type)
    ]


def model_version_counts(table: pa.Table) -> list[tuple[str, int]]:
    """``(NAME/VERSION, rows)`` of the models that answered the window's rows, most first
    (grouped in Arrow: a million rows are not turned into Python objects)."""
    if "model" not in table.column_names or table.num_rows == 0:
        return []
    keys = ["model", "model_version"] if "model_version" in table.column_names else ["model"]
    grouped = table.select(keys).group_by(keys).aggregate([([], "count_all")]).to_pylist()
    counts: Counter[str] = Counter()
    for item in grouped:
        if item["model"] is None:
            continue
        version = item.get("model_version")
        counts[item["model"] if version is None else f"{item['model']}/{version}"] += int(
            item["count_all"]
        )
    return sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))
