r"""The columns of the registry's searches, declared for the one filter language.

The language (:mod:`loopwright.store.filters`) parses and compiles the filter; this module only
says which columns exist. Registered models offer ``name`` and ``tags.<key>``; versions add
``version`` (an integer), ``run_id``, ``source``, ``stage`` and ``status``. Column names ignore
case; a stage compared exactly is matched to its canonical spelling (``'staging'`` is
``'Staging'``). MLflow's spellings work too: ``tag.<key>``, ``attribute.name``,
``version_number`` and ``source_path``.

A model or version lacking a tag matches no comparison on it, not even ``!=``, as in MLflow, with
MLflow's one exception: one without ``mlflow.prompt.is_prompt`` is not a prompt (read as
``'false'``), so the ``tag.`mlflow.prompt.is_prompt` != 'true'`` that every mlflow 3 client
appends to its model search finds the models.

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
    "PROMPT_TAG",
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


# The tag that marks an MLflow prompt (stored as a registered model); absent on models.
PROMPT_TAG = "mlflow.prompt.is_prompt"


def _schema(fields: dict[str, Field], aliases: dict[str, str] | None = None) -> Schema:
    return Schema(
        (
            Entity(
                "attributes",
                frozenset({"attribute", "attributes"}),
                fields=fields,
                aliases=aliases or {},
                fold_case=True,
            ),
            Entity("tags", frozenset({"tag", "tags"}), absent_values={PROMPT_TAG: "false"}),
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
        "source": Field(),
        "stage": Field(canonical=_stage),
        "status": Field(),
    },
    aliases={"version_number": "version", "source_path": "source"},
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
        "run_id": sa.func.coalesce(v.run_id, v.run_ref),  # run_ref: a run not stored here
        "source": v.source,
        "stage": v.stage,
        "status": v.status,
    }
    target = SqlTarget(v.id, columns, {"tags": KeyValues(t.model_version_tags, "version_id")})
    return where(found, target, dialect)
