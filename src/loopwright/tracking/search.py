"""Run search with MLflow's filter and ``order_by`` syntax, compiled to one parameterized query.

Semantics follow MLflow's SQL tracking store (``mlflow/store/tracking/sqlalchemy_store.py`` and
``mlflow/utils/search_utils.py``): comparisons are joined by AND; a run lacking the metric, param
or tag of a comparison does not match it (not even ``!=``); string comparisons are case-sensitive
except ILIKE; runs lacking an ``order_by`` value sort last in both directions (for metrics: real
values, then NaN, then missing); ties fall back to ``start_time`` DESC, then run id. Loopwright
differs in three ways: a NaN metric matches no comparison, IN / NOT IN also work on params, tags
and every string attribute, and LIKE is case-sensitive on SQLite too.

Every value reaches the database as a bound parameter. The filter is parsed by the one filter
language (:mod:`loopwright.store.filters`, the columns declared in
:mod:`loopwright.tracking._filter`), whose errors point at the offending character.

Example:
    >>> from loopwright.config import resolve_settings
    >>> from loopwright.store.home import open_store
    >>> from loopwright.tracking import TrackingService
    >>> tracking = TrackingService(open_store(resolve_settings(home="lw-doc-search")))
    >>> run = tracking.create_run(experiment="demo-search")
    >>> tracking.log_metrics(run.id, {"auc": 0.93})
    >>> tracking.flush()  # metrics are written in the background
    >>> with tracking.db.read() as conn:
    ...     page = search_run_ids(conn, filter_string="metrics.auc > 0.9")
    >>> run.id in page.run_ids
    True
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ..errors import InvalidInput
from ..store import schema as t
from ..store.filters.sql import KeyValues, SqlTarget, where
from ._filter import Clause, OrderKey, is_numeric, parse_filter, parse_run_filter, parse_run_order
from .entities import STALE_AFTER_MS, RunStatus

__all__ = [
    "MAX_RESULTS_LIMIT",
    "Clause",
    "RunPage",
    "parse_filter",
    "run_columns",
    "search_run_ids",
]

MAX_RESULTS_LIMIT = 50_000
_VIEW_TYPES = {
    "ACTIVE_ONLY": ("active",),
    "DELETED_ONLY": ("deleted",),
    "ALL": ("active", "deleted"),
}
# On PostgreSQL the (key, value, run_id) indexes of params and run_tags hold only values of at
# most this many bytes (see store/schema.py; a test keeps the two in step).
INDEXED_VALUE_BYTES = 1000


@dataclass(frozen=True)
class RunPage:
    """One page of run ids in search order, and the token of the next page (None at the end)."""

    run_ids: list[str]
    next_page_token: str | None


def search_run_ids(
    conn: sa.Connection,
    *,
    experiment_ids: Sequence[str] | None = None,
    filter_string: str = "",
    order_by: Sequence[str] = (),
    max_results: int = 1000,
    page_token: str | None = None,
    run_view_type: str = "ACTIVE_ONLY",
    derive_stale: bool = True,
) -> RunPage:
    """Ids of the runs matching ``filter_string``, ordered and paged like MLflow's ``search_runs``.

    ``experiment_ids=None`` searches every experiment. ``run_view_type`` is ``ACTIVE_ONLY``,
    ``DELETED_ONLY`` or ``ALL``. ``max_results`` is at most :data:`MAX_RESULTS_LIMIT`. Pass a
    page's ``next_page_token`` back, with the same other arguments, to get the next page.
    A RUNNING run whose heartbeat stopped has the status ``STALE``, as ``Run.status`` says;
    ``derive_stale=False`` keeps the stored ``RUNNING`` (MLflow's API has no STALE status).
    Raises ``InvalidInput`` for a malformed filter, order_by, token or argument.
    """
    stages = _check_arguments(experiment_ids, max_results, run_view_type)
    run_filter = parse_run_filter(filter_string)
    keys = parse_run_order(order_by)
    search = _fingerprint(experiment_ids, filter_string, order_by, stages)
    offset = _read_page_token(page_token, search)

    dialect = conn.dialect.name
    target = run_columns(derive_stale)
    runs = t.runs.c
    query = sa.select(runs.id).where(runs.lifecycle_stage.in_(stages))
    if experiment_ids is not None:
        query = query.where(runs.experiment_id.in_(list(experiment_ids)))
    query = query.where(*where(run_filter, target, dialect))
    source, ordering = _ordering(keys, target, dialect)
    query = query.select_from(source).order_by(*ordering).limit(max_results + 1).offset(offset)
    run_ids = list(conn.execute(query).scalars())
    if len(run_ids) <= max_results:
        return RunPage(run_ids, None)
    return RunPage(run_ids[:max_results], _page_token(offset + max_results, search))


def _check_arguments(
    experiment_ids: object, max_results: object, run_view_type: object
) -> tuple[str, ...]:
    """Refuse malformed arguments; returns the lifecycle stages ``run_view_type`` selects."""
    if isinstance(experiment_ids, str):
        raise InvalidInput(
            f"experiment_ids must be a list of ids, not the string {experiment_ids!r}"
        )
    if isinstance(max_results, bool) or not isinstance(max_results, int):
        raise InvalidInput(f"max_results must be an integer, not {max_results!r}")
    if not 1 <= max_results <= MAX_RESULTS_LIMIT:
        raise InvalidInput(
            f"max_results must be between 1 and {MAX_RESULTS_LIMIT}, not {max_results}"
        )
    stages = _VIEW_TYPES.get(str(run_view_type).upper())
    if stages is None:
        raise InvalidInput(
            f"run_view_type {run_view_type!r} is not one of {', '.join(_VIEW_TYPES)}"
        )
    return stages


# --- columns -------------------------------------------------------------------------------------


def run_columns(derive_stale: bool) -> SqlTarget:
    """Run search's columns for the filter language's SQL back-end; ``derive_stale`` as in
    :func:`search_run_ids`."""
    runs = t.runs.c
    status: sa.ColumnElement[Any] = runs.status
    if derive_stale:
        # The SQL form of Run.is_stale: RUNNING without a heartbeat for STALE_AFTER_MS.
        cutoff = sa.literal(int(time.time() * 1000) - STALE_AFTER_MS, sa.BigInteger())
        last_beat = sa.func.coalesce(runs.heartbeat_at, runs.start_time)
        stale = sa.and_(runs.status == RunStatus.RUNNING.value, last_beat < cutoff)
        status = sa.case((stale, RunStatus.STALE.value), else_=runs.status)
    return SqlTarget(
        runs.id,
        {
            "run_id": runs.id,
            "run_name": runs.name,
            "status": status,
            "user_id": runs.user,
            "experiment_id": runs.experiment_id,
            "start_time": runs.start_time,
            "end_time": runs.end_time,
        },
        {
            # NaN is stored as 0: keep it out of every comparison.
            "metrics": KeyValues(
                t.latest_metrics, "run_id", (t.latest_metrics.c.is_nan == sa.false(),)
            ),
            "params": KeyValues(t.params, "run_id", indexed_value_bytes=INDEXED_VALUE_BYTES),
            "tags": KeyValues(t.run_tags, "run_id", indexed_value_bytes=INDEXED_VALUE_BYTES),
        },
    )


# --- ordering ------------------------------------------------------------------------------------


def _ordering(
    keys: list[OrderKey], target: SqlTarget, dialect: str
) -> tuple[sa.FromClause, list[sa.ColumnElement[Any]]]:
    """The FROM clause (runs outer-joined to each ordered key) and the ORDER BY terms."""
    source: sa.FromClause = t.runs
    ordering: list[sa.ColumnElement[Any]] = []
    for n, key in enumerate(keys):
        if key.entity == "attributes":
            value: Any = target.attributes[key.key]
            missing = sa.case((value.is_(None), 1), else_=0)
        else:
            table = target.entities[key.entity].table.alias(f"order_{n}")
            source = source.outerjoin(
                table, sa.and_(table.c.run_id == t.runs.c.id, table.c.key == key.key)
            )
            value = table.c.value
            # MLflow's order: real values, then NaN, then runs without the metric.
            nan = (table.c.is_nan == sa.true(), 1) if key.entity == "metrics" else None
            missing = sa.case((table.c.run_id.is_(None), 2), *([nan] if nan else []), else_=0)
        if dialect == "postgresql" and not is_numeric(key.entity, key.key):
            value = value.collate("C")  # code-point order, as SQLite and MLflow's Python sort
        ordering += [missing, value.asc() if key.ascending else value.desc()]
    if not any(key.entity == "attributes" and key.key == "start_time" for key in keys):
        ordering.append(t.runs.c.start_time.desc())
    ordering.append(t.runs.c.id.asc())
    return source, ordering


# --- paging --------------------------------------------------------------------------------------


def _fingerprint(
    experiment_ids: Sequence[str] | None,
    filter_string: str,
    order_by: Sequence[str],
    stages: tuple[str, ...],
) -> str:
    """Ties a page token to its search, so a token reused with other arguments is refused."""
    ids = None if experiment_ids is None else list(experiment_ids)
    blob = json.dumps([ids, filter_string, list(order_by), stages], default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _page_token(offset: int, search: str) -> str:
    data = json.dumps({"offset": offset, "search": search}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(data).decode("ascii")


def _read_page_token(token: str | None, search: str) -> int:
    if token is None or token == "":
        return 0
    try:
        data = json.loads(base64.b64decode(token.encode("ascii"), altchars=b"-_", validate=True))
    except (ValueError, UnicodeError, binascii.Error, AttributeError):
        data = None
    offset = data.get("offset") if isinstance(data, dict) else None
    # A forged offset past what SQL's OFFSET holds must not reach the database.
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 < offset < 2**62:
        offset = None
    if offset is None or len(data) != 2:
        raise InvalidInput(
            "page_token is not a token this search returned; pass next_page_token unchanged, "
            "or omit it to start from the first page"
        )
    if data.get("search") != search:
        raise InvalidInput(
            "page_token belongs to a search with other arguments; repeat the same filter, "
            "order_by, experiment_ids and run_view_type, or omit the token to start over"
        )
    return offset
