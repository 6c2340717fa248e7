"""Reading the prediction log's files into one Arrow table: time bounds, columns, a row limit
and a row cap, and what each deployment holds (from the files' footers alone).

Files written at different times may hold different columns: they are united by name
(``_log_table.unite``). A file that compaction removes between listing and reading makes the
read start over (at most :data:`_ATTEMPTS` times): the next listing finds the merged file.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from itertools import groupby
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput, LimitExceeded, StoreError
from ._log_files import LogFile, LogFiles, utc
from ._prediction_protocol import LoggedDeployment

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["bounds", "check_columns", "check_limit", "deployment_summaries", "read_table"]

_ATTEMPTS = 3
# What every read needs, whatever columns were asked for: the filter and the order.
_KEYS = ("request_id", "row", "timestamp", "deployment")


def bounds(
    since: datetime | timedelta | None, until: datetime | timedelta | None
) -> tuple[datetime | None, datetime | None]:
    """``since`` / ``until`` as UTC datetimes (a timedelta: that long before now)."""
    now = datetime.now(UTC)
    return _moment("since", since, now), _moment("until", until, now)


def _moment(what: str, value: datetime | timedelta | None, now: datetime) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        try:
            return now - value
        except OverflowError:  # longer ago than year 1, or later than year 9999
            edge = datetime.min if value > timedelta(0) else datetime.max
            return edge.replace(tzinfo=UTC)
    if isinstance(value, datetime):
        return utc(value)
    raise InvalidInput(
        f"{what} must be a datetime, a timedelta (that long ago) or None, "
        f"not {type(value).__name__} {value!r}"
    )


def read_table(
    files: LogFiles,
    deployment: str,
    *,
    since: datetime | timedelta | None = None,
    until: datetime | timedelta | None = None,
    columns: Sequence[str] | None = None,
    limit: int | None = None,
    max_rows: int | None = None,
    max_bytes: int | None = None,
) -> pa.Table:
    """The rows of ``deployment`` in ``[since, until)`` ordered by time, request id and row:
    the newest ``limit`` of them, with ``columns`` only (in that order) if given.

    ``max_rows`` caps what one read may return: past it without a ``limit``, and for a larger
    ``limit``, :class:`LimitExceeded` says how to narrow the read (the server sets it).
    ``max_bytes`` caps the Arrow size of a read without ``limit`` as the files are read, so
    a read past it stops at the file that crosses it rather than after loading them all.
    """
    wanted = check_columns(columns)
    check_limit(limit)
    if max_rows is not None and limit is not None and limit > max_rows:
        raise LimitExceeded(
            f"limit {limit:,} is past the {max_rows:,} rows one read may return; "
            "read in smaller windows (since / until)"
        )
    low, high = bounds(since, until)
    for attempt in range(_ATTEMPTS):
        try:
            return _read_once(files, deployment, low, high, wanted, limit, max_rows, max_bytes)
        except FileNotFoundError as exc:
            if attempt + 1 == _ATTEMPTS:
                raise StoreError(
                    f"the prediction log of {deployment!r} at {files.uri} changed while it was "
                    f"read ({exc}); read again once compaction or pruning is done"
                ) from exc
    raise AssertionError("unreachable")


def check_limit(limit: int | None) -> int | None:
    """``limit`` if it is None or a whole number of rows, at least 1; else ``InvalidInput``."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InvalidInput(f"limit {limit!r} must be a whole number of rows, at least 1")
    return limit


def check_columns(columns: Sequence[str] | None) -> list[str] | None:
    """``columns`` as a list without repeats, or ``InvalidInput`` if it is not one name or
    more (None: every column)."""
    if columns is None:
        return None
    if (
        isinstance(columns, str)
        or not columns
        or not all(isinstance(c, str) and c for c in columns)
    ):
        raise InvalidInput(
            f"columns {columns!r} must be a list of column names, e.g. "
            "['request_id', 'input.age', 'output.predict']"
        )
    return list(dict.fromkeys(columns))


