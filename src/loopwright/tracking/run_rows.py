"""Runs as plain rows, for a server formatting many of them fast (MLflow's ``runs/search``).

Searching 1,000 runs spends most of its server time turning rows into objects and objects into
messages; :func:`read_run_rows` hands back the rows as tuples in four queries per 900 runs, and
the caller builds its messages from them in one pass (about twice as fast as going through
:class:`~loopwright.tracking.entities.Run`).
"""

from __future__ import annotations

import contextlib
from collections import namedtuple
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..errors import Conflict, NotFound
from ..store import schema as t
from ..store import statements
from ._round_trip import read_all, write_all, write_returning
from .entities import Metric, Run, RunStatus

if TYPE_CHECKING:
    from ..store.database import Database

__all__ = [
    "INFO_COLUMNS",
    "METRICS_SQL",
    "PARAMS_SQL",
    "TAGS_SQL",
    "RunRows",
    "end_run_if_active",
    "fetch_full_rows",
    "full_rows_from",
    "full_rows_query",
    "insert_run",
    "insert_run_if_active",
    "read_experiment_id",
    "read_run_info",
    "read_run_rows",
    "run_from_row",
    "run_rows_from",
    "run_rows_queries",
]

_CHUNK = 900  # ids per IN list, under SQLite's bound-parameter limit
_r = t.runs.c
INFO_COLUMNS = (
    _r.id,
    _r.experiment_id,
    _r.name,
    _r.user,
    _r.status,
    _r.start_time,
    _r.end_time,
    _r.lifecycle_stage,
    _r.git_commit,
)
"""The columns of :attr:`RunRows.info`, in order."""


@dataclass
class RunRows:
    """One run's rows: ``info`` holds :data:`INFO_COLUMNS`; ``metrics`` are the latest points
    as ``(key, value, is_nan, step, timestamp)``."""

    info: Sequence[Any]
    params: list[tuple[str, str]] = field(default_factory=list)
    tags: list[tuple[str, str]] = field(default_factory=list)
    metrics: list[tuple[str, float, bool, int, int]] = field(default_factory=list)


# Raw SQL (store/statements.py): runs/get runs these on every call, and a Core statement with an
# IN list costs more to compile than the query takes.
_INFO_SQL = "SELECT {} FROM runs WHERE id IN ({{}})".format(  # noqa: S608 (names, placeholders)
    ", ".join(f'"{column.name}"' for column in INFO_COLUMNS)
)
PARAMS_SQL = 'SELECT "run_id", "key", "value" FROM params WHERE run_id IN ({})'
TAGS_SQL = 'SELECT "run_id", "key", "value" FROM run_tags WHERE run_id IN ({})'
METRICS_SQL = (
    'SELECT "run_id", "key", "value", "is_nan", "step", "timestamp" FROM latest_metrics'
    " WHERE run_id IN ({})"
)


_TAG_COLUMNS = ("run_id", "key", "value")


def insert_run(
    conn: sa.Connection, row: Mapping[str, Any], tags: Sequence[tuple[str, str, str]]
) -> None:
    """Insert a new run's ``row`` and its ``tags`` (``(run_id, key, value)``; a repeated key
    keeps the first), by raw SQL: creating a run is a hot path (store/statements.py)."""
    statements.execute(conn, statements.insert_text("runs", tuple(row)), [*row.values()])
    if tags:
        statements.insert_many(conn, "run_tags", _TAG_COLUMNS, tags, " ON CONFLICT DO NOTHING")


_IGNORE_REPEATS = " ON CONFLICT DO NOTHING"  # a repeated tag key keeps the first
_EXPERIMENT_ACTIVE = "SELECT 1 FROM experiments WHERE id = ? AND lifecycle_stage = 'active'"


