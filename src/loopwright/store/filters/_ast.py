"""What a filter means: typed comparisons joined by AND, and the schema that names the columns.

A :class:`Schema` is what a domain declares: its entities (``metrics``, ``params``, ``tags`` …),
how each may be spelled, and which fixed keys (attributes) exist with their kinds. The parser
checks a filter against it and yields :class:`Comparison` nodes whose values already have the
column's type, so a back-end never re-parses anything.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "NUMBER_OPS",
    "STRING_OPS",
    "SYMBOL_OPS",
    "Comparison",
    "Entity",
    "Field",
    "Filter",
    "Kind",
    "OrderKey",
    "Schema",
    "Value",
]

NUMBER_OPS = ("=", "!=", ">", ">=", "<", "<=")
STRING_OPS = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")
# The symbol operators as Python functions: on numbers and strings in memory, on SQL columns.
SYMBOL_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}

Value = str | int | float | tuple[str, ...]


class Kind(StrEnum):
    """A column's type: what values it compares with and which operators apply."""

    STRING = "string"  # quoted strings: = != LIKE ILIKE IN NOT IN
    NUMBER = "number"  # any number, compared as a float
    INTEGER = "integer"  # a whole number (times, versions); over-long literals become floats

    @property
    def ops(self) -> tuple[str, ...]:
        return STRING_OPS if self is Kind.STRING else NUMBER_OPS


@dataclass(frozen=True)
class Field:
    """One fixed key of an entity (an attribute).

    ``expect`` replaces the default "a number for x" in errors; ``canonical`` maps an exact value
    (``=``, ``!=``, ``IN``, ``NOT IN``) to its stored spelling, raising ``ValueError`` with a
    message for a value the column can never hold.
    """

    kind: Kind = Kind.STRING
    expect: str | None = None
    canonical: Callable[[str], str] | None = None


@dataclass(frozen=True)
class Entity:
    """A family of columns: ``metrics.<key>`` with any key, or attributes with fixed ``fields``.

    A record without the key matches no comparison on it, not even ``!=`` (as in MLflow), unless
    ``absent_values`` names the key: the record is then read as holding that value. MLflow's
    registry reads a model without ``mlflow.prompt.is_prompt`` as ``'false'`` (not a prompt).
    """

    name: str
    spellings: frozenset[str]
    kind: Kind = Kind.STRING
    fields: Mapping[str, Field] | None = None
    aliases: Mapping[str, str] = field(default_factory=dict)
    fold_case: bool = False  # field names match case-insensitively
    absent_values: Mapping[str, str] = field(default_factory=dict)

    def field_named(self, key: str) -> tuple[str, Field] | None:
        """The canonical key and its field; for free-form entities any key, of ``kind``."""
        if self.fields is None:
            return key, Field(self.kind)
        key = key.lower() if self.fold_case else key
        key = self.aliases.get(key, key)
        found = self.fields.get(key)
        return None if found is None else (key, found)


@dataclass(frozen=True)
class Schema:
    """The columns a search offers. A bare name (no ``entity.``) is a field of ``entities[0]``.

    ``noun`` names those fields in errors ("unknown attribute 'x'"); ``example`` shows a whole
    comparison.
    """

    entities: tuple[Entity, ...]
    example: str
    noun: str = "attribute"

    @property
    def bare(self) -> Entity:
        return self.entities[0]

    def entity_spelled(self, word: str) -> Entity | None:
        word = word.lower()
        return next((e for e in self.entities if word in e.spellings), None)

    def entity(self, name: str) -> Entity:
        return next(e for e in self.entities if e.name == name)

    def kind(self, entity: str, key: str) -> Kind:
        found = self.entity(entity).field_named(key)
        return Kind.STRING if found is None else found[1].kind


@dataclass(frozen=True)
class Comparison:
    """``entity.key op value``: ``op`` is upper-case (``"NOT IN"``); ``value`` is a string, a
    number for numeric columns, or a tuple of strings for IN / NOT IN."""

    entity: str
    key: str
    op: str
    value: Value


@dataclass(frozen=True)
class Filter:
    """Comparisons joined by AND (none: everything matches), checked against ``schema``."""

    comparisons: tuple[Comparison, ...]
    schema: Schema

    def absent_value(self, comparison: Comparison) -> str | None:
        """The value a record lacking the comparison's column is read as (None: no value, so
        the comparison does not match)."""
        return self.schema.entity(comparison.entity).absent_values.get(comparison.key)


@dataclass(frozen=True)
class OrderKey:
    """One ``order_by`` item."""

    entity: str
    key: str
    ascending: bool
