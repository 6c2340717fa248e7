r"""The parser of MLflow's filter and ``order_by`` syntax, checked against a domain's schema.

Grammar (keywords are case-insensitive)::

    filter     := [comparison (AND comparison)*]
    comparison := column operator value
    order_by   := column [ASC | DESC]
    column     := [entity "."] key          # no entity: a field of the schema's first entity
    key        := bare | `quoted` | "quoted" | 'quoted'   # bare keys hold letters, digits, _ . - /
    value      := number | string | "(" string ("," string)* ")"
    string     := '...' | "..."

Numeric columns take ``= != > >= < <=`` and a number; string columns take
``= != LIKE ILIKE IN NOT IN`` and quoted strings. A filter is at most :data:`MAX_FILTER_CHARS`
characters and :data:`MAX_COMPARISONS` comparisons, and a LIKE pattern at most
:data:`MAX_PATTERN_CHARS`, so no filter can reach a database's expression or pattern limits.

Example:
    >>> names = Entity("attributes", frozenset(), fields={"name": Field()})
    >>> schema = Schema((names,), example="name = 'a'")
    >>> parse("name LIKE 'churn%'", schema).comparisons
    (Comparison(entity='attributes', key='name', op='LIKE', value='churn%'),)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn

from ...errors import InvalidInput
from ._ast import SYMBOL_OPS, Comparison, Entity, Field, Filter, Kind, OrderKey, Schema, Value
from ._lexer import Token, fail, tokenize

__all__ = [
    "MAX_COMPARISONS",
    "MAX_FILTER_CHARS",
    "MAX_ORDER_KEYS",
    "MAX_PATTERN_CHARS",
    "parse",
    "parse_order_by",
    "parse_order_list",
]

MAX_FILTER_CHARS = 50_000
# SQLite nests one level per AND (its limit is 1,000 levels); no real search needs more than this.
MAX_COMPARISONS = 100
# SQLite refuses LIKE/GLOB patterns over 50,000 bytes; a GLOB form is at most 3 characters of
# at most 4 bytes per character of this.
MAX_PATTERN_CHARS = 4_000
# Each ordered key is one outer join in run search; SQLite joins at most 64 tables.
MAX_ORDER_KEYS = 20
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEY = re.compile(r"[\w.\-/]+")
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_INTEGER = re.compile(r"[+-]?[0-9]{1,18}")
_ALL_OPS = "=, !=, >, >=, <, <=, LIKE, ILIKE, IN, NOT IN"


@dataclass
class _Cursor:
    what: str
    text: str
    tokens: list[Token]
    i: int = 0

    @property
    def token(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        token = self.tokens[self.i]
        self.i = min(self.i + 1, len(self.tokens) - 1)
        return token

    def keyword(self) -> str:
        return self.token.value.upper() if self.token.kind == "word" else ""

    def punct(self, char: str) -> bool:
        return self.token.kind == "punct" and self.token.value == char

    def fail(self, message: str, pos: int | None = None) -> NoReturn:
        fail(self.what, self.text, message, self.token.start if pos is None else pos)


def parse(text: str, schema: Schema) -> Filter:
    """Parse a filter; raises ``InvalidInput`` pointing at the first bad token."""
    if not isinstance(text, str):
        raise InvalidInput(f"filter_string must be a string, not {type(text).__name__}")
    _check_length(text, "filter")
    cur = _Cursor("filter", text, tokenize(text))
    comparisons: list[Comparison] = []
    while cur.token.kind != "end":
        if len(comparisons) == MAX_COMPARISONS:
            cur.fail(
                f"too many comparisons: a filter holds at most {MAX_COMPARISONS}; narrow the "
                "search with IN lists or fewer conditions"
            )
        comparisons.append(_comparison(cur, schema))
        if cur.token.kind == "end":
            break
        word = cur.keyword()
        if word == "OR":
            cur.fail("OR is not supported: MLflow filters join comparisons with AND only")
        if word != "AND":
            cur.fail("expected AND or the end of the filter")
        cur.take()
        if cur.token.kind == "end":
            cur.fail(f"expected a clause after AND, such as {schema.example}")
    return Filter(tuple(comparisons), schema)


def parse_order_list(items: Sequence[str], schema: Schema) -> list[OrderKey]:
    """Parse a whole ``order_by`` list: at most :data:`MAX_ORDER_KEYS` items, no column twice."""
    if isinstance(items, str):
        raise InvalidInput(f"order_by must be a list of strings, not the string {items!r}")
    if len(items) > MAX_ORDER_KEYS:
        raise InvalidInput(
            f"order_by has {len(items)} items; the limit is {MAX_ORDER_KEYS}: use fewer columns"
        )
    keys = [parse_order_by(item, schema) for item in items]
    seen: set[tuple[str, str]] = set()
    for key in keys:
        if (key.entity, key.key) in seen:
            raise InvalidInput(f"order_by names {key.entity}.{key.key} twice: {list(items)}")
        seen.add((key.entity, key.key))
    return keys


def parse_order_by(text: str, schema: Schema) -> OrderKey:
    """Parse one ``order_by`` item such as ``"metrics.auc DESC"``."""
    if not isinstance(text, str):
        raise InvalidInput(f"order_by items must be strings, not {type(text).__name__}")
    _check_length(text, "order_by item")
    cur = _Cursor("order_by", text, tokenize(text, "order_by"))
    entity, key, _, _ = _column(cur, schema, "a column such as " + schema.example.split()[0])
    direction = cur.keyword() or "ASC"
    if direction not in ("ASC", "DESC") or cur.token.kind not in ("word", "end"):
        cur.fail("expected ASC, DESC or the end of the order_by item")
    if cur.token.kind == "word":
        cur.take()
    if cur.token.kind != "end":
        cur.fail("expected the end of the order_by item")
    return OrderKey(entity.name, key, direction == "ASC")


def _check_length(text: str, what: str) -> None:
    if len(text) > MAX_FILTER_CHARS:
        raise InvalidInput(
            f"{what} is {len(text):,} characters long; the limit is {MAX_FILTER_CHARS:,}: "
            "narrow the search with fewer or shorter comparisons"
        )


def _comparison(cur: _Cursor, schema: Schema) -> Comparison:
    entity, key, field, label = _column(cur, schema, f"a comparison such as {schema.example}")
    op_token = cur.token
    op = _operator(cur)
    if op not in field.kind.ops:
        kind = "a string" if field.kind is Kind.STRING else "a number"
        cur.fail(
            f"operator {op} does not apply to {label} ({kind}); use one of "
            + ", ".join(field.kind.ops),
            op_token.start,
        )
    return Comparison(entity.name, key, op, _value(cur, field, op, label))


def _column(cur: _Cursor, schema: Schema, expected: str) -> tuple[Entity, str, Field, str]:
    """``entity.key`` or a bare field name: the entity, canonical key, field and the label."""
    first = cur.take()
    if first.kind == "word":
        name, dot, rest = first.value.partition(".")
        if not _NAME.fullmatch(name) or (not dot and name.upper() in ("AND", "OR")):
            cur.fail(f"expected {expected}", first.start)
    elif first.kind in ("string", "name"):
        name, dot, rest = first.value, "", ""
        follow = cur.token
        if follow.kind == "word" and follow.start == first.end and follow.value.startswith("."):
            dot, rest = ".", cur.take().value[1:]
    else:
        cur.fail(f"expected {expected}", first.start)
    if not dot:
        return _field(cur, schema, schema.bare, name, first.start, first.text)
    entity = schema.entity_spelled(name)
    if entity is None:
        cur.fail(f"unknown entity {name!r}: use {_prefixes(schema)}", first.start)
    key_pos = cur.tokens[cur.i - 1].end - len(rest)
    if rest:
        bad = _KEY.match(rest)
        if bad is None or bad.end() < len(rest):
            at = key_pos + (0 if bad is None else bad.end())
            cur.fail(
                f"unexpected {cur.text[at]!r} in a key: quote keys with other characters, "
                "e.g. `my key`",
                at,
            )
        key = rest
    elif cur.token.kind in ("string", "name") and cur.token.start == key_pos:
        key = cur.take().value
    else:
        cur.fail(f"expected a key after {name!r}. (quote keys with spaces: `my key`)", key_pos)
    label = cur.text[first.start : cur.tokens[cur.i - 1].end]
    return _field(cur, schema, entity, key, key_pos, label)


def _field(
    cur: _Cursor, schema: Schema, entity: Entity, key: str, pos: int, label: str
) -> tuple[Entity, str, Field, str]:
    found = entity.field_named(key)
    if found is None:
        names = ", ".join(sorted(entity.fields or ()))
        others = [e.name for e in schema.entities if e is not entity]
        need = (
            f" ({_join(others, 'and')} need their prefix, e.g. {others[0]}.<key>)" if others else ""
        )
        cur.fail(f"unknown {schema.noun} {key!r}: {schema.noun}s are {names}{need}", pos)
    return entity, found[0], found[1], label


def _prefixes(schema: Schema) -> str:
    return _join([f"{e.name}.<key>" for e in schema.entities if e.spellings], "or")


def _join(words: list[str], conjunction: str) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} {conjunction} {words[-1]}"


def _operator(cur: _Cursor) -> str:
    token = cur.take()
    if token.kind == "op":
        if token.value not in SYMBOL_OPS:
            cur.fail(f"unknown operator {token.value!r}: expected one of {_ALL_OPS}", token.start)
        return token.value
    word = token.value.upper() if token.kind == "word" else ""
    if word in ("LIKE", "ILIKE", "IN"):
        return word
    if word == "NOT" and cur.keyword() == "IN":
        cur.take()
        return "NOT IN"
    cur.fail(f"expected an operator ({_ALL_OPS})", token.start)


def _value(cur: _Cursor, field: Field, op: str, label: str) -> Value:
    if op in ("IN", "NOT IN"):
        if not cur.punct("("):
            cur.fail(f"expected '(' and a list of quoted strings after {op}")
        cur.take()
        items = [_string(cur, field, label, exact=True)]
        while cur.punct(","):
            cur.take()
            items.append(_string(cur, field, label, exact=True))
        if not cur.punct(")"):
            cur.fail("expected ',' or ')' in the list of values")
        cur.take()
        return tuple(items)
    if field.kind is Kind.STRING:
        exact = op not in ("LIKE", "ILIKE")
        value = _string(cur, field, label, exact=exact)
        if not exact and len(value) > MAX_PATTERN_CHARS:
            cur.fail(
                f"the {op} pattern is {len(value):,} characters long; the limit is "
                f"{MAX_PATTERN_CHARS:,}"
            )
        return value
    token = cur.take()
    if token.kind != "word" or not _NUMBER.fullmatch(token.value):
        cur.fail(f"expected {field.expect or 'a number for ' + label}", token.start)
    if field.kind is Kind.INTEGER and _INTEGER.fullmatch(token.value):
        return int(token.value)
    # Times stay exact integers; an over-long literal becomes a float rather than overflow.
    return float(token.value)


def _string(cur: _Cursor, field: Field, label: str, *, exact: bool) -> str:
    token = cur.token
    if token.kind != "string":
        cur.fail(f"expected a quoted string for {label}, e.g. 'value' or \"value\"")
    cur.take()
    if not exact or field.canonical is None:
        return token.value
    try:
        return field.canonical(token.value)
    except ValueError as exc:
        message = str(exc)
    cur.fail(message, token.start)
