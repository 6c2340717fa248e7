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
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ..errors import InvalidInput
from ._log_files import LogFiles
from ._prediction_read import bounds, read_table

if TYPE_CHECKING:
    import builtins

    import duckdb
    import pandas as pd
    import pyarrow as pa

    from ..store.blobs import BlobStore
    from ._prediction_protocol import Compaction, LoggedDeployment, Pruning

__all__ = ["PredictionService", "predictions_view", "read_predictions"]

_VIEW_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


class PredictionService:
    """The :class:`~loopwright.serving._prediction_protocol.Predictions` protocol on a log
    folder: ``client.prediction_log`` of an embedded client, and what a server's routes call.

    Args:
        location: the blob store (its ``predictions/`` folder), or the log's folder / URL
            (``serving.prediction_log.log_location(settings)`` says which).
        max_rows: the most rows one :meth:`read` returns (None: no cap); past it without a
            ``limit``, ``LimitExceeded`` says how to narrow the read.
        max_bytes: the most Arrow bytes one :meth:`read` without ``limit`` loads (None: no
            cap), checked file by file as they are read.
    """

    def __init__(
        self,
        location: BlobStore | str | os.PathLike[str],
        *,
        max_rows: int | None = None,
        max_bytes: int | None = None,
    ) -> None:
        self._files = LogFiles(location)
        self._max_rows = max_rows
        self._max_bytes = max_bytes

    def __repr__(self) -> str:
        return f"PredictionService({self._files.uri!r})"

    def read(
        self,
        deployment: str,
        *,
        since: datetime | timedelta | None = None,
        until: datetime | timedelta | None = None,
        columns: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """Rows of ``deployment`` with ``since <= timestamp < until``, oldest first (the newest
        ``limit``); ``columns`` picks columns (default: all)."""
        return self._read(deployment, since, until, columns, limit).to_pandas()

    @property
    def location(self) -> str:
        """The log's folder or URL (``s3://bucket/predictions``), as DuckDB reads it: what
        :func:`predictions_view` takes to query the log in SQL without a pandas copy."""
        return self._files.uri

    def read_table(
        self,
        deployment: str,
        *,
        since: datetime | timedelta | None = None,
        until: datetime | timedelta | None = None,
        columns: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> pa.Table:
        """:meth:`read` as an Arrow table: no pandas copy (the server streams it, monitoring
        reads windows with it). Embedded only: not part of the ``Predictions`` protocol."""
        return self._read(deployment, since, until, columns, limit)

    def _read(
        self,
        deployment: str,
        since: datetime | timedelta | None,
        until: datetime | timedelta | None,
        columns: Sequence[str] | None,
        limit: int | None,
    ) -> pa.Table:
        return read_table(
            self._files,
            deployment,
            since=since,
            until=until,
            columns=columns,
            limit=limit,
            max_rows=self._max_rows,
            max_bytes=self._max_bytes,
        )

    def deployments(self) -> builtins.list[LoggedDeployment]:
        """Every deployment in the log with its row count and time span, by name."""
        from ._prediction_read import deployment_summaries

        return deployment_summaries(self._files)

    def compact(
        self, deployment: str | None = None, *, before: datetime | None = None
    ) -> Compaction:
        """Merge each closed hour's files (before ``before``; default: hours that ended over
        ten minutes ago) into one, for ``deployment`` or every deployment."""
        from ._prediction_compaction import compact

        return compact(self._files, deployment, before=before)

    def prune(self, older_than: timedelta, *, deployment: str | None = None) -> Pruning:
        """Delete the hours that ended more than ``older_than`` ago."""
        from ._prediction_compaction import prune

        return prune(self._files, older_than, deployment=deployment)


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
    return read_table(LogFiles(location), deployment, since=since, until=until).to_pandas()


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
    low, high = bounds(since, until)
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
