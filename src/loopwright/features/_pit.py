"""The point-in-time join as one DuckDB query: an ASOF join per feature view.

For each entity row and view, the row of the same join keys with the latest event time
``<=`` the entity row's time; on an event-time tie, the newest created time (a missing one is
the oldest). DuckDB's ASOF join picks an arbitrary row among equal inequality values, so a view
with a created column is joined in two steps: an ASOF join of the entity rows onto the view's
join keys and event times alone finds each row's event time, then an equality join on (join
keys, that event time) brings the rows sharing it, and ``arg_max`` over the created time picks
one. The ASOF join's sort carries only keys and times: an ASOF join on a struct
``{event, created}`` key carrying the features overflowed the default 1 GiB ``query_memory``
with 10M feature rows and spilled (5.5 s of CPU against 4.5 s for the two steps at 10M x 1M,
the raw floor of benchmarks/_features_floor.py taking 4.4 s). No deduplication pass over all
the feature rows is needed (one costs some 4x the join, anchor §4.2). A view without a created
column is one ASOF join carrying its features (that sort fits).
The TTL is applied to the match: the latest row ``<= t`` being older than ``t - ttl`` means
every earlier one is too. Rows come back in entity-row order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..data._sql import sql_ident
from ._selection import ViewPick
from ._sources import cast_column, check_column, time_expr

__all__ = ["JoinedView", "entity_keys_sql", "join_query", "view_relation"]


@dataclass(frozen=True)
class JoinedView:
    """One view in the join: its relation (``__fv<i>``), whether its source has a created
    time (``__c``, breaking event-time ties), and the result column of each picked feature."""

    pick: ViewPick
    relation: str
    created: bool
    columns: tuple[str, ...]


def view_relation(
    index: int, pick: ViewPick, types: Mapping[str, str], source_relation: str
) -> tuple[str, bool]:
    """SQL creating the view ``__fv<index>`` over a registered source: the join keys cast to
    their dtypes, the features cast to their dtypes as ``__f<j>``, ``__ev`` (naive UTC event
    time) and, when the source has a created column, ``__c`` (naive UTC, a missing one
    ``-infinity``); and whether it has ``__c``."""
    source = pick.source
    where = f"the source of view {pick.name!r}"
    event_field = str(source["timestamp_field"])
    event = time_expr(types, event_field, what=f"event time column {event_field!r}", where=where)
    created_field = source.get("created_timestamp_field")
    columns = []
    for key, dtype in pick.join_keys:
        check_column(types, key, dtype, what=f"join key {key!r}", where=where)
        columns.append(f"{cast_column(key, dtype)} AS {sql_ident(key)}")
    for j, (feature, dtype) in enumerate(pick.features):
        check_column(types, feature, dtype, what=f"feature {feature!r}", where=where)
        columns.append(f"{cast_column(feature, dtype)} AS __f{j}")
    columns.append(f"{event} AS __ev")
    if created_field:
        created = time_expr(
            types, str(created_field), what=f"created time column {created_field!r}", where=where
        )
        columns.append(f"COALESCE({created}, TIMESTAMP '-infinity') AS __c")
    sql = (
        f"CREATE OR REPLACE TEMP VIEW __fv{index} AS SELECT {', '.join(columns)} "  # noqa: S608
        f"FROM {sql_ident(source_relation)}"
    )
    return sql, bool(created_field)


def entity_keys_sql(join_keys: Sequence[tuple[str, str]], types: Mapping[str, str]) -> list[str]:
    """Select items for the entity relation: each join key cast to its dtype (``__j<i>``);
    a key missing from the entity rows or of another type is InvalidInput."""
    items = []
    for i, (key, dtype) in enumerate(join_keys):
        check_column(types, key, dtype, what=f"join key {key!r}", where="the entity rows")
        items.append(f"{cast_column(key, dtype)} AS __j{i}")
    return items


def join_query(
    views: Sequence[JoinedView],
    join_keys: Sequence[tuple[str, str]],
    entity_columns: Sequence[str],
) -> str:
    """The query over ``__entities`` (the entity columns, ``__row``, ``__ts``, ``__j<i>``):
    the entity columns then each view's features, in entity-row order."""
    key_index = {key: i for i, (key, _) in enumerate(join_keys)}
    selected = [f"e.{sql_ident(column)}" for column in entity_columns]
    ctes, joins = [], []
    for i, view in enumerate(views):
        if not view.columns:
            continue
        alias = f"f{i}"
        keys = [(f"__j{key_index[key]}", sql_ident(key)) for key, _ in view.pick.join_keys]
        ttl = int(view.pick.ttl_seconds or 0)
        if view.created:
            ctes += _tie_broken(i, view, keys, ttl)
            joins.append(f"LEFT JOIN __p{i} {alias} ON {alias}.__row = e.__row")
            selected += [
                f"{alias}.__v.__f{j} AS {sql_ident(column)}"
                for j, column in enumerate(view.columns)
            ]
            continue
        conditions = [f"e.{entity} = {alias}.{key}" for entity, key in keys]
        conditions.append(f"e.__ts >= {alias}.__ev")
        joins.append(f"ASOF LEFT JOIN {view.relation} {alias} ON {' AND '.join(conditions)}")
        for j, column in enumerate(view.columns):
            value = f"{alias}.__f{j}"
            if ttl:
                value = f"CASE WHEN {alias}.__ev >= e.__ts - to_seconds({ttl}) THEN {value} END"
            selected.append(f"{value} AS {sql_ident(column)}")
    with_ = f"WITH {', '.join(ctes)} " if ctes else ""
    return (
        f"{with_}SELECT {', '.join(selected)} FROM __entities e {' '.join(joins)} "  # noqa: S608
        "ORDER BY e.__row"
    )


def _tie_broken(i: int, view: JoinedView, keys: Sequence[tuple[str, str]], ttl: int) -> list[str]:
    """The CTEs of a view with a created time: ``__m<i>``, each entity row's matched event
    time (within the TTL), and ``__p<i>``, the features of the newest created row among the
    view's rows with that event time (``__v``, a struct of ``__f<j>``), by ``__row``."""
    keyed = "".join(f"{key}, " for _, key in keys)
    carried = "".join(f"e.{entity}, " for entity, _ in keys)
    on = " AND ".join([*(f"e.{entity} = f.{key}" for entity, key in keys), "e.__ts >= f.__ev"])
    within = f" WHERE f.__ev >= e.__ts - to_seconds({ttl})" if ttl else ""
    matched = (
        f"__m{i} AS (SELECT e.__row, {carried}f.__ev AS __fts FROM __entities e "  # noqa: S608
        f"ASOF JOIN (SELECT {keyed}__ev FROM "
        f"{view.relation}) f ON {on}{within})"
    )
    features = ", ".join(f"__f{j} := f.__f{j}" for j in range(len(view.columns)))
    same = " AND ".join([*(f"m.{entity} = f.{key}" for entity, key in keys), "m.__fts = f.__ev"])
    picked = (
        f"__p{i} AS (SELECT m.__row, arg_max(struct_pack({features}), f.__c) AS __v "  # noqa: S608
        f"FROM __m{i} m JOIN {view.relation} f ON {same} GROUP BY m.__row)"
    )
    return [matched, picked]
