"""The SQL back-end: a parsed filter as SQLAlchemy WHERE terms over a domain's tables.

A domain declares a :class:`SqlTarget`: the id column of the rows searched, a column (or any
SQL expression) per attribute, and per keyed entity the (owner, key, value) table holding it.
Every value reaches the database as a bound parameter. The terms are a flat list (one per
comparison) for ``select(...).where(*terms)``; LIKE is case-sensitive on SQLite too (as GLOB).

Example:
    >>> import sqlalchemy as sa
    >>> from loopwright.store.filters import Entity, Field, Schema, parse
    >>> items = sa.table("items", sa.column("id"), sa.column("name"))
    >>> names = Entity("attributes", frozenset(), fields={"name": Field()})
    >>> schema = Schema((names,), example="name = 'a'")
    >>> target = SqlTarget(items.c.id, {"name": items.c.name}, {})
    >>> (term,) = where(parse("name = 'x'", schema), target, "postgresql")
    >>> str(term)
    'items.name = :name_1'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ._ast import SYMBOL_OPS, Comparison, Filter
from ._like import LIKE_ESCAPE, glob_pattern, like_parts, sql_like_pattern
from .memory import matches

__all__ = ["KeyValues", "SqlTarget", "compare", "where"]


@dataclass(frozen=True)
class KeyValues:
    """The table of one keyed entity: ``owner`` names its column holding the searched row's id.

    ``conditions`` are added to every lookup (e.g. leaving out NaN metrics). On PostgreSQL, when
    ``indexed_value_bytes`` is set, exact matches on values that short also state the partial
    index's predicate so the planner may use it.
    """

    table: sa.Table
    owner: str
    conditions: tuple[sa.ColumnElement[bool], ...] = ()
    indexed_value_bytes: int | None = None


@dataclass(frozen=True)
class SqlTarget:
    id: sa.ColumnElement[Any]
    attributes: Mapping[str, sa.ColumnElement[Any]]
    entities: Mapping[str, KeyValues]


def where(filter: Filter, target: SqlTarget, dialect: str) -> list[sa.ColumnElement[bool]]:
    """One WHERE term per comparison, to be joined by AND."""
    terms = []
    for comparison in filter.comparisons:
        if comparison.entity not in target.entities:
            terms.append(compare(target.attributes[comparison.key], comparison, dialect))
            continue
        keyed = target.entities[comparison.entity]
        owners: sa.ColumnElement[bool] = target.id.in_(_owners(keyed, comparison, dialect))
        absent = filter.absent_value(comparison)
        if absent is not None and matches(comparison, absent):
            # A row lacking the key is read as holding ``absent``, which matches.
            holders = sa.select(keyed.table.c[keyed.owner]).where(
                keyed.table.c.key == comparison.key
            )
            owners = sa.or_(owners, sa.not_(target.id.in_(holders)))
        terms.append(owners)
    return terms


def _owners(keyed: KeyValues, comparison: Comparison, dialect: str) -> sa.Select[Any]:
    """The ids owning the key with a matching value: a semi-join both engines plan from the
    (key, value) indexes, instead of probing per row."""
    table = keyed.table
    matching = [
        table.c.key == comparison.key,
        compare(table.c.value, comparison, dialect),
        *keyed.conditions,
    ]
    limit = keyed.indexed_value_bytes
    if dialect == "postgresql" and limit is not None and _fits(comparison, limit):
        # Implied by the comparison itself; stated so the planner may use the partial index.
        indexed = sa.literal_column(str(limit), sa.Integer())
        matching.append(sa.func.octet_length(table.c.value) <= indexed)
    return sa.select(table.c[keyed.owner]).where(*matching)


def _fits(comparison: Comparison, limit: int) -> bool:
    values = comparison.value if isinstance(comparison.value, tuple) else (comparison.value,)
    return comparison.op in ("=", "IN") and all(
        len(str(value).encode()) <= limit for value in values
    )


def compare(
    column: sa.ColumnElement[Any], comparison: Comparison, dialect: str
) -> sa.ColumnElement[bool]:
    """``column op value`` for one comparison, the value bound as a parameter."""
    op, value = comparison.op, comparison.value
    if isinstance(value, tuple):
        return column.in_(value) if op == "IN" else column.not_in(value)
    if not isinstance(value, str):
        bound = sa.literal(value, sa.Double() if isinstance(value, float) else sa.BigInteger())
        ordered: sa.ColumnElement[bool] = SYMBOL_OPS[op](column, bound)
        return ordered
    if op == "LIKE" and dialect == "sqlite":  # SQLite's LIKE ignores case; GLOB does not
        return column.bool_op("GLOB")(glob_pattern(like_parts(value)))
    if op == "LIKE":
        return column.like(sql_like_pattern(like_parts(value)), escape=LIKE_ESCAPE)
    if op == "ILIKE":
        return column.ilike(sql_like_pattern(like_parts(value)), escape=LIKE_ESCAPE)
    equal: sa.ColumnElement[bool] = SYMBOL_OPS[op](column, value)
    return equal
