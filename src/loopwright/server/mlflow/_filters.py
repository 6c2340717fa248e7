r"""MLflow's filter language for the small listings searched in memory: experiments, logged models.

Grammar (keywords case-insensitive; runs use :mod:`loopwright.tracking.search`, compiled to SQL)::

    filter := [clause (AND clause)*]
    clause := column op value
    column := [entity "."] key          entity: attribute(s) | tag(s) | param(s) | metric(s)
    key    := bare (letters, digits, _ . - /) | `quoted` | "quoted"
    op     := = | != | < | <= | > | >= | LIKE | ILIKE | IN | NOT IN
    value  := 'string' | "string" | number | "(" string ("," string)* ")"

A record lacking the column of a clause does not match it (not even ``!=``), as in MLflow.

Example:
    >>> check = compile_filter("name LIKE 'churn%' AND tags.team = 'risk'", {"name"})
    >>> check(lambda entity, key: {"name": "churn-rf", "team": "risk"}.get(key))
    True
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from ...errors import InvalidInput

__all__ = ["Lookup", "compile_filter", "parse_order_by"]

# (entity, key) -> the record's value, or None when it has none.
Lookup = Callable[[str, str], Any]

_ENTITIES = {
    **dict.fromkeys(("attribute", "attributes", "attr"), "attributes"),
    **dict.fromkeys(("tag", "tags"), "tags"),
    **dict.fromkeys(("param", "params", "parameter", "parameters"), "params"),
    **dict.fromkeys(("metric", "metrics"), "metrics"),
}
_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*")
     |(?P<op><=|>=|!=|=|<|>)
     |(?P<number>[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?(?![\w.]))
     |(?P<paren>[(),])
     |(?P<word>(?:[A-Za-z_]+\.)?(?:`[^`]+`|[\w.\-/]+))
    )""",
    re.VERBOSE,
)
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@dataclass(frozen=True)
class _Clause:
    entity: str
    key: str
    op: str
    value: Any


def _fail(text: str, message: str) -> InvalidInput:
    return InvalidInput(f"invalid filter {text!r}: {message}")


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        found = _TOKEN.match(text, pos)
        if found is None or found.lastgroup is None:
            raise _fail(text, f"unexpected text at {text[pos:].strip()[:30]!r}")
        tokens.append((found.lastgroup, found.group(found.lastgroup)))
        pos = found.end()
    return tokens


def _unquote(token: str) -> str:
    quote, body = token[0], token[1:-1]
    return body.replace("\\" + quote, quote).replace(quote * 2, quote)


def _column(word: str, attributes: Collection[str], text: str) -> tuple[str, str]:
    entity, dot, key = word.partition(".")
    if dot and entity.lower() in _ENTITIES:
        entity = _ENTITIES[entity.lower()]
    else:
        entity, key = "attributes", word
    key = key.strip("`")
    if entity == "attributes" and key not in attributes:
        raise _fail(text, f"unknown attribute {key!r}; use one of {', '.join(sorted(attributes))}")
    return entity, key


def _parse(text: str, attributes: Collection[str]) -> list[_Clause]:
    tokens = _tokens(text)
    clauses: list[_Clause] = []
    i = 0
    while i < len(tokens):
        kind, word = tokens[i]
        if kind != "word":
            raise _fail(text, f"expected a column, found {word!r}")
        entity, key = _column(word, attributes, text)
        i += 1
        op = tokens[i][1].upper() if i < len(tokens) else ""
        if op == "NOT" and i + 1 < len(tokens) and tokens[i + 1][1].upper() == "IN":
            op, i = "NOT IN", i + 1
        if op not in (*_COMPARE, "LIKE", "ILIKE", "IN", "NOT IN"):
            raise _fail(text, f"expected an operator after {word!r}")
        i += 1
        value: Any
        if op in ("IN", "NOT IN"):
            if i >= len(tokens) or tokens[i][1] != "(":
                raise _fail(text, f"{op} takes a list: ('a', 'b')")
            items, i = [], i + 1
            while i < len(tokens) and tokens[i][1] != ")":
                if tokens[i][0] == "string":
                    items.append(_unquote(tokens[i][1]))
                elif tokens[i][1] != ",":
                    raise _fail(text, f"{op} lists quoted strings")
                i += 1
            value, i = frozenset(items), i + 1
        elif i < len(tokens) and tokens[i][0] == "string":
            value, i = _unquote(tokens[i][1]), i + 1
        elif i < len(tokens) and tokens[i][0] == "number":
            value, i = float(tokens[i][1]), i + 1
        else:
            raise _fail(text, f"expected a value after {word} {op}")
        clauses.append(_Clause(entity, key, op, value))
        if i < len(tokens):
            if tokens[i][1].upper() != "AND" or i + 1 == len(tokens):
                raise _fail(text, "clauses are joined by AND (OR is not supported)")
            i += 1
    return clauses


def _like(pattern: str, flags: int) -> re.Pattern[str]:
    parts = [".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), flags | re.DOTALL)


def _matches(clause: _Clause, found: Any) -> bool:
    if found is None:
        return False
    op, value = clause.op, clause.value
    if op in ("IN", "NOT IN"):
        return (str(found) in value) == (op == "IN")
    if op in ("LIKE", "ILIKE"):
        flags = re.IGNORECASE if op == "ILIKE" else 0
        return _like(str(value), flags).fullmatch(str(found)) is not None
    if isinstance(value, float):
        try:
            return _COMPARE[op](float(found), value)
        except (TypeError, ValueError):
            return False
    return _COMPARE[op](str(found), value)


def compile_filter(text: str | None, attributes: Collection[str]) -> Callable[[Lookup], bool]:
    """A predicate over records (given as a :data:`Lookup`) for the MLflow filter ``text``."""
    clauses = _parse(text or "", attributes)

    def check(lookup: Lookup) -> bool:
        return all(_matches(c, lookup(c.entity, c.key)) for c in clauses)

    return check


def parse_order_by(item: str, attributes: Collection[str]) -> tuple[str, bool]:
    """``"name DESC"`` or ``"attributes.creation_time"`` → (attribute, ascending)."""
    words = item.split()
    ascending = True
    if len(words) == 2 and words[1].upper() in ("ASC", "DESC"):
        ascending = words[1].upper() == "ASC"
        words = words[:1]
    if len(words) != 1:
        raise InvalidInput(f"order_by {item!r} must be '<column> [ASC|DESC]'")
    entity, key = _column(words[0], attributes, item)
    if entity != "attributes":
        raise InvalidInput(f"order_by {item!r}: only attributes can order these results")
    return key, ascending
