"""Reading the prediction log back: a pandas DataFrame, or a DuckDB view to query in SQL.

Files written at different times may hold different columns (a feature added, an output
selected): both readers unite them by name, with nulls where a file lacks a column. A column
whose type changed takes the common type (int and float: float), else text.

Example:
    >>> import tempfile
    >>> from datetime import UTC, datetime
    >>> from loopwright.serving.prediction_log import PredictionLog, PredictionRecord
    >>> root = tempfile.mkdtemp()
    >>> with PredictionLog(root) as log:
    ...     log.append(PredictionRecord(
    ...         request_id="r1", deployment="churn", variant="primary", model="churn-rf",
    ...         model_version=3, timestamp=datetime.now(UTC), latency_ms=1.8, status=200,
    ...         inputs={"age": [42]}, outputs={"predict": [1]}))
    True
    >>> read_predictions(root, "churn")[["request_id", "input.age", "output.predict"]]
      request_id  input.age  output.predict
    0         r1         42               1
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from ..errors import InvalidInput
from ._log_files import LogFiles

if TYPE_CHECKING:
    import duckdb
    import pandas as pd
    import pyarrow as pa

    from ..store.blobs import BlobStore

__all__ = ["predictions_view", "read_predictions"]

_VIEW_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def read_predictions(
    location: BlobStore | str | os.PathLike[str],
    deployment: str,
    since: datetime | timedelta | None = None,
    until: datetime | timedelta | None = None,
) -> pd.DataFrame:
    """The logged rows of ``deployment`` with ``since <= timestamp < until``, oldest first.

    Args:
        location: the blob store (its ``predictions/`` folder) or the log's root folder / URL.
        deployment: the deployment's name.
        since, until: bounds as datetimes (a naive one is taken as UTC) or as a timedelta
            before now (``since=timedelta(hours=1)``: the last hour). None: unbounded.

    Columns: ``request_id``, ``row``, ``timestamp`` (UTC), ``deployment``, ``variant``,
    ``model``, ``model_version``, ``latency_ms``, ``status``, then ``input.<name>`` and
    ``output.<name>`` of every file read.
    """
    return _read_table(LogFiles(location), deployment, since, until).to_pandas()


def predictions_view(
    connection: duckdb.DuckDBPyConnection,
    location: BlobStore | str | os.PathLike[str],
    deployment: str,
    *,
    since: datetime | timedelta | None = None,
    until: datetime | timedelta | None = None,
    name: str = "predictions",
) -> str:
    """Create (or replace) the DuckDB view ``name`` over the log of ``deployment``; return
    ``name``. The view covers the files present now: call again to include newer ones.

    Example: ``predictions_view(con, store.blobs, "churn", since=timedelta(days=1))`` then
    ``con.sql("SELECT variant, avg(\\"input.age\\") FROM predictions GROUP BY variant")``.
    """
    if not isinstance(name, str) or not _VIEW_NAME.fullmatch(name):
        raise InvalidInput(
            f"view name {name!r} must be a plain SQL identifier: a letter or '_', then up to 62 "
            "letters, digits or '_'"
        )
    files = LogFiles(location)
    low, high = _bounds(since, until)
    found = files.find(deployment, low, high)
    remote = files.filesystem
    if remote is not None:
        protocols = {remote.protocol} if isinstance(remote.protocol, str) else set(remote.protocol)
        if not protocols & set(connection.list_filesystems()):  # a second view reuses it
            connection.register_filesystem(remote)
    if not found:
        columns = ", ".join(
            f"CAST(NULL AS {_DUCKDB_TYPES[f.name]}) AS {f.name}" for f in _fixed_schema()
        )
        connection.execute(f'CREATE OR REPLACE VIEW "{name}" AS SELECT {columns} WHERE false')
        return name
    paths = ", ".join(_sql_text(files.url(f.path)) for f in found)
    where = [f"deployment = {_sql_text(deployment)}"]
    if low is not None:
        where.append(f"timestamp >= {_sql_time(low)}")
    if high is not None:
        where.append(f"timestamp < {_sql_time(high)}")
    condition = f" WHERE {' AND '.join(where)}"
    # Every part is a checked identifier, a quoted literal or a time this function formatted.
    source = f"read_parquet([{paths}], union_by_name = true)"
    connection.execute(f'CREATE OR REPLACE VIEW "{name}" AS SELECT * FROM {source}{condition}')  # noqa: S608
    return name


_DUCKDB_TYPES = {
    "request_id": "VARCHAR",
    "row": "INTEGER",
    "timestamp": "TIMESTAMPTZ",
    "deployment": "VARCHAR",
    "variant": "VARCHAR",
    "model": "VARCHAR",
    "model_version": "BIGINT",
    "latency_ms": "DOUBLE",
    "status": "INTEGER",
}


def _fixed_schema() -> pa.Schema:
    from ._log_table import FIXED_SCHEMA

    return FIXED_SCHEMA


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _sql_time(moment: datetime) -> str:
    return f"TIMESTAMPTZ {_sql_text(moment.isoformat())}"


def _bounds(
    since: datetime | timedelta | None, until: datetime | timedelta | None
) -> tuple[datetime | None, datetime | None]:
    now = datetime.now(UTC)
    return _moment("since", since, now), _moment("until", until, now)


def _moment(what: str, value: datetime | timedelta | None, now: datetime) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        return now - value
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    raise InvalidInput(
        f"{what} must be a datetime, a timedelta (that long ago) or None, "
        f"not {type(value).__name__} {value!r}"
    )


def _read_table(
    files: LogFiles,
    deployment: str,
    since: datetime | timedelta | None,
    until: datetime | timedelta | None,
) -> pa.Table:
    import pyarrow as pa
    import pyarrow.compute as pc

    from ._log_table import unite

    low, high = _bounds(since, until)
    tables = [files.read_table(found.path) for found in files.find(deployment, low, high)]
    if not tables:
        return _fixed_schema().empty_table()
    table = unite(tables)
    # A case-insensitive filesystem folds 'Churn' and 'churn' into one folder: keep the name's.
    keep = pc.equal(table["deployment"], deployment)
    if low is not None:
        after = pc.greater_equal(table["timestamp"], pa.scalar(low, table["timestamp"].type))
        keep = pc.and_(keep, after)
    if high is not None:
        before = pc.less(table["timestamp"], pa.scalar(high, table["timestamp"].type))
        keep = pc.and_(keep, before)
    table = table.filter(keep)
    order = [("timestamp", "ascending"), ("request_id", "ascending"), ("row", "ascending")]
    return table.sort_by(order)
