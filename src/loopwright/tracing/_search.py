"""Trace search: MLflow's filter syntax over the trace summaries, tags and metadata.

``status = 'OK'``, ``timestamp_ms > 1700000000000``, ``execution_time_ms >= 500``,
``tags.team = 'risk'``, ``run_id = '...'``, ``metadata.`mlflow.sourceRun` = '...'``,
``link.deployment = 'chat'``, ``text LIKE '%refund%'`` (previews, span names and attributes);
``trace.`` or ``attributes.`` may come before a column. Order by ``timestamp_ms`` (the default,
newest first), ``execution_time_ms``, ``status``, with ``DESC``/``ASC``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from ..errors import InvalidInput
from ..store import schema as t
from ..store.filters import Comparison, Entity, Field, Filter, Kind, Schema, parse, parse_order_by
from ..store.filters.sql import KeyValues, SqlTarget, compare, where
from ..store.limits import check_int64

__all__ = ["TRACE_COLUMNS", "count_rows", "search_ids", "search_rows"]

_c = t.traces.c
# A trace's run: the one it was linked to, else the one MLflow's client names in its metadata.
_RUN_ID = sa.func.coalesce(
    sa.select(t.trace_links.c.target)
    .where(t.trace_links.c.trace_id == _c.trace_id, t.trace_links.c.kind == "run_id")
    .limit(1)
    .scalar_subquery(),
    sa.select(t.trace_metadata.c.value)
    .where(t.trace_metadata.c.trace_id == _c.trace_id, t.trace_metadata.c.key == "mlflow.sourceRun")
    .limit(1)
    .scalar_subquery(),
)
_COLUMNS = {
    "trace_id": _c.trace_id,
    "status": _c.state,
    "timestamp_ms": _c.request_time,
    "execution_time_ms": _c.duration_ms,
    "request_preview": _c.request_preview,
    "response_preview": _c.response_preview,
    "experiment_id": _c.experiment_id,
    "run_id": _RUN_ID,
}
TRACE_COLUMNS = Schema(
    (
        Entity(
            "attributes",
            frozenset({"attribute", "attributes", "trace"}),
            fields={
                "trace_id": Field(),
                "status": Field(),
                "timestamp_ms": Field(Kind.INTEGER, expect="a time in ms"),
                "execution_time_ms": Field(Kind.INTEGER, expect="a duration in ms"),
                "request_preview": Field(),
                "response_preview": Field(),
                "experiment_id": Field(),
                "run_id": Field(),
                "text": Field(),
            },
            aliases={
                "state": "status",
                "request_id": "trace_id",
                "timestamp": "timestamp_ms",
                "request_time": "timestamp_ms",
                "execution_time": "execution_time_ms",
                "duration_ms": "execution_time_ms",
            },
            fold_case=True,
        ),
        Entity("tags", frozenset({"tag", "tags"})),
        Entity("metadata", frozenset({"metadata", "request_metadata"})),
        Entity("link", frozenset({"link", "links"})),
    ),
    example="status = 'OK'",
    noun="column",
)
# trace_links as a (owner, key, value) table for the filter's keyed-entity lookup.
_links = sa.select(
    t.trace_links.c.trace_id,
    t.trace_links.c.kind.label("key"),
    t.trace_links.c.target.label("value"),
).subquery("trace_link_values")
_TARGET = SqlTarget(
    _c.trace_id,
    _COLUMNS,
    {
        "tags": KeyValues(t.trace_tags, "trace_id"),
        "metadata": KeyValues(t.trace_metadata, "trace_id"),
        "link": KeyValues(_links, "trace_id"),  # type: ignore[arg-type]
    },
)


def _text(comparison: Comparison, dialect: str) -> sa.ColumnElement[bool]:
    """``text`` (MLflow's full-text column): the previews, or any span's name or attributes."""
    if comparison.op not in ("=", "LIKE", "ILIKE"):
        raise InvalidInput(f"text takes =, LIKE or ILIKE, not {comparison.op}")
    s = t.spans.c
    matches = [compare(column, comparison, dialect) for column in (s.name, s.attributes_json)]
    previews = [
        compare(column, comparison, dialect) for column in (_c.request_preview, _c.response_preview)
    ]
    return sa.or_(sa.exists().where(s.trace_id == _c.trace_id, sa.or_(*matches)), *previews)


def count_rows(
    conn: sa.Connection, *, experiment_ids: Sequence[str] | None, filters: Sequence[str | None]
) -> int:
    """How many traces match every filter given (``None`` entries: no condition)."""
    query = sa.select(sa.func.count()).select_from(t.traces)
    if experiment_ids:
        query = query.where(_c.experiment_id.in_(list(experiment_ids)))
    for text in filters:
        if text:
            query = query.where(*_terms(text, conn.dialect.name))
    return int(conn.execute(query).scalar_one())


def search_ids(
    conn: sa.Connection,
    experiment_ids: Sequence[str] | None,
    filters: Sequence[str],
    start_ms: int | None,
    end_ms: int | None,
) -> sa.ColumnElement[bool]:
    """One WHERE term over ``traces``: in the experiments, matching every filter, in the time
    window."""
    terms: list[sa.ColumnElement[bool]] = []
    if experiment_ids:
        terms.append(_c.experiment_id.in_(list(experiment_ids)))
    for text in filters:
        terms += _terms(text, conn.dialect.name)
    if start_ms is not None:
        terms.append(_c.request_time >= check_int64("start_time_ms", start_ms))
    if end_ms is not None:
        terms.append(_c.request_time < check_int64("end_time_ms", end_ms))
    return sa.and_(sa.true(), *terms)


def _terms(text: str, dialect: str) -> list[sa.ColumnElement[bool]]:
    found = parse(text, TRACE_COLUMNS)
    full_text = [c for c in found.comparisons if c.entity == "attributes" and c.key == "text"]
    rest = Filter(tuple(c for c in found.comparisons if c not in full_text), found.schema)
    return [*where(rest, _TARGET, dialect), *(_text(c, dialect) for c in full_text)]


def search_rows(
    conn: sa.Connection,
    *,
    experiment_ids: Sequence[str] | None,
    filter: str | None,
    order_by: Sequence[str] | None,
    limit: int,
    offset: int,
    visible: sa.ColumnElement[bool] | None = None,
) -> list[str]:
    """The ids of the matching traces, in order, ``limit`` of them from ``offset``; ``visible``:
    a term keeping only those the reader may see."""
    query = sa.select(_c.trace_id)
    if visible is not None:
        query = query.where(visible)
    if experiment_ids:
        query = query.where(_c.experiment_id.in_(list(experiment_ids)))
    if filter:
        query = query.where(*_terms(filter, conn.dialect.name))
    ordering = []
    for item in order_by or ():
        key = parse_order_by(item, TRACE_COLUMNS)
        if key.entity != "attributes" or key.key == "text":
            raise InvalidInput(f"order_by {item!r}: traces sort by their columns only")
        column = _COLUMNS[key.key]
        ordering.append(column.asc() if key.ascending else column.desc())
    ordering += [_c.request_time.desc(), _c.trace_id.desc()]
    query = query.order_by(*ordering).limit(limit).offset(offset)
    return [row[0] for row in conn.execute(query)]