def insert_run_if_active(
    db: Database,
    row: Mapping[str, Any],
    tags: Sequence[tuple[str, str, str]],
    *,
    experiment_name: str | None = None,
) -> bool:
    """:func:`insert_run` in its own transaction, if the run's experiment is active (and called
    ``experiment_name``, when given); False (nothing written) if it is not. One round trip on
    PostgreSQL (``._round_trip``): the run's row goes in only while the experiment is as
    expected, and its tags' foreign key then refuses them, undoing the whole transaction, when
    it did not."""
    condition = _EXPERIMENT_ACTIVE + (" AND name = ?" if experiment_name is not None else "")
    expected = [row["experiment_id"]] + ([experiment_name] if experiment_name is not None else [])
    columns = ", ".join(f'"{column}"' for column in row)
    values = statements.marks(len(row))
    insert = f"INSERT INTO runs ({columns}) SELECT {values} WHERE EXISTS ({condition})"
    queries: list[tuple[str, Sequence[Any]]] = [(insert, [*row.values(), *expected])]
    size = max(1, statements._max_parameters(db.dialect) // len(_TAG_COLUMNS))
    for start in range(0, len(tags), size):
        chunk = tags[start : start + size]
        sql = statements.insert_text("run_tags", _TAG_COLUMNS, len(chunk), _IGNORE_REPEATS)
        queries.append((sql, [value for tag in chunk for value in tag]))
    try:
        return write_all(db, queries, together=True)[0] == 1  # the run's row, then its tags'
    except sa.exc.IntegrityError:
        if tags and not read_all(db, [(condition, expected)])[0]:
            return False  # the tags' key refused them: no run row to name
        raise


# mlflow.end_run()'s request (the server's runs/update) in one statement: update_run checks,
# updates and is read back in three.
_END_RUN = (
    "UPDATE runs SET status = coalesce(?, status), end_time = coalesce(?, end_time)"
    " WHERE id = ? AND lifecycle_stage = 'active'"
    ' RETURNING experiment_id, name, "user", status, start_time, end_time'
)


def end_run_if_active(
    db: Database, run_id: str, status: str | None, end_time: int | None
) -> tuple[str, str, str | None, str, int, int | None]:
    """Set an active run's status and end time (each only when given; no check of them here)
    and return its experiment id, name, user, status, start and end time as stored. One round
    trip on PostgreSQL. ``NotFound`` or ``Conflict`` (deleted) as the tracking service says."""
    found = write_returning(db, [(_END_RUN, [status, end_time, run_id])])[0]
    if found:
        experiment_id, name, user, stored, start, end = found[0]
        return experiment_id, name, user, stored, start, end
    stage = read_all(db, [("SELECT lifecycle_stage FROM runs WHERE id = ?", [run_id])])[0]
    if not stage:
        raise NotFound(f"run {run_id!r} does not exist; `loopwright runs list` shows recent runs")
    raise Conflict(f"run {run_id!r} is deleted; restore it before logging to it")


def read_run_rows(db: Database, run_ids: Sequence[str]) -> dict[str, RunRows]:
    """The rows of the runs ``run_ids`` names (unknown ids are left out): on SQLite in one read
    transaction, on PostgreSQL one round trip per 900 runs (:mod:`._round_trip`)."""
    found: dict[str, RunRows] = {}
    with db.one_read() if db.dialect != "postgresql" else contextlib.nullcontext():
        for start in range(0, len(run_ids), _CHUNK):
            chunk = list(run_ids[start : start + _CHUNK])
            found.update(run_rows_from(*read_all(db, run_rows_queries(chunk))))
    return found


def run_rows_queries(run_ids: Sequence[str]) -> list[tuple[str, Sequence[str]]]:
    """The four reads :func:`run_rows_from` takes the rows of (at most 900 runs): a caller may
    send them with its own (:mod:`._round_trip`)."""
    ids = statements.marks(len(run_ids))
    return [(sql.format(ids), run_ids) for sql in (_INFO_SQL, PARAMS_SQL, TAGS_SQL, METRICS_SQL)]


def run_rows_from(
    info: Sequence[Any], params: Sequence[Any], tags: Sequence[Any], metrics: Sequence[Any]
) -> dict[str, RunRows]:
    """The runs in the rows of :func:`run_rows_queries`."""
    found = {row[0]: RunRows(row) for row in info}
    # Rows of a run the first read did not see (made meanwhile: on PostgreSQL each read has
    # its own snapshot) are left out with it.
    for run_id, key, value in params:
        if run_id in found:
            found[run_id].params.append((key, value))
    for run_id, key, value in tags:
        if run_id in found:
            found[run_id].tags.append((key, value))
    for run_id, key, value, is_nan, step, timestamp in metrics:
        if run_id in found:
            found[run_id].metrics.append((key, value, bool(is_nan), step, timestamp))
    return found


_RUN_COLUMNS = tuple(column.name for column in t.runs.c)
_RUN_BOOLEANS = tuple(i for i, column in enumerate(t.runs.c) if isinstance(column.type, sa.Boolean))
_FullRow = namedtuple("_FullRow", _RUN_COLUMNS)  # type: ignore[misc]
_FULL_SQL = "SELECT {} FROM runs WHERE id IN ({{}})".format(  # noqa: S608 (names, placeholders)
    ", ".join(f'"{name}"' for name in _RUN_COLUMNS)
)


def fetch_full_rows(conn: sa.Connection, run_ids: Sequence[str]) -> list[Any]:
    """Every column of the runs ``run_ids`` names (at most 900), as rows :func:`run_from_row`
    takes; by raw SQL, as the other run reads here."""
    return full_rows_from(statements.fetch(conn, *full_rows_query(run_ids)))


def full_rows_query(run_ids: Sequence[str]) -> tuple[str, Sequence[str]]:
    """The read :func:`full_rows_from` takes the rows of (at most 900 runs)."""
    return _FULL_SQL.format(statements.marks(len(run_ids))), run_ids


def full_rows_from(rows: Sequence[Any]) -> list[Any]:
    """The rows of :func:`full_rows_query` as :func:`run_from_row` takes them."""
    found = []
    for raw in rows:
        values = list(raw)
        for i in _RUN_BOOLEANS:  # SQLite hands booleans back as 0 and 1
            if values[i] is not None:
                values[i] = bool(values[i])
        found.append(_FullRow(*values))
    return found


def read_experiment_id(db: Database, run_id: str) -> str | None:
    """The id of the run's experiment; ``None`` if there is no such run."""
    with db.read() as conn:
        found: str | None = conn.execute(
            sa.select(_r.experiment_id).where(_r.id == run_id)
        ).scalar()
    return found


def read_run_info(db: Database, run_id: str) -> Run:
    """The run's own row, without its params, metrics and tags (one query)."""
    with db.read() as conn:
        row = conn.execute(sa.select(t.runs).where(_r.id == run_id)).first()
    if row is None:
        raise NotFound(f"run {run_id!r} does not exist")
    return run_from_row(row)


def run_from_row(
    row: Any,
    *,
    params: Mapping[str, str] | None = None,
    metrics: Mapping[str, Metric] | None = None,
    tags: Mapping[str, str] | None = None,
) -> Run:
    """A :class:`Run` from a row of ``runs`` (all its columns) and what the run logged."""
    return Run(
        id=row.id,
        experiment_id=row.experiment_id,
        name=row.name,
        status=RunStatus(row.status),
        lifecycle_stage=row.lifecycle_stage,
        start_time=row.start_time,
        end_time=row.end_time,
        user=row.user,
        host=row.host,
        entry_point=row.entry_point,
        parent_run_id=row.parent_run_id,
        error=row.error,
        heartbeat_at=row.heartbeat_at,
        git_commit=row.git_commit,
        git_branch=row.git_branch,
        git_dirty=row.git_dirty,
        environment_id=row.environment_id,
        params=params or {},
        metrics=metrics or {},
        tags=tags or {},
    )
