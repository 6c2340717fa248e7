"""The columns of the MLflow listings searched in memory (experiments, logged models), declared
for the one filter language (:mod:`loopwright.store.filters`) and its in-memory back-end.

Runs and the registry use the same language compiled to SQL. A record lacking the column of a
comparison does not match it (not even ``!=``), as in MLflow.

Example:
    >>> check = compile_filter("name LIKE 'churn%' AND tags.team = 'risk'", EXPERIMENTS)
    >>> check(lambda entity, key: {"name": "churn-rf", "team": "risk"}.get(key))
    True
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from ...store.filters import Entity, Field, Kind, Schema, parse
from ...store.filters import parse_order_by as _parse_order_by
from ...store.filters.memory import Lookup, predicate

__all__ = ["EXPERIMENTS", "LOGGED_MODELS", "Lookup", "compile_filter", "parse_order_by"]

_ATTRIBUTE_SPELLINGS = frozenset({"attribute", "attributes", "attr"})
_TAGS = Entity("tags", frozenset({"tag", "tags"}))


def _attributes(strings: Collection[str], times: Collection[str] = ()) -> Entity:
    fields = {**dict.fromkeys(strings, Field()), **dict.fromkeys(times, Field(Kind.INTEGER))}
    return Entity("attributes", _ATTRIBUTE_SPELLINGS, fields=fields)


EXPERIMENTS = Schema(
    (_attributes({"name", "experiment_id"}, {"creation_time", "last_update_time"}), _TAGS),
    example="name LIKE 'churn%'",
)
LOGGED_MODELS = Schema(
    (
        _attributes(
            {"name", "model_id", "model_type", "status", "source_run_id"},
            {"creation_timestamp", "creation_time", "last_updated_timestamp"},
        ),
        Entity("metrics", frozenset({"metric", "metrics"}), Kind.NUMBER),
        Entity("params", frozenset({"param", "params", "parameter", "parameters"})),
        _TAGS,
    ),
    example="metrics.accuracy > 0.9",
)


def compile_filter(text: str | None, schema: Schema) -> Callable[[Lookup], bool]:
    """A predicate over records (given as a :data:`Lookup`) for the MLflow filter ``text``."""
    return predicate(parse(text or "", schema))


def parse_order_by(item: str, attributes: Collection[str]) -> tuple[str, bool]:
    """``"name DESC"`` or ``"attributes.creation_time"`` → (attribute, ascending)."""
    schema = Schema((_attributes(attributes),), example=f"{min(attributes)} DESC")
    key = _parse_order_by(item, schema)
    return key.key, key.ascending
