r"""The registry's search filters: a small subset of MLflow's filter language, compiled to SQL.

Grammar (keywords are case-insensitive)::

    filter  := [clause (AND clause)*]
    clause  := column op value
    column  := name | tags.<key> | version | run_id | stage | status   (the last four: versions)
    key     := bare (letters, digits, _ . - /) | `quoted`
    op      := = | != | LIKE | ILIKE          for strings ('...' or "...")
             | = | != | < | <= | > | >=       for version (an integer)

LIKE is case-sensitive on both databases (``%`` and ``_`` are wildcards, ``\`` escapes them);
ILIKE ignores case. Every value is a bound parameter.

Example:
    >>> parse("name LIKE 'churn%' AND tags.team = 'risk'", MODEL_COLUMNS)
    [Clause(column='name', key=None, op='LIKE', value='churn%'), Clause(column='tags', ...)]
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ..errors import InvalidInput
from ..store import schema as t
from .entities import Stage

__all__ = ["MODEL_COLUMNS", "VERSION_COLUMNS", "Clause", "model_filter", "parse", "version_filter"]

MODEL_COLUMNS = frozenset({"name", "tags"})
VERSION_COLUMNS = frozenset({"name", "tags", "version", "run_id", "stage", "status"})
_STRING_OPS = ("=", "!=", "LIKE", "ILIKE")
_NUMBER_OPS = ("=", "!=", "<", "<=", ">", ">=")
_TOKEN = re.compile(
    r"""(?P<ws>\s+)
    |(?P<string>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*")
    |(?P<op><=|>=|!=|=|<|>)
    |(?P<number>[+-]?\d+\b)
    |(?P<word>tags\.(?:`[^`]+`|[\w.\-/]+)|[A-Za-z_]\w*)
    """,
    re.VERBOSE | re.IGNORECASE,
)
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@dataclass(frozen=True)
class Clause:
    column: str  # name | tags | version | run_id | stage | status
    key: str | None  # the tag key
    op: str
    value: str | int


def _fail(text: str, pos: int, message: str) -> InvalidInput:
    return InvalidInput(
        f"invalid filter: {message} at character {pos + 1}\n    {text}\n    {' ' * pos}^\n"
        "filters look like: name LIKE 'churn%' AND tags.team = 'risk'"
    )


def _tokens(text: str) -> list[tuple[str, str, int]]:
    tokens, pos = [], 0
    while pos < len(text):
        found = _TOKEN.match(text, pos)
        if found is None:
            problem = "unterminated string" if text[pos] in "'\"" else f"unexpected {text[pos]!r}"
            raise _fail(text, pos, problem)
        if found.lastgroup != "ws":
            tokens.append((str(found.lastgroup), found.group(), pos))
        pos = found.end()
    return tokens


def _unquote(token: str) -> str:
    """The string's text: a doubled or backslashed quote stands for the quote; any other
    backslash is kept (so ``\\%`` still escapes a LIKE wildcard)."""
    quote, body = token[0], token[1:-1]
    return body.replace("\\" + quote, quote).replace(quote * 2, quote)


def parse(text: str, columns: frozenset[str]) -> list[Clause]:
    """Parse ``text``; ``InvalidInput`` points at the first token that does not fit."""
    if not isinstance(text, str):
        raise InvalidInput(f"filter must be a string, not {type(text).__name__}")
    tokens = _tokens(text)
    clauses: list[Clause] = []
    i = 0
    known = ", ".join(sorted(c if c != "tags" else "tags.<key>" for c in columns))

    def at(index: int) -> tuple[str, str, int]:
        return tokens[index] if index < len(tokens) else ("end", "", len(text))

    while i < len(tokens):
        kind, word, pos = at(i)
        if kind != "word":
            raise _fail(text, pos, f"expected a column ({known})")
        column, key = word.lower(), None
        if column.startswith("tags."):
            column, key = "tags", word[5:].strip("`")
        if column not in columns:
            raise _fail(text, pos, f"unknown column {word!r}; use one of {known}")
        kind, op, pos = at(i + 1)
        op = op.upper()
        numeric = column == "version"
        allowed = _NUMBER_OPS if numeric else _STRING_OPS
        if op not in allowed:
            raise _fail(text, pos, f"expected an operator for {word} ({' '.join(allowed)})")
        kind, raw, pos = at(i + 2)
        if numeric and kind != "number":
            raise _fail(text, pos, "expected an integer version number")
        if not numeric and kind != "string":
            raise _fail(text, pos, f"expected a quoted string for {word}, e.g. 'value'")
        value: str | int = int(raw) if numeric else _unquote(raw)
        if column == "stage" and op in ("=", "!="):
            value = _stage(str(value), text, pos)
        clauses.append(Clause(column, key, op, value))
        i += 3
        if i < len(tokens):
            kind, word, pos = at(i)
            if kind != "word" or word.upper() != "AND":
                extra = " (OR is not supported)" if word.upper() == "OR" else ""
                raise _fail(text, pos, f"expected AND or the end of the filter{extra}")
            if i + 1 == len(tokens):
                raise _fail(text, len(text), "expected a clause after AND")
            i += 1
    return clauses


def _stage(value: str, text: str, pos: int) -> str:
    for stage in Stage:
        if stage.value.lower() == value.lower():
            return stage.value
    raise _fail(text, pos, f"unknown stage {value!r}; stages: {', '.join(s.value for s in Stage)}")


def _like_to_glob(pattern: str) -> str:
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            char = pattern[i + 1]
            out.append(f"[{char}]" if char in "*?[" else char)
            i += 2
            continue
        out.append({"%": "*", "_": "?"}.get(char) or (f"[{char}]" if char in "*?[" else char))
        i += 1
    return "".join(out)


def _compare(column: Any, clause: Clause, dialect: str) -> sa.ColumnElement[bool]:
    if clause.op == "LIKE" and dialect == "sqlite":  # SQLite's LIKE ignores case; GLOB does not
        return column.bool_op("GLOB")(_like_to_glob(str(clause.value)))  # type: ignore[no-any-return]
    if clause.op == "LIKE":
        return column.like(clause.value, escape="\\")  # type: ignore[no-any-return]
    if clause.op == "ILIKE":
        return column.ilike(clause.value, escape="\\")  # type: ignore[no-any-return]
    return _COMPARE[clause.op](column, clause.value)  # type: ignore[no-any-return]


def _tag_match(table: sa.Table, owner: str, clause: Clause, dialect: str) -> Any:
    return sa.select(table.c[owner]).where(
        table.c.key == clause.key, _compare(table.c.value, clause, dialect)
    )


def model_filter(clauses: list[Clause], dialect: str) -> list[sa.ColumnElement[bool]]:
    """WHERE terms over ``registered_models``."""
    m = t.registered_models.c
    return [
        m.id.in_(_tag_match(t.registered_model_tags, "model_id", c, dialect))
        if c.column == "tags"
        else _compare(m.name, c, dialect)
        for c in clauses
    ]


def version_filter(clauses: list[Clause], dialect: str) -> list[sa.ColumnElement[bool]]:
    """WHERE terms over ``model_versions`` joined to ``registered_models``."""
    v = t.model_versions.c
    columns = {
        "name": t.registered_models.c.name,
        "version": v.version,
        "run_id": v.run_id,
        "stage": v.stage,
        "status": v.status,
    }
    return [
        v.id.in_(_tag_match(t.model_version_tags, "version_id", c, dialect))
        if c.column == "tags"
        else _compare(columns[c.column], c, dialect)
        for c in clauses
    ]