def _read_once(
    files: LogFiles,
    deployment: str,
    low: datetime | None,
    high: datetime | None,
    wanted: list[str] | None,
    limit: int | None,
    max_rows: int | None,
    max_bytes: int | None,
) -> pa.Table:
    from ._log_table import FIXED_SCHEMA, unite

    read_columns = None if wanted is None else list(dict.fromkeys([*_KEYS, *wanted]))
    tables: list[pa.Table] = []
    rows = size = 0
    # Newest hour first: an hour's rows are all later than an earlier hour's, so a limit is met
    # once enough rows came from whole hours.
    found = files.find(deployment, low, high)
    for _, group in groupby(reversed(found), key=lambda f: f.hour):
        for log_file in group:
            table = _filter(files.read_table(log_file.path, read_columns), deployment, low, high)
            tables.append(table)
            rows += table.num_rows
            size += table.nbytes
            if max_bytes is not None and limit is None and size > max_bytes:
                raise LimitExceeded(
                    f"the rows of {deployment!r} asked for take more than "
                    f"{max_bytes / (1 << 20):,.0f} MiB, past what one read may return; pick "
                    "fewer columns, narrow since / until, or pass a limit"
                )
        if limit is not None and rows >= limit:
            break
        if max_rows is not None and limit is None and rows > max_rows:
            raise LimitExceeded(
                f"the prediction log of {deployment!r} holds more than {max_rows:,} rows in "
                "that window, past what one read may return; narrow since / until, or pass "
                "limit for the newest rows"
            )
    if not tables:
        empty = FIXED_SCHEMA.empty_table()
        if wanted is None:
            return empty
        known = [c for c in wanted if c in FIXED_SCHEMA.names]
        return empty.select(known)
    table = unite(tables)
    order = [("timestamp", "ascending"), ("request_id", "ascending"), ("row", "ascending")]
    table = table.sort_by(order)
    if limit is not None and table.num_rows > limit:
        table = table.slice(table.num_rows - limit)
    if wanted is None:
        return table
    missing = [c for c in wanted if c not in table.column_names]
    if missing:
        raise InvalidInput(
            f"column(s) {missing} are in none of the files read for {deployment!r}; "
            f"columns: {', '.join(table.column_names)}"
        )
    return table.select(wanted)


def _filter(
    table: pa.Table, deployment: str, low: datetime | None, high: datetime | None
) -> pa.Table:
    import pyarrow as pa
    import pyarrow.compute as pc

    # A case-insensitive filesystem folds 'Churn' and 'churn' into one folder: keep the name's.
    keep = pc.equal(table["deployment"], deployment)
    if low is not None:
        after = pc.greater_equal(table["timestamp"], pa.scalar(low, table["timestamp"].type))
        keep = pc.and_(keep, after)
    if high is not None:
        before = pc.less(table["timestamp"], pa.scalar(high, table["timestamp"].type))
        keep = pc.and_(keep, before)
    return table.filter(keep)


def deployment_summaries(files: LogFiles) -> list[LoggedDeployment]:
    """Each deployment with files in the log, with its rows, files and time span, from the
    files' footers (row counts and the ``timestamp`` column's statistics), not their data."""
    found = []
    for name in files.deployments():
        live: list[LogFile] = files.find(name)
        if not live:
            continue  # pruned to nothing (a local folder may remain; an object store has none)
        rows = 0
        first: datetime | None = None
        last: datetime | None = None
        for log_file in live:
            try:
                metadata = files.read_metadata(log_file.path)
            except FileNotFoundError:
                continue  # compacted or pruned meanwhile: a summary, not a read
            rows += metadata.num_rows
            low, high = _time_span(metadata)
            if low is not None and (first is None or low < first):
                first = low
            if high is not None and (last is None or high > last):
                last = high
        found.append(LoggedDeployment(name, rows, len(live), first, last))
    return found


def _time_span(metadata: Any) -> tuple[datetime | None, datetime | None]:
    """The smallest and largest ``timestamp`` of a file, from its row groups' statistics."""
    low = high = None
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        for index in range(row_group.num_columns):  # leaf columns: lists count as their items
            column = row_group.column(index)
            if column.path_in_schema != "timestamp":
                continue
            stats = column.statistics
            if stats is None or not stats.has_min_max:
                break
            lo, hi = _utc(stats.min), _utc(stats.max)
            low = lo if low is None or lo < low else low
            high = hi if high is None or hi > high else high
            break
    return low, high


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
