r"""The columns of the registry's searches, declared for the one filter language.

The language (:mod:`loopwright.store.filters`) parses and compiles the filter; this module only
says which columns exist. Registered models offer ``name`` and ``tags.<key>``; versions add
``version`` (an integer), ``run_id``, ``stage`` and ``status``. Column names ignore case; a stage
compared exactly is matched to its canonical spelling (``'staging'`` is ``'Staging'``).

Example:
    >>> found = parse("name LIKE 'churn%' AND tags.team = 'risk'", MODEL_COLUMNS)
    >>> [(c.entity, c.key, c.op, c.value) for c in found.comparisons]
    [('attributes', 'name', 'LIKE', 'churn%'), ('tags', 'team', '=', 'risk')]
"""

from __future__ import annotations

import sqlalchemy as sa

from ..store import schema as t
from ..store.filters import Entity, Field, Filter, Kind, Schema, parse
from ..store.filters.sql import KeyValues, SqlTarget, where
from .entities import Stage

__all__ = [
    "MODEL_COLUMNS",
    "VERSION_COLUMNS",
    "mentions",
    "model_filter",
    "parse",
    "version_filter",
]


def _stage(value: str) -> str:
    for stage in Stage:
        if stage.value.lower() == value.lower():
            return stage.value
    raise ValueError(f"unknown stage {value!r}; stages: {', '.join(s.value for s in Stage)}")


def _schema(fields: dict[str, Field]) -> Schema:
    return Schema(
        (
            Entity("attributes", frozenset(), fields=fields, fold_case=True),
            Entity("tags", frozenset({"tags"})),
        ),
        example="name LIKE 'churn%'",
        noun="column",
    )


MODEL_COLUMNS = _schema({"name": Field()})
VERSION_COLUMNS = _schema(
    {
        "name": Field(),
        "version": Field(Kind.INTEGER, expect="an integer version number"),
        "run_id": Field(),
        "stage": Field(canonical=_stage),
        "status": Field(),
    }
)


def mentions(found: Filter, column: str) -> bool:
    """Whether the filter compares the column (an attribute, not a tag) at all."""
    return any(c.entity == "attributes" and c.key == column for c in found.comparisons)


def model_filter(found: Filter, dialect: str) -> list[sa.ColumnElement[bool]]:
    """WHERE terms over ``registered_models``."""
    m = t.registered_models.c
    target = SqlTarget(
        m.id, {"name": m.name}, {"tags": KeyValues(t.registered_model_tags, "model_id")}
    )
    return where(found, target, dialect)


def version_filter(found: Filter, dialect: str) -> list[sa.ColumnElement[bool]]:
    """WHERE terms over ``model_versions`` joined to ``registered_models``."""
    v = t.model_versions.c
    columns = {
        "name": t.registered_models.c.name,
        "version": v.version,
        "run_id": v.run_id,
        "stage": v.stage,
        "status": v.status,
    }
    target = SqlTarget(v.id, columns, {"tags": KeyValues(t.model_version_tags, "version_id")})
    return where(found, target, dialect)
